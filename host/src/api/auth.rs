//! Bearer tokens for the endpoints that change something.
//!
//! A handler that mutates takes an [`Authorized`] argument; extracting it checks
//! `Authorization: Bearer <token>` against the node's token in constant time. Without a
//! configured token (only allowed on a loopback address) every caller is authorised.

use super::{ApiError, ApiState};
use crate::transport::Transport;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
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

impl<T: Transport> FromRequestParts<Arc<ApiState<T>>> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState<T>>,
    ) -> Result<Self, ApiError> {
        let Some(expected) = &state.token else {
            return Ok(Authorized);
        };
        let given = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        match given {
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
}

#[cfg(test)]
mod tests {
    #[test]
    fn compares_whole_tokens() {
        assert!(super::same(b"secret", b"secret"));
        assert!(!super::same(b"secret", b"secreT"));
        assert!(!super::same(b"secret", b"secre"));
    }
}
