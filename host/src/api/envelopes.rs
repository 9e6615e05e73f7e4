//! Submitting envelopes and reading their outcomes.
//!
//! `POST /v1/envelopes` builds an envelope (the node assigns the id) and puts it on the
//! queue of its first actor; `GET /v1/envelopes/{id}` answers `pending`, `succeeded`
//! or `failed` and can wait (`?wait=30s`) for the end. `POST /v1/queues/{actor}/messages`
//! puts raw bytes on a queue, exactly as an outside producer would, malformed or not.

use super::auth::Authorized;
use super::error::ErrorBody;
use super::{ApiError, ApiState};
use crate::defaults::{MAX_WAIT, MAX_WAIT_TEXT};
use crate::envelope::{Envelope, EnvelopeError, Headers, Route};
use crate::outcomes::{Lookup, OutcomeView, Status};
use crate::records::validate_name;
use crate::router::submit::SubmitError;
use crate::transport::TransportError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// How long a submission waits for room in a full queue before answering 503.
const SUBMIT_WAIT: Duration = Duration::from_secs(10);

/// A route as a client gives it: a list of actors, or the envelope's route object.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum RouteSpec {
    Actors(Vec<String>),
    Full {
        actors: Vec<String>,
        #[serde(default)]
        current: usize,
        #[serde(default)]
        metadata: Option<Value>,
    },
}

/// Body of `POST /v1/envelopes`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SubmitRequest {
    pub route: RouteSpec,
    #[serde(default)]
    pub payload: Value,
    #[serde(default)]
    pub headers: Headers,
}

fn route_of(spec: RouteSpec) -> Result<Route, ApiError> {
    let (actors, current, metadata) = match spec {
        RouteSpec::Actors(actors) => (actors, 0, None),
        RouteSpec::Full {
            actors,
            current,
            metadata,
        } => (actors, current, metadata),
    };
    if actors.is_empty() {
        return Err(ApiError::bad_request(
            "empty_route",
            "route needs at least one actor",
        ));
    }
    if current >= actors.len() {
        return Err(ApiError::bad_request(
            "invalid_route",
            format!(
                "route.current = {current} is out of range for {} actor(s)",
                actors.len()
            ),
        ));
    }
    for actor in &actors {
        validate_name(actor)
            .map_err(|error| ApiError::bad_request("invalid_route", error.to_string()))?;
    }
    Ok(Route {
        actors,
        current,
        metadata,
    })
}

/// The answer to a submission.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Submitted {
    /// The envelope's id, assigned by the node.
    pub id: String,
    /// Where its outcome is read (`?wait=` to wait for it).
    pub status_url: String,
    /// Where its progress streams (Server-Sent Events).
    pub events_url: String,
}

impl Submitted {
    pub fn new(id: String) -> Self {
        Submitted {
            status_url: format!("/v1/envelopes/{id}"),
            events_url: format!("/v1/envelopes/{id}/events"),
            id,
        }
    }
}

/// Query of `POST /v1/envelopes`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SubmitQuery {
    /// Answer with the outcome itself when the submission ends within this long (`30s`;
    /// at most `5m`); `202` with the id when it does not.
    pub wait: Option<String>,
}

/// The answer to a raw publish.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Published {
    pub actor: String,
}

