//! Asya's reporting paths, so that Asya's sidecars (and `wasya sidecar`, with
//! `ASYA_GATEWAY_URL`) can report to a node as they report to Asya's gateway:
//! `POST /envelopes` registers a fan-out child, `POST /envelopes/{id}/progress` a hop's
//! step, `POST /envelopes/{id}/final` how an envelope ended at an end actor.
//!
//! What they report lands where the node's own hops land: a step becomes a progress
//! event of the envelope's submission (its root's, for a fan-out child of a
//! submission known here), so it shows in every view, the SSE streams and MCP
//! progress; a final report is recorded as the end actors record an envelope (written
//! to the data directory's or the pool's store before the answer). Everything a caller
//! names (ids, actors, messages) is bounded before it is kept.
//!
//! Two of Asya's gateway's ways are not kept: registering a child does not put it on
//! a queue again (the sidecar that split it has routed it already), and a report for an
//! envelope it never heard of creates it rather than answering 500.

use super::{ApiError, ApiState};
use crate::envelope::{Envelope, Headers, Route};
use crate::outcomes::Submission;
use crate::progress::event::{At, Hop};
use crate::progress::{ProgressEvent, Stage};
use crate::records::End;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Bytes of an id a report names, at most.
const ID_CAP: usize = 256;
/// Actors of a reported route, at most, and bytes of each name.
const ACTORS_CAP: usize = 256;
const ACTOR_CAP: usize = 256;

/// The token check of the reporting paths: every mutating endpoint's, unless the node
/// opened them to Asya's sidecars (`--open-reports`).
fn allowed(state: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.open_reports {
        return Ok(());
    }
    super::auth::check(state.token.as_deref(), headers).map(|_| ())
}

fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(body)| body).map_err(|rejection| {
        ApiError::new(rejection.status(), "invalid_request", rejection.body_text())
    })
}

fn checked_id(field: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("Missing required field: {field}"),
        ));
    }
    if id.len() > ID_CAP {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("`{field}` is longer than {ID_CAP} bytes"),
        ));
    }
    Ok(())
}

fn checked_actors(actors: Vec<String>) -> Result<Vec<String>, ApiError> {
    if actors.len() > ACTORS_CAP {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("a route of more than {ACTORS_CAP} actors"),
        ));
    }
    if actors.iter().any(|actor| actor.len() > ACTOR_CAP) {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("an actor's name is longer than {ACTOR_CAP} bytes"),
        ));
    }
    Ok(actors)
}

/// Body of `POST /envelopes`, as Asya's sidecar sends it for a fan-out child (its
/// `current` is not kept: the child's own reports say where it is).
#[derive(Debug, Deserialize)]
pub struct Registration {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub actors: Vec<String>,
}

/// `POST /envelopes` (Asya): registers an envelope, a fan-out child with `parent_id`;
/// `201 {"status": "created", "id"}`. Registering again changes nothing.
pub async fn register(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    request: Result<Json<Registration>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    allowed(&state, &headers)?;
    let registration = body(request)?;
    checked_id("id", &registration.id)?;
    let actors = checked_actors(registration.actors)?;
    let outcomes = state.router.outcomes();
    match registration.parent_id.filter(|parent| !parent.is_empty()) {
        Some(parent) => {
            checked_id("parent_id", &parent)?;
            outcomes.register_child(&registration.id, &parent);
        }
        None => {
            let mut submission = Submission::unknown();
            submission.actors = actors;
            outcomes
                .submitted_as(&registration.id, Some(submission))
                .await;
        }
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({"status": "created", "id": registration.id})),
    ))
}

/// Body of `POST /envelopes/{id}/progress`, as Asya's sidecar sends it.
#[derive(Debug, Deserialize)]
pub struct ProgressReport {
    #[serde(default)]
    pub actors: Vec<String>,
    #[serde(default)]
    pub current_actor_idx: usize,
    #[serde(default)]
    pub status: String,
}

/// The event a step report stands for. Asya's sidecar reports `completed` with the
/// route as the results leave the actor (its index already advanced): the event is
/// the actor's that completed.
pub fn event_of(id: &str, report: &ProgressReport) -> Result<ProgressEvent, ApiError> {
    let (stage, index) = match report.status.as_str() {
        "received" => (Stage::Received, report.current_actor_idx),
        "processing" => (Stage::Processing, report.current_actor_idx),
        "completed" => (Stage::Completed, report.current_actor_idx.saturating_sub(1)),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "Invalid status: must be 'received', 'processing' or 'completed'",
            ));
        }
    };
    let actor = report
        .actors
        .get(index)
        .cloned()
        .unwrap_or_else(|| "unknown".to_owned());
    let hop = Hop {
        envelope_id: id.to_owned(),
        branch: String::new(),
        actor,
        index,
        route: report.actors.clone(),
    };
    Ok(ProgressEvent::new(Arc::new(hop), stage, At::now()))
}

