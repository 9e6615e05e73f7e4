//! What a web page may not do to a node: one check in front of the whole API.
//!
//! A browser the operator has open can reach a node on 127.0.0.1 from any page, in
//! two ways this refuses, token or not:
//!
//! - **DNS rebinding.** A page on `attacker.example` whose name is made to point at
//!   127.0.0.1 talks to the node as if same-origin, but its requests carry
//!   `Host: attacker.example`. Only loopback names and addresses are accepted in
//!   `Host` (and the names the operator gives with `--public-host`, for a node behind
//!   an ingress); a node that listens on a non-loopback address (it has a token then)
//!   and names no public host accepts any `Host`, as it is reached by whatever name
//!   its network gives it.
//! - **Cross-site requests without a preflight.** A page may send a `POST` of
//!   `text/plain`, a form, or `multipart/form-data` anywhere, with no CORS preflight.
//!   A request that changes something (`POST`, `PUT`, `PATCH`, `DELETE`) must say it
//!   is JSON (or a WebAssembly upload), which a page cannot send cross-site without a
//!   preflight this node never answers; and one that comes with the `Origin` of
//!   another site (or `Sec-Fetch-Site: cross-site`) is refused unless the operator
//!   allows that origin (`--allow-origin`). Same-origin requests (the status page's)
//!   and clients that send no `Origin` (the CLI, `curl`, other services) pass.
//!
//! The rules are decided by [`WebGuard::check`], a plain function of the request's
//! method and headers, unit-tested without a server; [`guard`] applies them.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;

/// Which hosts and origins a node answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebGuard {
    /// Any `Host` is accepted (a node on a non-loopback address naming no public host).
    pub any_host: bool,
    /// Host names (lowercase, no port) accepted besides loopback ones.
    pub public_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`, lowercase) allowed to change things.
    pub allowed_origins: Vec<String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status.
    pub status: StatusCode,
    /// The error code of the JSON answer.
    pub code: &'static str,
    /// What was wrong, for the caller to read.
    pub message: String,
}

/// The content types a request that changes something may carry: JSON (`+json`
/// included) and component uploads.
fn is_api_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence == "application/wasm"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The host name of a `Host` value or an origin's authority (`[::1]:80` → `::1`).
fn host_name(authority: &str) -> String {
    let authority = authority.trim().to_ascii_lowercase();
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_owned();
    }
    match authority.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name.to_owned(),
        _ => authority,
    }
}

/// Whether `name` can only mean this machine.
fn is_loopback(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// What `Origin: scheme://host[:port]` names after the scheme.
fn origin_authority(origin: &str) -> Option<&str> {
    let (_, rest) = origin.split_once("://")?;
    Some(rest.trim_end_matches('/'))
}

