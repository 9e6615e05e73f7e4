//! Deploying and managing actors: upload a component (a new actor or a hot swap),
//! list, inspect, remove.

use super::auth::Authorized;
use super::{ApiError, ApiState};
use crate::deployments::{ActorView, DeployError, Deployment};
use crate::transport::Transport;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use std::sync::Arc;

impl From<DeployError> for ApiError {
    fn from(error: DeployError) -> Self {
        let (status, code) = match &error {
            DeployError::Name(_) => (StatusCode::BAD_REQUEST, "invalid_name"),
            DeployError::Component(_) => (StatusCode::BAD_REQUEST, "invalid_component"),
            DeployError::NotFound(_) => (StatusCode::NOT_FOUND, "unknown_actor"),
            DeployError::NotWasm(_) => (StatusCode::CONFLICT, "not_a_wasm_actor"),
            DeployError::Transport(_) => (StatusCode::SERVICE_UNAVAILABLE, "transport_error"),
            DeployError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_error"),
        };
        ApiError::new(status, code, error.to_string())
    }
}

/// `GET /v1/actors`.
pub async fn list<T: Transport>(State(state): State<Arc<ApiState<T>>>) -> Json<Vec<ActorView>> {
    Json(state.deployments.list().await)
}

/// `GET /v1/actors/{name}`.
pub async fn get<T: Transport>(
    State(state): State<Arc<ApiState<T>>>,
    Path(name): Path<String>,
) -> Result<Json<ActorView>, ApiError> {
    state
        .deployments
        .get(&name)
        .await
        .map(Json)
        .ok_or_else(|| DeployError::NotFound(name).into())
}

/// `PUT /v1/actors/{name}` with `application/wasm`: deploy or hot-swap. `201` with a
/// new version, `200` when the bytes are the current version already.
pub async fn put<T: Transport>(
    _: Authorized,
    State(state): State<Arc<ApiState<T>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Deployment>), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/wasm") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("upload a component as application/wasm, not `{content_type}`"),
        ));
    }
    let deploys = &crate::metrics::metrics().deploys;
    let deployment = match state
        .deployments
        .deploy(&name, Arc::from(body.as_ref()))
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
    Ok((status, Json(deployment)))
}

/// `DELETE /v1/actors/{name}`: stop consuming; messages stay in the queue.
pub async fn delete<T: Transport>(
    _: Authorized,
    State(state): State<Arc<ApiState<T>>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.deployments.remove(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
