//! The status page an operator opens first, served at `/ui` (`/` redirects there).
//!
//! The page is plain HTML, CSS and JavaScript compiled into the binary with
//! `include_str!`: no build step, no CDN, nothing served from elsewhere, so the page
//! is there wherever the node is and always matches the API it talks to. It reads
//! the same open endpoints any client reads (`/v1/actors`, `/v1/activity`,
//! `/v1/envelopes?status=failed`, `/readyz`) and sends the node's bearer token, which
//! the operator types in, only with the requests that change something.
//!
//! A strict Content-Security-Policy keeps the page to its own assets and its own
//! node; `no-cache` makes a browser ask again after the node was upgraded.

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, X_CONTENT_TYPE_OPTIONS};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;

/// Where the page is served.
pub const PATH: &str = "/ui";

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/style.css");
const ICON: &str = include_str!("assets/icon.svg");

/// Only this page's own assets, and requests to its own node.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The page's routes, for any state.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to(PATH) }))
        .route(PATH, get(|| asset(INDEX, "text/html; charset=utf-8")))
        .route(
            "/ui/app.js",
            get(|| asset(SCRIPT, "text/javascript; charset=utf-8")),
        )
        .route(
            "/ui/style.css",
            get(|| asset(STYLE, "text/css; charset=utf-8")),
        )
        .route("/ui/icon.svg", get(|| asset(ICON, "image/svg+xml")))
}

async fn asset(body: &'static str, content_type: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "no-cache"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (HeaderName::from_static("content-security-policy"), POLICY),
        ],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn served(body: &'static str, kind: &'static str) -> axum::response::Response {
        asset(body, kind).await.into_response()
    }

    #[tokio::test]
    async fn the_page_loads_only_its_own_assets() {
        assert!(INDEX.contains(r#"src="/ui/app.js""#));
        assert!(INDEX.contains(r#"href="/ui/style.css""#));
        assert!(INDEX.contains(r#"href="/ui/icon.svg""#));
        // Nothing from elsewhere: no CDN, no external font.
        let script = SCRIPT.replace("http://www.w3.org/2000/svg", "");
        for text in [INDEX, STYLE, script.as_str()] {
            assert!(!text.contains("://"));
        }
        let response = served(INDEX, "text/html; charset=utf-8").await;
        let headers = response.headers();
        assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[CACHE_CONTROL], "no-cache");
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("connect-src 'self'")
        );
    }
}