impl WebGuard {
    /// The guard of a node listening on `loopback` (or not) with the operator's lists.
    pub fn new(loopback: bool, public_hosts: &[String], allowed_origins: &[String]) -> Self {
        WebGuard {
            any_host: !loopback && public_hosts.is_empty(),
            public_hosts: public_hosts.iter().map(|host| host_name(host)).collect(),
            allowed_origins: allowed_origins
                .iter()
                .map(|origin| origin.trim().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether a request with `method` and `headers` may be answered.
    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
        let host = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok());
        if let Some(host) = host
            && !self.any_host
        {
            let name = host_name(host);
            if !is_loopback(&name) && !self.public_hosts.contains(&name) {
                return Err(Refusal {
                    status: StatusCode::FORBIDDEN,
                    code: "forbidden_host",
                    message: format!(
                        "`Host: {}` is not a name of this node: it answers loopback names, and those given with --public-host",
                        crate::envelope::limits::cap_start(host, 200)
                    ),
                });
            }
        }
        let changes = matches!(
            *method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        );
        if !changes {
            return Ok(());
        }
        let origin = headers
            .get(header::ORIGIN)
            .and_then(|value| value.to_str().ok())
            .map(|origin| origin.trim().trim_end_matches('/').to_ascii_lowercase());
        let allowed = origin
            .as_ref()
            .is_some_and(|origin| self.allowed_origins.iter().any(|o| o == origin));
        if !allowed {
            let same_origin = match (&origin, host) {
                (None, _) => true,
                (Some(origin), Some(host)) => {
                    origin_authority(origin) == Some(host.trim().to_ascii_lowercase().as_str())
                }
                (Some(_), None) => false,
            };
            let cross_site = headers
                .get("sec-fetch-site")
                .and_then(|value| value.to_str().ok())
                .is_some_and(|site| site.eq_ignore_ascii_case("cross-site"));
            if !same_origin || cross_site {
                return Err(Refusal {
                    status: StatusCode::FORBIDDEN,
                    code: "forbidden_origin",
                    message: format!(
                        "a request from {} may not change this node: allow that origin with --allow-origin",
                        origin
                            .as_deref()
                            .map_or("another site".to_owned(), |origin| {
                                format!("`{}`", crate::envelope::limits::cap_start(origin, 200))
                            })
                    ),
                });
            }
        }
        if *method != Method::DELETE && !is_api_content_type(headers) {
            return Err(Refusal {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "unsupported_media_type",
                message: "a request that changes something is sent as application/json (or application/wasm for an upload): what a web page can send to another site without asking first is refused".into(),
            });
        }
        Ok(())
    }
}

/// The middleware: answers a refused request with its JSON error.
pub async fn guard(State(guard): State<Arc<WebGuard>>, request: Request, next: Next) -> Response {
    match guard.check(request.method(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            super::ApiError::new(refusal.status, refusal.code, refusal.message).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn loopback() -> WebGuard {
        WebGuard::new(true, &[], &[])
    }

    const JSON: (&str, &str) = ("content-type", "application/json");

    #[test]
    fn loopback_hosts_pass_and_others_are_refused() {
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "[::1]:8080",
            "app.localhost",
            "127.0.0.2",
        ] {
            let mut map = HeaderMap::new();
            map.insert("host", HeaderValue::from_str(host).unwrap());
            assert!(loopback().check(&Method::GET, &map).is_ok(), "{host}");
        }
        let refused = loopback()
            .check(&Method::GET, &headers(&[("host", "attacker.example:8080")]))
            .unwrap_err();
        assert_eq!(refused.code, "forbidden_host");
        let public = WebGuard::new(true, &["wasya.example.com".into()], &[]);
        assert!(
            public
                .check(&Method::GET, &headers(&[("host", "wasya.example.com:443")]))
                .is_ok()
        );
        assert!(
            public
                .check(&Method::GET, &headers(&[("host", "attacker.example")]))
                .is_err()
        );
        let exposed = WebGuard::new(false, &[], &[]);
        assert!(
            exposed
                .check(&Method::GET, &headers(&[("host", "10.0.0.7:8080")]))
                .is_ok()
        );
        let named = WebGuard::new(false, &["wasya.internal".into()], &[]);
        assert!(
            named
                .check(&Method::GET, &headers(&[("host", "10.0.0.7:8080")]))
                .is_err()
        );
    }

    #[test]
    fn changes_must_be_json_or_wasm() {
        let host = ("host", "127.0.0.1:8080");
        for simple in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ] {
            let mut map = headers(&[host]);
            map.insert("content-type", HeaderValue::from_static(simple));
            let refused = loopback().check(&Method::POST, &map).unwrap_err();
            assert_eq!(
                refused.status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{simple}"
            );
        }
        assert!(loopback().check(&Method::POST, &headers(&[host])).is_err());
        for fine in [
            "application/json",
            "application/json; charset=utf-8",
            "application/wasm",
            "application/merge-patch+json",
        ] {
            let mut map = headers(&[host]);
            map.insert("content-type", HeaderValue::from_static(fine));
            assert!(loopback().check(&Method::PUT, &map).is_ok(), "{fine}");
        }
        assert!(loopback().check(&Method::DELETE, &headers(&[host])).is_ok());
        assert!(loopback().check(&Method::GET, &headers(&[host])).is_ok());
    }

    #[test]
    fn another_origin_may_not_change_things_unless_allowed() {
        let host = ("host", "127.0.0.1:8080");
        let same = headers(&[host, JSON, ("origin", "http://127.0.0.1:8080")]);
        assert!(loopback().check(&Method::POST, &same).is_ok());
        // A page on another port of the same machine is another origin.
        let other = headers(&[host, JSON, ("origin", "http://localhost:18400")]);
        assert_eq!(
            loopback().check(&Method::POST, &other).unwrap_err().code,
            "forbidden_origin"
        );
        let opaque = headers(&[host, JSON, ("origin", "null")]);
        assert!(loopback().check(&Method::POST, &opaque).is_err());
        let cross = headers(&[host, JSON, ("sec-fetch-site", "cross-site")]);
        assert!(loopback().check(&Method::DELETE, &cross).is_err());
        let allowed = WebGuard::new(true, &[], &["http://localhost:18400/".into()]);
        assert!(allowed.check(&Method::POST, &other).is_ok());
        // Reading is not changing.
        let read = headers(&[host, ("origin", "http://localhost:18400")]);
        assert!(loopback().check(&Method::GET, &read).is_ok());
    }
}
