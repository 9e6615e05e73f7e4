//! Deploying and managing actors: upload a component (a new actor or a hot swap),
//! register a socket actor or set an actor's options, list, inspect, remove.
//!
//! One `PUT /v1/actors/{name}` takes both bodies, told apart by content type:
//! `application/wasm` is a component, `application/json` an [`ActorSpec`].

use super::auth::Authorized;
use super::error::ErrorBody;
use super::{ApiError, ApiState};
use crate::deployments::options::ActorSpec;
use crate::deployments::{ActorView, DeployError, Deployment, OptionsChange};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

impl From<DeployError> for ApiError {
    fn from(error: DeployError) -> Self {
        let (status, code) = match &error {
            DeployError::Name(_) => (StatusCode::BAD_REQUEST, "invalid_name"),
            DeployError::Component(_) => (StatusCode::BAD_REQUEST, "invalid_component"),
            DeployError::Spec(_) => (StatusCode::BAD_REQUEST, "invalid_options"),
            DeployError::NotFound(_) | DeployError::NothingToConfigure(_) => {
                (StatusCode::NOT_FOUND, "unknown_actor")
            }
            DeployError::NotWasm(_) => (StatusCode::CONFLICT, "not_a_wasm_actor"),
            DeployError::NoEngine(_) => (StatusCode::CONFLICT, "no_wasm_engine"),
            DeployError::TooMany(..) => (StatusCode::CONFLICT, "too_many_actors"),
            DeployError::Transport(_) => (StatusCode::SERVICE_UNAVAILABLE, "transport_error"),
            DeployError::Store(crate::store::StoreError::Conflict(_)) => {
                (StatusCode::CONFLICT, "conflict")
            }
            DeployError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_error"),
        };
        ApiError::new(status, code, crate::error_chain::chain(&error).to_string())
    }
}

/// `GET /v1/actors`.
#[utoipa::path(
    get, path = "/v1/actors", tag = "actors",
    responses((status = 200, description = "Every actor this node serves", body = Vec<ActorView>))
)]
pub async fn list(State(state): State<Arc<ApiState>>) -> Json<Vec<ActorView>> {
    Json(state.deployments.list())
}

/// `GET /v1/actors/{name}`.
#[utoipa::path(
    get, path = "/v1/actors/{name}", tag = "actors",
    params(("name" = String, Path, description = "The actor's name")),
    responses(
        (status = 200, description = "The actor: kind, versions, limits, counts", body = ActorView),
        (status = 404, description = "No such actor is served", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
) -> Result<Json<ActorView>, ApiError> {
    state
        .deployments
        .get(&name)
        .map(Json)
        .ok_or_else(|| DeployError::NotFound(name).into())
}

/// `PUT /v1/actors/{name}`: with `application/wasm`, deploy or hot-swap a component
/// (`201` with a new version, `200` when the bytes are the current version already);
/// with `application/json`, register a socket actor or set an actor's options (`200`
/// with the actor as it now runs).
#[utoipa::path(
    put, path = "/v1/actors/{name}", tag = "actors",
    params(("name" = String, Path, description = "`[a-z0-9][a-z0-9-]{0,62}`")),
    request_body(
        description = "A component targeting the `wasya:actor` world, or the actor's options",
        content(
            (Vec<u8> = "application/wasm"),
            (ActorSpec = "application/json"),
        )
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "A new version serves the actor", body = Deployment),
        (status = 200, description = "The component was already current (wasm), or the options apply (json)", body = ActorView),
        (status = 400, description = "A bad name, component or option", body = ErrorBody),
        (status = 404, description = "Options for an actor that is not served", body = ErrorBody),
        (status = 409, description = "A component for a socket actor's name, or the actor changed on another node of the pool first (retry)", body = ErrorBody),
        (status = 413, description = "The body is over the node's limit", body = ErrorBody),
        (status = 415, description = "Neither application/wasm nor application/json", body = ErrorBody),
        (status = 503, description = "The transport or the store cannot take the change now", body = ErrorBody),
    )
)]
pub async fn put(
    _: Authorized,
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/wasm") {
        return upload(&state, &name, body).await;
    }
    if content_type.starts_with("application/json") {
        let spec: ActorSpec = serde_json::from_slice(&body)
            .map_err(|error| ApiError::bad_request("invalid_options", error.to_string()))?;
        let view = state
            .deployments
            .configure(&name, OptionsChange::Replace(spec))
            .await?;
        return Ok((StatusCode::OK, Json(view)).into_response());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!(
            "upload a component as application/wasm or options as application/json, not `{content_type}`"
        ),
    ))
}

/// `PATCH /v1/actors/{name}`: change some of an actor's options and keep the rest
/// (a JSON merge patch of the options as `PUT` takes them: a field names what it sets,
/// `null` takes it back to the node's default, `env` merges by variable).
#[utoipa::path(
    patch, path = "/v1/actors/{name}", tag = "actors",
    params(("name" = String, Path, description = "`[a-z0-9][a-z0-9-]{0,62}`")),
    request_body(
        description = "The options to change, as `PUT` takes them",
        content(
            (ActorSpec = "application/merge-patch+json"),
            (ActorSpec = "application/json"),
        )
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The options apply", body = ActorView),
        (status = 400, description = "A bad option, or the options as patched do not hold together", body = ErrorBody),
        (status = 404, description = "No such actor", body = ErrorBody),
        (status = 409, description = "The actor changed on another node of the pool first (retry)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 503, description = "The store cannot take the change now", body = ErrorBody),
    )
)]
pub async fn patch(
    _: Authorized,
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if !(content_type.starts_with("application/json")
        || content_type.starts_with("application/merge-patch+json"))
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("send the options to change as application/json, not `{content_type}`"),
        ));
    }
    let patch: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&body).map_err(|error| {
            ApiError::bad_request(
                "invalid_options",
                format!("a patch is a JSON object of options: {error}"),
            )
        })?;
    let view = state
        .deployments
        .configure(&name, OptionsChange::Merge(patch))
        .await?;
    Ok((StatusCode::OK, Json(view)).into_response())
}

async fn upload(state: &ApiState, name: &str, body: Bytes) -> Result<Response, ApiError> {
    let deploys = &crate::metrics::metrics().deploys;
    let deployment = match state
        .deployments
        .deploy(name, Arc::from(body.as_ref()))
        .await
    {
        Ok(deployment) => deployment,
        Err(error) => {
            deploys.with_label_values(&["rejected"]).inc();
            return Err(error.into());
        }
    };
    deploys
        .with_label_values(&[if deployment.changed {
            "deployed"
        } else {
            "unchanged"
        }])
        .inc();
    let status = if deployment.changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(deployment)).into_response())
}

/// `DELETE /v1/actors/{name}`: stop consuming; messages stay in the queue.
#[utoipa::path(
    delete, path = "/v1/actors/{name}", tag = "actors",
    params(("name" = String, Path, description = "The actor's name")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "No longer served; its messages stay queued"),
        (status = 404, description = "No such actor is served", body = ErrorBody),
    )
)]
pub async fn delete(
    _: Authorized,
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.deployments.remove(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