/// `POST /v1/envelopes` → `202 {"id", "status_url", "events_url"}`, or with `?wait=`
/// the outcome when it ends in time.
#[utoipa::path(
    post, path = "/v1/envelopes", tag = "envelopes",
    request_body = SubmitRequest,
    params(SubmitQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "With `?wait=`: the submission ended within the wait; its outcome", body = OutcomeView),
        (status = 202, description = "Queued for its first actor (with `?wait=`: still running at the end of the wait)", body = Submitted),
        (status = 400, description = "The request or its route is invalid, or the payload nests too deep (`too_deep`)", body = ErrorBody),
        (status = 404, description = "No actor of that name is served", body = ErrorBody),
        (status = 413, description = "The envelope is over the node's `--max-envelope` less the room kept for an error-end wrapper", body = ErrorBody),
        (status = 503, description = "The queue stayed full, the transport is down, or the node is stopping", body = ErrorBody),
    )
)]
pub async fn submit(
    _: Authorized,
    State(state): State<Arc<ApiState>>,
    Query(query): Query<SubmitQuery>,
    http_headers: axum::http::HeaderMap,
    body: Result<Json<SubmitRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(mut request) = body.map_err(|rejection| {
        ApiError::new(rejection.status(), "invalid_request", rejection.body_text())
    })?;
    // A caller inside a trace: the envelope continues it unless it names its own.
    for name in [crate::trace::TRACEPARENT, "tracestate"] {
        if let Some(value) = http_headers.get(name).and_then(|value| value.to_str().ok()) {
            request
                .headers
                .entry(name.to_owned())
                .or_insert_with(|| value.to_owned());
        }
    }
    let wait = query.wait.as_deref().map(wait_of).transpose()?;
    let id = submit_envelope(&state, request).await?;
    if let Some(wait) = wait
        && let Lookup::Found(view) = state.router.outcomes().wait(&id, wait).await
        && view.status != Status::Pending
    {
        return Ok(Json(view).into_response());
    }
    Ok((StatusCode::ACCEPTED, Json(Submitted::new(id))).into_response())
}

/// Builds the envelope of a submission and puts it on its first actor's queue; its id.
pub(super) async fn submit_envelope(
    state: &ApiState,
    request: SubmitRequest,
) -> Result<String, ApiError> {
    let route = route_of(request.route)?;
    let envelope = Envelope {
        id: uuid::Uuid::new_v4().to_string(),
        parent_id: None,
        route,
        headers: request.headers,
        payload: request.payload,
    };
    let submitted = tokio::time::timeout(SUBMIT_WAIT, state.router.submit(&envelope)).await;
    if !matches!(submitted, Ok(Ok(()))) {
        // Not taken in: no outcome will ever come, so none is waited for.
        state.router.outcomes().withdraw(&envelope.id);
    }
    match submitted {
        Ok(Ok(())) => Ok(envelope.id),
        Ok(Err(error)) => Err(submit_error(
            error,
            envelope.route.current_actor().unwrap_or(""),
        )),
        Err(_) => Err(queue_full()),
    }
}

fn queue_full() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "queue_full",
        "the queue stayed full; retry later",
    )
}

fn submit_error(error: SubmitError, actor: &str) -> ApiError {
    match error {
        SubmitError::Stopping => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping",
            error.to_string(),
        ),
        SubmitError::Refused(refused @ EnvelopeError::TooLarge { .. }) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "envelope_too_large",
            format!(
                "{refused} (--max-envelope, less {} kept for an error-end wrapper)",
                crate::units::format_bytes(crate::envelope::limits::ERROR_ROOM)
            ),
        ),
        SubmitError::Refused(refused) => {
            ApiError::bad_request(refused.kind().as_str().to_owned(), refused.to_string())
        }
        SubmitError::Transport(TransportError::NoSuchQueue(_)) => ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_actor",
            format!("no actor named `{actor}` is served"),
        ),
        SubmitError::Transport(TransportError::Store(store)) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            format!(
                "{}; nothing was accepted, retry later",
                crate::error_chain::chain(&store)
            ),
        ),
        SubmitError::Transport(other) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "transport_error",
            crate::error_chain::chain(&other).to_string(),
        ),
    }
}

/// Query of `GET /v1/envelopes/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct WaitQuery {
    /// Wait this long for the submission to end (`30s`, `500ms`; at most `5m`).
    pub wait: Option<String>,
}

/// The `?wait=` asked for: a duration up to [`MAX_WAIT`].
fn wait_of(text: &str) -> Result<Duration, ApiError> {
    let wait = crate::units::parse_duration(text)
        .map_err(|error| ApiError::bad_request("invalid_wait", error))?;
    if wait > MAX_WAIT {
        return Err(ApiError::bad_request(
            "invalid_wait",
            format!("wait={text} is over the longest wait, {MAX_WAIT_TEXT}: wait again after it"),
        ));
    }
    Ok(wait)
}

