//! Asya's gateway API, served beside wasya's own so that Asya's clients work unchanged.
//!
//! Asya's gateway names the same ideas differently: `GET /envelopes/{id}` answers an
//! envelope with `status` (`pending`, `running`, `succeeded`, `failed`),
//! `progress_percent`, `current_actor_idx`, `result` and `error`;
//! `GET /envelopes/{id}/stream` sends `event: update` objects with `envelope_state`;
//! `GET /envelopes/{id}/active` says whether it still runs; `POST /tools/call` calls a
//! tool ([`super::tools`]). The views here are computed from the same progress events
//! and outcome as wasya's own endpoints; nothing is stored twice.
//!
//! `progress_percent` follows Asya's rule: at the actor of index `i` of `n`, received
//! counts 10, processing 50 and completed 100 of that actor's share, and the figure
//! never goes back (a fan-out's slower branch does not lower it).

use super::ApiState;
use super::follow::{self, Step};
use crate::defaults::SSE_KEEP_ALIVE;
use crate::envelope::Headers;
use crate::outcomes::details::{Details, DetailsLookup};
use crate::outcomes::{Lookup, OutcomeView, Status};
use crate::progress::{ProgressEvent, Stage};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use std::convert::Infallible;
use std::sync::Arc;

/// An envelope as Asya's gateway answers it.
#[derive(Debug, Serialize, PartialEq)]
pub struct AsyaEnvelope {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    pub status: &'static str,
    pub route: AsyaRoute,
    #[serde(skip_serializing_if = "Headers::is_empty")]
    pub headers: Headers,
    /// The payload the submission started with (a tool's arguments); `null` for a
    /// fan-out child, as Asya's gateway has it.
    pub payload: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// When a tool's call fails unless it ended; Asya's zero time without one.
    pub deadline: String,
    pub progress_percent: f64,
    pub current_actor_idx: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_actor_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub actors_completed: usize,
    pub total_actors: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// The route part of [`AsyaEnvelope`].
#[derive(Debug, Serialize, PartialEq)]
pub struct AsyaRoute {
    pub actors: Vec<String>,
    pub current: usize,
}

/// One `event: update` of Asya's stream.
#[derive(Debug, Serialize, PartialEq)]
pub struct AsyaUpdate {
    pub id: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub progress_percent: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actors: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_actor_idx: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelope_state: Option<&'static str>,
    pub timestamp: String,
}

/// The share of the route an event stands for, in percent.
pub fn percent_of(event: &ProgressEvent) -> f64 {
    let weight = match event.stage {
        Stage::Received => 10.0,
        Stage::Processing => 50.0,
        Stage::Completed | Stage::Failed => 100.0,
    };
    let actors = event.hop.route.len().max(1) as f64;
    ((event.hop.index as f64 * 100.0 + weight) / actors).min(100.0)
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// What an event says, in Asya's words.
fn message_of(event: &ProgressEvent) -> String {
    match event.stage {
        Stage::Received => format!("Received message in {}", event.hop.actor),
        Stage::Processing => format!("Processing in {}", event.hop.actor),
        Stage::Completed => format!("Completed processing in {}", event.hop.actor),
        Stage::Failed => format!(
            "Failed in {}: {}",
            event.hop.actor,
            event.message.as_deref().unwrap_or("error")
        ),
    }
}

/// `succeeded` or `failed` for an ended submission.
fn final_status(view: &OutcomeView) -> &'static str {
    match view.status {
        Status::Failed => "failed",
        Status::Succeeded => "succeeded",
        Status::Pending => "running",
    }
}

fn final_message(view: &OutcomeView) -> String {
    match view.first_failure() {
        Some((message, Some(actor))) => format!("Envelope failed at actor '{actor}': {message}"),
        Some((message, None)) => format!("Envelope failed: {message}"),
        None => "Envelope completed successfully".to_owned(),
    }
}

/// Asya's `deadline` when there is none: Go's zero time, as its gateway writes it.
const NO_DEADLINE: &str = "0001-01-01T00:00:00Z";

/// The result Asya's gateway gives: the envelope's own (for a fan-out, the first
/// child's, which keeps the submission's id), else what the outcome reads.
fn result_of(id: &str, view: &OutcomeView) -> Option<Value> {
    view.ended
        .iter()
        .find(|ended| ended.envelope.id == id && ended.end == crate::records::HAPPY_END)
        .map(|ended| ended.envelope.payload.clone())
        .or_else(|| view.result())
}

/// The envelope view of a submission (or a fan-out child) from what is known of it.
pub fn envelope_view(id: &str, details: &Details) -> AsyaEnvelope {
    let (events, view) = (details.events.as_slice(), &details.view);
    let submission = details.submission.as_deref();
    let deadline = submission.and_then(|submission| submission.deadline);
    let last = events.last();
    let ended = view.status != Status::Pending;
    let progress = events.iter().map(percent_of).fold(0.0, f64::max);
    let (route, current) = last.map_or_else(
        || {
            (
                submission.map_or_else(Vec::new, |submission| submission.actors.clone()),
                0,
            )
        },
        |event| (event.hop.route.clone(), event.hop.index),
    );
    AsyaEnvelope {
        id: id.to_owned(),
        parent_id: details.parent_id.clone(),
        headers: submission.map_or_else(Headers::new, |submission| submission.headers.clone()),
        payload: submission.map_or(Value::Null, |submission| submission.payload.clone()),
        timeout_seconds: deadline.map(|deadline| deadline.timeout.as_secs()),
        deadline: deadline.map_or_else(
            || NO_DEADLINE.to_owned(),
            |deadline| humantime::format_rfc3339_millis(deadline.at).to_string(),
        ),
        status: if ended {
            final_status(view)
        } else if events.is_empty() {
            "pending"
        } else {
            "running"
        },
        total_actors: route.len(),
        route: AsyaRoute {
            actors: route,
            current,
        },
        progress_percent: if ended { 100.0 } else { round2(progress) },
        current_actor_idx: current,
        current_actor_name: last.map(|event| event.hop.actor.clone()),
        message: if ended {
            Some(final_message(view))
        } else {
            last.map(message_of)
        },
        actors_completed: events
            .iter()
            .filter(|event| event.stage == Stage::Completed)
            .count(),
        result: result_of(id, view),
        error: view.first_failure().map(|(message, _)| message.to_owned()),
        created_at: submission
            .map(|submission| crate::progress::event::At(submission.created).to_string())
            .or_else(|| events.first().map(|event| event.at.to_string())),
        updated_at: last.map(|event| event.at.to_string()),
    }
}

/// Renders followed steps as Asya's updates, keeping progress from going back.
struct Updates {
    id: String,
    progress: f64,
}

impl Updates {
    fn update(&mut self, step: Step) -> AsyaUpdate {
        let now = || crate::progress::event::At::now().to_string();
        match step {
            Step::Event(event) => {
                self.progress = self.progress.max(percent_of(&event));
                AsyaUpdate {
                    id: self.id.clone(),
                    status: "running",
                    message: Some(message_of(&event)),
                    result: None,
                    error: None,
                    progress_percent: round2(self.progress),
                    actor: Some(event.hop.actor.clone()),
                    current_actor_idx: Some(event.hop.index),
                    envelope_state: Some(match event.stage {
                        Stage::Failed => "completed",
                        other => other.as_str(),
                    }),
                    actors: Some(event.hop.route.clone()),
                    timestamp: event.at.to_string(),
                }
            }
            // A chunk of partial output: a running update whose message is the chunk
            // (its text, or its JSON), as the gateway's updates carry a message.
            Step::Partial(partial) => AsyaUpdate {
                id: self.id.clone(),
                status: "running",
                message: Some(match &partial.chunk {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                }),
                result: None,
                error: None,
                progress_percent: round2(self.progress),
                actor: Some(partial.hop.actor.clone()),
                current_actor_idx: Some(partial.hop.index),
                envelope_state: Some(Stage::Processing.as_str()),
                actors: Some(partial.hop.route.clone()),
                timestamp: partial.at.to_string(),
            },
            Step::Ended(view) => AsyaUpdate {
                id: self.id.clone(),
                status: final_status(&view),
                message: Some(final_message(&view)),
                result: view.result(),
                error: view.first_failure().map(|(message, _)| message.to_owned()),
                progress_percent: 100.0,
                actor: None,
                actors: None,
                current_actor_idx: None,
                envelope_state: None,
                timestamp: now(),
            },
            Step::Evicted => AsyaUpdate {
                id: self.id.clone(),
                status: "failed",
                message: Some("the record was evicted to keep the node within its bounds".into()),
                result: None,
                error: Some("evicted".into()),
                progress_percent: round2(self.progress),
                actor: None,
                actors: None,
                current_actor_idx: None,
                envelope_state: None,
                timestamp: now(),
            },
        }
    }
}

/// Asya's plain-text error answers.
fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Envelope not found\n").into_response()
}

