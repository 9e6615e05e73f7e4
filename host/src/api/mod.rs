//! The node's HTTP API (axum).
//!
//! One file per resource: [`envelopes`] (submit, look up, raw publish), [`events`]
//! (a submission's progress as Server-Sent Events, read through [`follow`]),
//! [`actors`] (deploy, options, list, remove), [`activity`] (actors' recent
//! throughput and latency), [`health`] (liveness, readiness, metrics), [`tools`] and
//! [`mcp`] (pipelines as tools), [`asya`] (Asya gateway's paths over the same data) and [`asya_reports`] (the
//! paths Asya's sidecars report to),
//! [`openapi`], the document generated from the handlers, and [`ui`], the status
//! page over all of them. [`guard`] stands in front of every route: the `Host` and
//! `Origin` rules that keep web pages out. Errors are JSON `{"error": code, "message": …}` with a
//! status code that says whose fault it is.

pub mod activity;
pub mod actors;
pub mod asya;
pub mod asya_reports;
pub mod auth;
pub mod envelopes;
pub mod error;
pub mod events;
pub mod follow;
pub mod guard;
pub mod health;
pub mod mcp;
pub mod openapi;
pub mod server;
pub mod tools;
pub mod ui;

use crate::router::Router;
use axum::Router as HttpRouter;
use axum::extract::{DefaultBodyLimit, Extension};
use axum::routing::{get, post};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

pub use error::ApiError;

/// What the handlers share.
pub struct ApiState {
    pub router: Arc<Router>,
    pub ready: Arc<AtomicBool>,
    pub deployments: Arc<crate::deployments::Deployments>,
    pub max_body_bytes: usize,
    /// The bearer token mutating endpoints require, if any.
    pub token: Option<String>,
    /// What readiness depends on beside the transport and the actors (the pool's
    /// shared store).
    pub readiness: Vec<Arc<dyn crate::readiness::Readiness>>,
    /// The pipelines offered as tools.
    pub tools: crate::tools::Tools,
    /// MCP sessions open at once, at most.
    pub mcp_sessions: usize,
    /// Asya's reporting paths take no token (`--open-reports`): Asya's sidecars send none.
    pub open_reports: bool,
    /// Which hosts and origins the API answers.
    pub guard: Arc<guard::WebGuard>,
}

/// The API's routes.
pub fn app(state: Arc<ApiState>) -> HttpRouter {
    let max_body = state.max_body_bytes;
    let activity = activity::Activity::start(&state.deployments);
    let sessions = mcp::Sessions::new(state.mcp_sessions);
    let mcp = HttpRouter::new()
        .nest_service("/mcp", mcp::service(state.clone(), &sessions))
        .layer(axum::middleware::from_fn_with_state(
            sessions,
            mcp::limit_sessions,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            mcp::require_token,
        ));
    HttpRouter::new()
        .merge(mcp)
        .route("/tools/call", post(tools::call_now))
        .route(
            "/v1/envelopes",
            post(envelopes::submit).get(envelopes::list_failed),
        )
        .route("/v1/envelopes/{id}", get(envelopes::get))
        .route("/v1/envelopes/{id}/events", get(events::stream))
        // Asya's gateway paths, for Asya's clients.
        .route("/envelopes", post(asya_reports::register))
        .route("/envelopes/{id}", get(asya::envelope))
        .route("/envelopes/{id}/progress", post(asya_reports::progress))
        .route("/envelopes/{id}/final", post(asya_reports::final_status))
        .route("/envelopes/{id}/stream", get(asya::stream))
        .route("/envelopes/{id}/active", get(asya::active))
        .route("/health", get(asya::health))
        .route("/v1/queues/{actor}/messages", post(envelopes::publish_raw))
        .route("/v1/actors", get(actors::list))
        .route("/v1/activity", get(activity::get))
        .route(
            "/v1/actors/{name}",
            get(actors::get)
                .put(actors::put)
                .patch(actors::patch)
                .delete(actors::delete),
        )
        .route("/v1/openapi.json", get(openapi::document))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/readyz", get(health::readyz))
        .merge(ui::routes())
        .layer(DefaultBodyLimit::max(max_body))
        .layer(Extension(activity))
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            state.guard.clone(),
            guard::guard,
        ))
}
