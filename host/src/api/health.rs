//! Liveness, readiness and the list of served actors.

use super::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// `GET /healthz`: the process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Alive", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: actors loaded and consuming, the transport connected, external
/// runtimes reachable, not stopping.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "Ready to take messages", body = String),
    (status = 503, description = "Not ready, and why", body = String),
))]
pub async fn readyz(State(state): State<Arc<ApiState>>) -> (StatusCode, String) {
    let unavailable = |reason: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}"),
        )
    };
    if !state.ready.load(Ordering::SeqCst) {
        return unavailable("stopping".into());
    }
    if let Some(reason) = state.router.transport().unready() {
        return unavailable(reason.into());
    }
    if let Some(reason) = state.readiness.iter().find_map(|check| check.unready()) {
        return unavailable(reason);
    }
    // One actor that cannot serve (a socket actor whose runtime is gone) takes the
    // node out only when it is all the node serves (the sidecar: one actor, its
    // runtime in the pod) or every actor is in that state; otherwise the node serves
    // the others and says which cannot.
    let (served, reasons) = state.deployments.readiness();
    if !reasons.is_empty() && reasons.len() == served {
        return unavailable(reasons.join("; "));
    }
    let mut said = Vec::new();
    if !reasons.is_empty() {
        said.push(format!(
            "{} of {served} actors cannot serve: {}",
            reasons.len(),
            reasons.join("; ")
        ));
    }
    // A broken record does not take the node out: the others are served.
    let broken = state.deployments.broken();
    if !broken.is_empty() {
        let listed: Vec<String> = broken
            .iter()
            .map(|(what, why)| format!("{what} ({})", crate::envelope::limits::cap_start(why, 300)))
            .collect();
        said.push(format!("broken deployment records: {}", listed.join("; ")));
    }
    if said.is_empty() {
        return (StatusCode::OK, "ready".into());
    }
    (StatusCode::OK, format!("ready; {}", said.join("; ")))
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "health", responses(
    (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain"),
))]
pub async fn metrics() -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
}