/// `GET /v1/envelopes/{id}` → the outcome; `404` if unknown, `410` if evicted.
#[utoipa::path(
    get, path = "/v1/envelopes/{id}", tag = "envelopes",
    params(("id" = String, Path, description = "The id a submission answered"), WaitQuery),
    responses(
        (status = 200, description = "Pending, succeeded or failed, with the results", body = OutcomeView),
        (status = 400, description = "An invalid `wait`, or one over 5m", body = ErrorBody),
        (status = 404, description = "No such envelope is known", body = ErrorBody),
        (status = 410, description = "The outcome was known and has been evicted to keep the node within --outcome-capacity / --outcome-memory", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Query(query): Query<WaitQuery>,
) -> Result<Json<OutcomeView>, ApiError> {
    let outcomes = state.router.outcomes();
    let lookup = match query.wait {
        Some(wait) => {
            let wait = wait_of(&wait)?;
            tokio::select! {
                lookup = outcomes.wait(&id, wait) => lookup,
                // A stopping node answers what it knows now, so it can close.
                _ = state.router.stopping().cancelled() => outcomes.get(&id).await,
            }
        }
        None => outcomes.get(&id).await,
    };
    found(&id, lookup).map(Json)
}

/// The view a lookup found, or the error that says why there is none: `410` for a
/// submission the node knew and evicted, `404` for one it never knew.
pub(super) fn found(id: &str, lookup: Lookup) -> Result<OutcomeView, ApiError> {
    match lookup {
        Lookup::Found(view) => Ok(view),
        Lookup::Evicted => Err(ApiError::new(
            StatusCode::GONE,
            "evicted",
            format!(
                "the outcome of `{id}` was evicted: the node keeps the most recent outcomes within --outcome-capacity and --outcome-memory, oldest first"
            ),
        )),
        Lookup::Unknown => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_envelope",
            format!("no envelope `{id}` is known"),
        )),
    }
}

/// Query of `GET /v1/envelopes`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    pub status: Option<String>,
    pub limit: Option<usize>,
}

/// `GET /v1/envelopes?status=failed` → the most recent failed submissions.
#[utoipa::path(
    get, path = "/v1/envelopes", tag = "envelopes",
    params(ListQuery),
    responses(
        (status = 200, description = "The most recent failed envelopes, newest first", body = Vec<OutcomeView>),
        (status = 400, description = "A filter other than status=failed", body = ErrorBody),
    )
)]
pub async fn list_failed(
    State(state): State<Arc<ApiState>>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<OutcomeView>>, ApiError> {
    if query.status.as_deref() != Some("failed") {
        return Err(ApiError::bad_request(
            "unsupported_filter",
            "list with ?status=failed (other outcomes are read by id)",
        ));
    }
    let limit = query.limit.unwrap_or(20).min(1000);
    Ok(Json(state.router.outcomes().recent_failures(limit).await))
}

/// `POST /v1/queues/{actor}/messages`: raw bytes onto an actor's queue.
#[utoipa::path(
    post, path = "/v1/queues/{actor}/messages", tag = "envelopes",
    params(("actor" = String, Path, description = "The actor whose queue takes the bytes")),
    request_body(content = Vec<u8>, description = "The message, as a producer would publish it (valid or not), sent as JSON", content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued", body = Published),
        (status = 400, description = "An invalid actor name", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
        (status = 413, description = "Over the node's `--max-envelope` less the room kept for an error-end wrapper", body = ErrorBody),
        (status = 503, description = "The queue stayed full, the transport is down, or the node is stopping", body = ErrorBody),
    )
)]
pub async fn publish_raw(
    _: Authorized,
    State(state): State<Arc<ApiState>>,
    Path(actor): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Published>), ApiError> {
    validate_name(&actor)
        .map_err(|error| ApiError::bad_request("invalid_actor", error.to_string()))?;
    match tokio::time::timeout(SUBMIT_WAIT, state.router.publish_raw(&actor, body)).await {
        Ok(Ok(())) => Ok((StatusCode::ACCEPTED, Json(Published { actor }))),
        Ok(Err(error)) => Err(submit_error(error, &actor)),
        Err(_) => Err(queue_full()),
    }
}
