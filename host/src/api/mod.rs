//! The node's HTTP API (axum).
//!
//! One file per resource: [`envelopes`] (submit, look up, raw publish), [`health`]
//! (liveness, readiness, the served actors). Errors are JSON `{"error": code,
//! "message": …}` with a status code that says whose fault it is.

pub mod actors;
pub mod auth;
pub mod envelopes;
pub mod error;
pub mod health;

use crate::router::Router;
use crate::transport::Transport;
use axum::Router as HttpRouter;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

pub use error::ApiError;

/// An actor as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ServedActor {
    pub name: String,
    pub kind: &'static str,
    /// The sha256 of a wasm actor's component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The socket of an external runtime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    pub concurrency: usize,
    pub timeout_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_limit_bytes: Option<usize>,
}

impl ServedActor {
    /// How the API shows a wasm actor served `concurrency` messages at a time.
    pub fn wasm(name: &str, actor: &crate::runtime::wasm::WasmActor, concurrency: usize) -> Self {
        ServedActor {
            name: name.to_owned(),
            kind: "wasm",
            digest: Some(actor.digest().to_owned()),
            socket: None,
            concurrency,
            timeout_ms: actor.limits().timeout.as_millis() as u64,
            memory_limit_bytes: Some(actor.limits().memory_bytes),
        }
    }
}

/// What the handlers share.
pub struct ApiState<T: Transport> {
    pub router: Arc<Router<T>>,
    pub ready: Arc<AtomicBool>,
    pub deployments: Arc<crate::deployments::Deployments<T>>,
    pub max_body_bytes: usize,
    /// The bearer token mutating endpoints require, if any.
    pub token: Option<String>,
}

/// The API's routes.
pub fn app<T: Transport>(state: Arc<ApiState<T>>) -> HttpRouter {
    let max_body = state.max_body_bytes;
    HttpRouter::new()
        .route(
            "/v1/envelopes",
            post(envelopes::submit::<T>).get(envelopes::list_failed::<T>),
        )
        .route("/v1/envelopes/{id}", get(envelopes::get::<T>))
        .route(
            "/v1/queues/{actor}/messages",
            post(envelopes::publish_raw::<T>),
        )
        .route("/v1/actors", get(actors::list::<T>))
        .route(
            "/v1/actors/{name}",
            get(actors::get::<T>)
                .put(actors::put::<T>)
                .delete(actors::delete::<T>),
        )
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/readyz", get(health::readyz::<T>))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}