/// `GET /envelopes/{id}` (Asya).
pub async fn envelope(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    match state.router.outcomes().details(&id).await {
        DetailsLookup::Found(details) => Json(envelope_view(&id, &details)).into_response(),
        _ => not_found(),
    }
}

/// `GET /envelopes/{id}/active` (Asya): 200 while it runs, 410 once it ended.
pub async fn active(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    match state.router.outcomes().get(&id).await {
        Lookup::Found(view) if view.status == Status::Pending => {
            Json(serde_json::json!({"active": true})).into_response()
        }
        Lookup::Found(_) => {
            (StatusCode::GONE, Json(serde_json::json!({"active": false}))).into_response()
        }
        _ => not_found(),
    }
}

/// `GET /envelopes/{id}/stream` (Asya): `event: update` objects, history first.
pub async fn stream(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    let outcomes = state.router.outcomes().clone();
    if !matches!(outcomes.get(&id).await, Lookup::Found(_)) {
        return not_found();
    }
    let mut updates = Updates {
        id: id.clone(),
        progress: 0.0,
    };
    let stopping = state.router.stopping().clone();
    let events = follow::follow(outcomes, id, 0, stopping).map(move |step| {
        let update = updates.update(step);
        Ok::<_, Infallible>(
            Event::default()
                .event("update")
                .json_data(&update)
                .unwrap_or_else(|_| Event::default().event("update").data("{}")),
        )
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(SSE_KEEP_ALIVE).text("keepalive"))
        .into_response()
}

/// `GET /health` (Asya).
pub async fn health() -> &'static str {
    "OK\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::event::{At, Hop};
    use serde_json::json;

    fn event(index: usize, stage: Stage) -> ProgressEvent {
        let hop = Hop {
            envelope_id: "e".into(),
            branch: String::new(),
            actor: ["a", "b", "c"][index].into(),
            index,
            route: vec!["a".into(), "b".into(), "c".into()],
        };
        let at =
            At(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(index as u64));
        ProgressEvent::new(std::sync::Arc::new(hop), stage, at)
    }

    fn details(events: &[ProgressEvent], view: OutcomeView) -> Details {
        Details {
            view,
            events: events.to_vec(),
            submission: None,
            parent_id: None,
        }
    }

    fn view(status: Status, results: Vec<Value>, errors: Vec<Value>) -> OutcomeView {
        OutcomeView {
            id: "e".into(),
            status,
            results,
            errors,
            ended: Vec::new(),
        }
    }

    #[test]
    fn progress_counts_each_actors_share_by_stage() {
        assert_eq!(round2(percent_of(&event(0, Stage::Received))), 3.33);
        assert_eq!(round2(percent_of(&event(1, Stage::Processing))), 50.0);
        assert_eq!(round2(percent_of(&event(2, Stage::Completed))), 100.0);
    }

    #[test]
    fn a_running_envelope_reads_as_asya_answers_it() {
        let events = [
            event(0, Stage::Received),
            event(0, Stage::Completed),
            event(1, Stage::Processing),
        ];
        let envelope = envelope_view(
            "e",
            &details(&events, view(Status::Pending, vec![], vec![])),
        );
        assert_eq!(envelope.status, "running");
        assert_eq!(envelope.current_actor_idx, 1);
        assert_eq!(envelope.current_actor_name.as_deref(), Some("b"));
        assert_eq!(envelope.actors_completed, 1);
        assert_eq!(envelope.total_actors, 3);
        assert_eq!(envelope.progress_percent, 50.0);
        assert_eq!(envelope.message.as_deref(), Some("Processing in b"));
        assert_eq!(
            envelope.created_at.as_deref(),
            Some("1970-01-01T00:00:00.000Z")
        );
    }

    #[test]
    fn an_ended_envelope_has_its_result_or_error() {
        let done = envelope_view(
            "e",
            &details(&[], view(Status::Succeeded, vec![json!(1)], vec![])),
        );
        assert_eq!(done.status, "succeeded");
        assert_eq!(done.result, Some(json!(1)));
        assert_eq!(done.progress_percent, 100.0);
        assert_eq!(done.payload, Value::Null);
        assert_eq!(done.deadline, NO_DEADLINE);
        assert_eq!(done.timeout_seconds, None);
        let failed = envelope_view(
            "e",
            &details(
                &[],
                view(
                    Status::Failed,
                    vec![],
                    vec![
                        json!({"error": "processing_error", "details": {"message": "boom", "actor": "b"}}),
                    ],
                ),
            ),
        );
        assert_eq!(failed.status, "failed");
        assert_eq!(failed.error.as_deref(), Some("boom"));
        assert_eq!(
            failed.message.as_deref(),
            Some("Envelope failed at actor 'b': boom")
        );
    }

    #[test]
    fn a_tool_call_shows_its_arguments_and_deadline() {
        let mut submission = crate::outcomes::Submission::unknown();
        submission.payload = json!({"text": "hi"});
        submission.actors = vec!["a".into(), "b".into()];
        submission.deadline = Some(crate::outcomes::Deadline {
            timeout: std::time::Duration::from_secs(10),
            at: std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(10),
            due: tokio::time::Instant::now(),
        });
        let mut pending = details(&[], view(Status::Pending, vec![], vec![]));
        pending.submission = Some(Arc::new(submission));
        let envelope = envelope_view("e", &pending);
        assert_eq!(envelope.status, "pending");
        assert_eq!(envelope.payload, json!({"text": "hi"}));
        assert_eq!(envelope.timeout_seconds, Some(10));
        assert_eq!(envelope.deadline, "1970-01-01T00:00:10.000Z");
        assert_eq!(envelope.total_actors, 2);
        let json = serde_json::to_value(&envelope).unwrap();
        assert!(json.get("parent_id").is_none());
        assert!(json.get("headers").is_none());
    }

    #[test]
    fn a_fan_outs_result_is_its_first_childs_as_asya_gives_it() {
        let ended = |id: &str, n: i64| crate::outcomes::EndedView {
            end: crate::records::HAPPY_END,
            envelope: crate::outcomes::tests::envelope(id, Default::default(), json!({"n": n})),
        };
        let mut outcome = view(
            Status::Succeeded,
            vec![json!({"n": 0}), json!({"n": 1})],
            vec![],
        );
        outcome.ended = vec![ended("e", 0), ended("e-1", 1)];
        assert_eq!(
            envelope_view("e", &details(&[], outcome)).result,
            Some(json!({"n": 0}))
        );
    }

    #[test]
    fn stream_progress_never_goes_back() {
        let mut updates = Updates {
            id: "e".into(),
            progress: 0.0,
        };
        let first = updates.update(Step::Event(event(1, Stage::Completed)));
        let slower = updates.update(Step::Event(event(0, Stage::Received)));
        assert_eq!(first.progress_percent, slower.progress_percent);
        assert_eq!(slower.envelope_state, Some("received"));
    }
}