/// `POST /envelopes/{id}/progress` (Asya): one step of a hop; `200 {"status": "ok",
/// "progress_percent"}` (where the step puts the envelope).
pub async fn progress(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    request: Result<Json<ProgressReport>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    allowed(&state, &headers)?;
    let mut report = body(request)?;
    checked_id("id", &id)?;
    report.actors = checked_actors(std::mem::take(&mut report.actors))?;
    let event = event_of(&id, &report)?;
    // Where this step puts the envelope (Asya's sidecar does not read it back).
    let percent = super::asya::percent_of(&event);
    let outcomes = state.router.outcomes();
    outcomes.progress(&outcomes.record_of(&id), [event]);
    Ok(Json(
        json!({"status": "ok", "progress_percent": (percent * 100.0).round() / 100.0}),
    ))
}

/// Body of `POST /envelopes/{id}/final`, as Asya's end-actor sidecar sends it.
#[derive(Debug, Deserialize)]
pub struct FinalReport {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_details: Option<Value>,
    #[serde(default)]
    pub actors: Vec<String>,
    #[serde(default)]
    pub current_actor_idx: Option<usize>,
    #[serde(default)]
    pub current_actor_name: Option<String>,
}

/// The envelope an end actor would have taken, from its final report: the result as
/// happy-end's payload, or the error as error-end's.
pub fn ended_of(id: &str, report: FinalReport) -> Result<(End, Envelope), ApiError> {
    let end = match report.status.as_str() {
        "succeeded" => End::Happy,
        "failed" => End::Error,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "Invalid status: must be 'succeeded' or 'failed'",
            ));
        }
    };
    let cap = |text: String| {
        crate::envelope::limits::cap_end(&text, crate::envelope::limits::MESSAGE_CAP)
    };
    let payload = match end {
        End::Happy => report.result.unwrap_or(Value::Null),
        End::Error => {
            let mut details = match report.error_details {
                Some(Value::Object(details)) => details,
                Some(other) => Map::from_iter([("details".to_owned(), other)]),
                None => Map::new(),
            };
            let error = report.error.map(cap).unwrap_or_else(|| "failed".to_owned());
            if !details.contains_key("message") {
                details.insert("message".into(), json!(error));
            }
            if let Some(actor) = report.current_actor_name.map(cap) {
                details.insert("actor".into(), json!(actor));
            }
            json!({"error": error, "details": details})
        }
    };
    crate::envelope::limits::check_depth("result", &payload)
        .map_err(|error| ApiError::bad_request("too_deep", error.to_string()))?;
    let current = report.current_actor_idx.unwrap_or(report.actors.len());
    Ok((
        end,
        Envelope {
            id: id.to_owned(),
            parent_id: None,
            route: Route {
                actors: report.actors,
                current,
                metadata: None,
            },
            headers: Headers::new(),
            payload,
        },
    ))
}

/// `POST /envelopes/{id}/final` (Asya): how the envelope ended; recorded as its end
/// actor would record it, then `200 {"status": "ok"}`.
pub async fn final_status(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    request: Result<Json<FinalReport>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    allowed(&state, &headers)?;
    let mut report = body(request)?;
    checked_id("id", &id)?;
    report.actors = checked_actors(std::mem::take(&mut report.actors))?;
    let (end, envelope) = ended_of(&id, report)?;
    let size = envelope.to_bytes().len();
    state
        .router
        .outcomes()
        .record(end, envelope, size)
        .await
        .map_err(|error| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!(
                    "the outcome could not be kept: {}",
                    crate::error_chain::chain(&error)
                ),
            )
        })?;
    Ok(Json(json!({"status": "ok"})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(status: &str, index: usize) -> ProgressReport {
        ProgressReport {
            actors: vec!["a".into(), "b".into()],
            current_actor_idx: index,
            status: status.into(),
        }
    }

    #[test]
    fn a_completed_step_is_the_actor_it_left() {
        let event = event_of("e", &step("completed", 1)).unwrap();
        assert_eq!(event.stage, Stage::Completed);
        assert_eq!(event.hop.index, 0);
        assert_eq!(event.hop.actor, "a");
        let event = event_of("e", &step("processing", 1)).unwrap();
        assert_eq!(
            (event.stage, event.hop.actor.as_str()),
            (Stage::Processing, "b")
        );
        assert!(event_of("e", &step("done", 0)).is_err());
    }

    #[test]
    fn a_failed_final_reads_as_error_ends_payload() {
        let report = FinalReport {
            status: "failed".into(),
            result: None,
            error: Some("boom".into()),
            error_details: Some(json!({"type": "ValueError"})),
            actors: vec!["a".into()],
            current_actor_idx: Some(0),
            current_actor_name: Some("a".into()),
        };
        let (end, envelope) = ended_of("e", report).unwrap();
        assert_eq!(end, End::Error);
        assert_eq!(
            crate::route_rules::error_message(&envelope.payload),
            Some("boom")
        );
        assert_eq!(
            crate::route_rules::error_actor(&envelope.payload),
            Some("a")
        );
        assert_eq!(envelope.payload["details"]["type"], "ValueError");
        let bad = FinalReport {
            status: "done".into(),
            result: None,
            error: None,
            error_details: None,
            actors: Vec::new(),
            current_actor_idx: None,
            current_actor_name: None,
        };
        assert!(ended_of("e", bad).is_err());
    }
}
