//! Bearer tokens for the endpoints that change something.
//!
//! A handler that mutates takes an [`Authorized`] argument; extracting it checks
//! `Authorization: Bearer <token>` against the node's token in constant time. Without a
//! configured token (only allowed on a loopback address) every caller is authorised.

use super::{ApiError, ApiState};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use std::sync::Arc;

/// Proof that the caller may change things.
pub struct Authorized;

/// Compares without stopping at the first difference, so the time taken does not
/// tell how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl FromRequestParts<Arc<ApiState>> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, ApiError> {
        check(state.token.as_deref(), &parts.headers)
    }
}

/// The token a request carries, if any (the scheme is case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether a request with `headers` may change things, given the node's token.
pub fn check(expected: Option<&str>, headers: &HeaderMap) -> Result<Authorized, ApiError> {
    let Some(expected) = expected else {
        return Ok(Authorized);
    };
    match bearer(headers) {
        Some(given) if same(given.as_bytes(), expected.as_bytes()) => Ok(Authorized),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the token is wrong",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this endpoint needs `Authorization: Bearer <token>`",
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn compares_whole_tokens() {
        assert!(super::same(b"secret", b"secret"));
        assert!(!super::same(b"secret", b"secreT"));
        assert!(!super::same(b"secret", b"secre"));
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::AUTHORIZATION,
            axum::http::HeaderValue::from_static("bearer secret"),
        );
        assert!(super::check(Some("secret"), &headers).is_ok());
        assert!(super::check(Some("other"), &headers).is_err());
        assert!(super::check(Some("secret"), &axum::http::HeaderMap::new()).is_err());
    }
}
