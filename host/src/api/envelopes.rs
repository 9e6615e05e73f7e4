//! Submitting envelopes and reading their outcomes.
//!
//! `POST /v1/envelopes` builds an envelope (the node assigns the id) and puts it on the
//! queue of its first actor; `GET /v1/envelopes/{id}` answers `pending`, `succeeded`
//! or `failed` and can wait (`?wait=30s`) for the end. `POST /v1/queues/{actor}/messages`
//! puts raw bytes on a queue, exactly as an outside producer would, malformed or not.

use super::auth::Authorized;
use super::error::ErrorBody;
use super::{ApiError, ApiState};
use crate::actors::validate_name;
use crate::envelope::{Envelope, Headers, Route};
use crate::outcomes::OutcomeView;
use crate::transport::{Transport, TransportError};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// How long a submission waits for room in a full queue before answering 503.
const SUBMIT_WAIT: Duration = Duration::from_secs(10);
/// The longest `?wait=` honoured.
const MAX_WAIT: Duration = Duration::from_secs(300);

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
}

/// The answer to a raw publish.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Published {
    pub actor: String,
}

/// `POST /v1/envelopes` → `202 {"id"}`.
#[utoipa::path(
    post, path = "/v1/envelopes", tag = "envelopes",
    request_body = SubmitRequest,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued for its first actor", body = Submitted),
        (status = 400, description = "The request or its route is invalid", body = ErrorBody),
        (status = 404, description = "No actor of that name is served", body = ErrorBody),
        (status = 503, description = "The queue stayed full, or the transport is down", body = ErrorBody),
    )
)]
pub async fn submit<T: Transport>(
    _: Authorized,
    State(state): State<Arc<ApiState<T>>>,
    body: Result<Json<SubmitRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Submitted>), ApiError> {
    let Json(request) = body.map_err(|rejection| {
        ApiError::new(rejection.status(), "invalid_request", rejection.body_text())
    })?;
    let route = route_of(request.route)?;
    let envelope = Envelope {
        id: uuid::Uuid::new_v4().to_string(),
        parent_id: None,
        route,
        headers: request.headers,
        payload: request.payload,
    };
    match tokio::time::timeout(SUBMIT_WAIT, state.router.submit(&envelope)).await {
        Ok(Ok(())) => Ok((StatusCode::ACCEPTED, Json(Submitted { id: envelope.id }))),
        Ok(Err(error)) => Err(send_error(
            error,
            envelope.route.current_actor().unwrap_or(""),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_full",
            "the first actor's queue stayed full; retry later",
        )),
    }
}

fn send_error(error: TransportError, actor: &str) -> ApiError {
    match error {
        TransportError::NoSuchQueue(_) => ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_actor",
            format!("no actor named `{actor}` is served"),
        ),
        other => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "transport_error",
            other.to_string(),
        ),
    }
}

/// Query of `GET /v1/envelopes/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct WaitQuery {
    /// Wait this long for the submission to end (`30s`, `500ms`).
    pub wait: Option<String>,
}

/// `GET /v1/envelopes/{id}` → the outcome, `404` if unknown.
#[utoipa::path(
    get, path = "/v1/envelopes/{id}", tag = "envelopes",
    params(("id" = String, Path, description = "The id a submission answered"), WaitQuery),
    responses(
        (status = 200, description = "Pending, succeeded or failed, with the results", body = OutcomeView),
        (status = 400, description = "An invalid `wait`", body = ErrorBody),
        (status = 404, description = "No such envelope is known", body = ErrorBody),
    )
)]
pub async fn get<T: Transport>(
    State(state): State<Arc<ApiState<T>>>,
    Path(id): Path<String>,
    Query(query): Query<WaitQuery>,
) -> Result<Json<OutcomeView>, ApiError> {
    let outcomes = state.router.outcomes();
    let view = match query.wait {
        Some(wait) => {
            let wait = crate::config::parse_duration(&wait)
                .map_err(|error| ApiError::bad_request("invalid_wait", error))?;
            outcomes.wait(&id, wait.min(MAX_WAIT)).await
        }
        None => outcomes.get(&id).await,
    };
    view.map(Json).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_envelope",
            format!("no envelope `{id}` is known"),
        )
    })
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
pub async fn list_failed<T: Transport>(
    State(state): State<Arc<ApiState<T>>>,
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
    request_body(content = Vec<u8>, description = "The message, as a producer would publish it (valid or not)", content_type = "application/octet-stream"),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued", body = Published),
        (status = 400, description = "An invalid actor name", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
        (status = 503, description = "The queue stayed full, or the transport is down", body = ErrorBody),
    )
)]
pub async fn publish_raw<T: Transport>(
    _: Authorized,
    State(state): State<Arc<ApiState<T>>>,
    Path(actor): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Published>), ApiError> {
    validate_name(&actor)
        .map_err(|error| ApiError::bad_request("invalid_actor", error.to_string()))?;
    match tokio::time::timeout(SUBMIT_WAIT, state.router.publish_raw(&actor, body)).await {
        Ok(Ok(())) => Ok((StatusCode::ACCEPTED, Json(Published { actor }))),
        Ok(Err(error)) => Err(send_error(error, &actor)),
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_full",
            "the queue stayed full",
        )),
    }
}
