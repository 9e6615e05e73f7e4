//! Calling a tool: the arguments become an envelope's payload on the tool's route,
//! and the call waits for the pipeline's end, reporting its progress on the way.
//!
//! One call path serves MCP's `tools/call` ([`super::mcp`]); Asya's `POST /tools/call`
//! answers at once with the envelope's id and where to follow it, as Asya's gateway
//! does. A pipeline that fails is the tool's answer (an error result that says why),
//! not a failure of the call; a call whose arguments do not fit the parameters is
//! refused before anything is queued.

use super::envelopes::{RouteSpec, SubmitRequest, submit_envelope};
use super::follow::{self, Step};
use super::{ApiError, ApiState};
use crate::defaults::MAX_WAIT;
use crate::envelope::Headers;
use crate::outcomes::OutcomeView;
use crate::progress::ProgressEvent;
use crate::tools::Tool;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// How long a call waits past its tool's deadline for the submission to read as
/// timed out.
const DEADLINE_SLACK: std::time::Duration = std::time::Duration::from_secs(1);

/// How a call ended, as a tool answers it.
#[derive(Debug)]
pub enum Answer {
    /// The pipeline succeeded: its result (one payload, or all of a fan-out's).
    Succeeded(Value),
    /// The pipeline failed: what its error-end said.
    Failed(String),
    /// Still running at the end of the wait: where to follow it.
    Running(Value),
    /// Refused before anything was queued (arguments, an unknown actor, a full queue).
    Refused(String),
}

impl Answer {
    /// The text an MCP client reads.
    pub fn text(&self) -> String {
        match self {
            Answer::Succeeded(Value::String(text)) => text.clone(),
            Answer::Succeeded(value) | Answer::Running(value) => value.to_string(),
            Answer::Failed(message) | Answer::Refused(message) => message.clone(),
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Answer::Failed(_) | Answer::Refused(_))
    }
}

/// Whose paths `status_url` names: wasya's (`/v1/envelopes/{id}`), or Asya's
/// (`/envelopes/{id}`) in the answer to Asya's `POST /tools/call`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paths {
    Wasya,
    Asya,
}

/// Where a submission can be followed, in wasya's paths and Asya's.
pub fn where_to_follow(id: &str, tool: &Tool, paths: Paths) -> Value {
    let mut answer = json!({
        "envelope_id": id,
        "status": "running",
        "status_url": match paths {
            Paths::Wasya => format!("/v1/envelopes/{id}"),
            Paths::Asya => format!("/envelopes/{id}"),
        },
        "envelope_url": format!("/v1/envelopes/{id}"),
        "events_url": format!("/v1/envelopes/{id}/events"),
        "stream_url": format!("/envelopes/{id}/stream"),
    });
    if !tool.metadata.is_empty() {
        answer["metadata"] = json!(tool.metadata);
    }
    answer
}

fn answer_of(view: OutcomeView) -> Answer {
    match view.first_failure() {
        Some((message, Some(actor))) => {
            Answer::Failed(format!("the pipeline failed at {actor}: {message}"))
        }
        Some((message, None)) => Answer::Failed(format!("the pipeline failed: {message}")),
        None => Answer::Succeeded(view.result().unwrap_or(Value::Array(Vec::new()))),
    }
}

/// Submits a call of `tool` with `arguments`; its envelope's id.
async fn submit(
    state: &ApiState,
    tool: &Tool,
    arguments: Map<String, Value>,
) -> Result<String, Answer> {
    let payload = tool
        .payload(arguments)
        .map_err(|error| Answer::Refused(error.to_string()))?;
    let request = SubmitRequest {
        route: RouteSpec::Actors(tool.route.clone()),
        payload,
        headers: Headers::new(),
    };
    let id = submit_envelope(state, request)
        .await
        .map_err(|error| Answer::Refused(format!("{}: {}", error.code, error.message)))?;
    // A tool's call fails at the tool's timeout wherever its envelope is (Asya's
    // gateway's rule; a timeout of 0 sets none).
    if !tool.timeout.is_zero() {
        state.router.outcomes().set_deadline(&id, tool.timeout);
    }
    Ok(id)
}

/// Calls `tool` and waits for the pipeline (at most the tool's timeout, when the
/// submission fails, and [`MAX_WAIT`]), handing each progress event to `progress` on
/// the way.
pub async fn call(
    state: &ApiState,
    tool: &Tool,
    arguments: Map<String, Value>,
    mut progress: impl FnMut(&ProgressEvent, f64) -> futures::future::BoxFuture<'static, ()>,
) -> Answer {
    let id = match submit(state, tool, arguments).await {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    // A timeout of 0 sets no deadline: the call waits as long as any. Else it waits a
    // little past the deadline, to answer the timeout rather than "running".
    let wait = if tool.timeout.is_zero() {
        MAX_WAIT
    } else {
        (tool.timeout + DEADLINE_SLACK).min(MAX_WAIT)
    };
    let outcomes = state.router.outcomes().clone();
    let stopping = state.router.stopping().clone();
    let mut steps = std::pin::pin!(follow::follow(outcomes, id.clone(), 0, stopping));
    let mut percent: f64 = 0.0;
    let followed = tokio::time::timeout(wait, async {
        while let Some(step) = steps.next().await {
            match step {
                Step::Event(event) => {
                    percent = percent.max(super::asya::percent_of(&event));
                    if tool.progress {
                        progress(&event, percent).await;
                    }
                }
                Step::Partial(_) => {}
                Step::Ended(view) => return Some(answer_of(view)),
                Step::Evicted => return None,
            }
        }
        None
    })
    .await;
    match followed {
        Ok(Some(answer)) => answer,
        _ => Answer::Running(where_to_follow(&id, tool, Paths::Wasya)),
    }
}

/// Body of Asya's `POST /tools/call`.
#[derive(Debug, Deserialize)]
pub struct CallRequest {
    pub name: String,
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

/// Asya's `POST /tools/call`: submits and answers at once with the envelope's id and
/// where to follow it, as an MCP `CallToolResult`.
pub async fn call_now(
    _: super::auth::Authorized,
    State(state): State<Arc<ApiState>>,
    body: Result<Json<CallRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(request) = body.map_err(|rejection| {
        ApiError::new(rejection.status(), "invalid_request", rejection.body_text())
    })?;
    let Some(tool) = state.tools.get(&request.name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_tool",
            format!(
                "Tool \"{}\" not found",
                crate::envelope::limits::echo(&request.name)
            ),
        ));
    };
    let content = |text: String| json!([{"type": "text", "text": text}]);
    Ok(Json(match submit(&state, tool, request.arguments).await {
        Ok(id) => {
            let mut answer = where_to_follow(&id, tool, Paths::Asya);
            answer["message"] = json!("Envelope created successfully");
            json!({"content": content(answer.to_string())})
        }
        Err(refused) => json!({"content": content(refused.text()), "isError": true}),
    }))
}
