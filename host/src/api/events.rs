//! `GET /v1/envelopes/{id}/events`: a submission's progress as Server-Sent Events.
//!
//! History first, then live events, each with its `seq` as the SSE id, so a client
//! that reconnects with `Last-Event-ID` resumes where it was. Chunks of partial output
//! (`event: partial`) come between a hop's events and carry no id: they are advisory,
//! and a client that resumes gets the latest ones still kept. The last event is the
//! outcome (`event: outcome`, id `end`); a client that reconnects after it is told
//! `204 No Content`, which stops an `EventSource` from reconnecting. Comments keep the
//! connection alive through proxies while an actor works.

use super::follow::{self, Step};
use super::{ApiError, ApiState};
use crate::defaults::SSE_KEEP_ALIVE;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::convert::Infallible;
use std::sync::Arc;

/// The id of the outcome event.
const END_ID: &str = "end";

/// Where a client resumes: after the event `Last-Event-ID` names.
enum Resume {
    After(u64),
    /// It saw the outcome already.
    Ended,
}

fn resume_of(headers: &HeaderMap) -> Result<Resume, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(Resume::After(0));
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == END_ID {
        return Ok(Resume::Ended);
    }
    text.parse().map(Resume::After).map_err(|_| {
        ApiError::bad_request(
            "invalid_last_event_id",
            format!("Last-Event-ID `{text}` is not an event id this stream sent"),
        )
    })
}

fn json_event(name: &'static str, value: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name)
        .json_data(value)
        .unwrap_or_else(|_| Event::default().event(name).data("{}"))
}

fn render(step: Step) -> Event {
    match step {
        Step::Event(event) => json_event("progress", &event).id(event.seq.to_string()),
        // No id: a client resumes by progress events; chunks are advisory.
        Step::Partial(partial) => json_event("partial", &partial),
        Step::Ended(view) => json_event("outcome", &view).id(END_ID),
        Step::Evicted => Event::default()
            .event("evicted")
            .data("the record was evicted to keep the node within its bounds"),
    }
}

/// `GET /v1/envelopes/{id}/events` → `text/event-stream`.
#[utoipa::path(
    get, path = "/v1/envelopes/{id}/events", tag = "envelopes",
    params(
        ("id" = String, Path, description = "The id a submission answered"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event"),
    ),
    responses(
        (status = 200, description = "`event: progress` (a ProgressEvent, id = its seq) for each hop's stages, `event: partial` (a chunk an actor emitted while its call ran: its hop, `n`, `chunk`; no id) between a hop's `processing` and `completed`, then `event: outcome` (an OutcomeView, id `end`)", content_type = "text/event-stream", body = String),
        (status = 204, description = "Last-Event-ID was `end`: nothing more will come"),
        (status = 404, description = "No such envelope is known", body = super::error::ErrorBody),
        (status = 410, description = "Its record was evicted", body = super::error::ErrorBody),
    )
)]
pub async fn stream(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let after = match resume_of(&headers)? {
        Resume::Ended => return Ok(StatusCode::NO_CONTENT.into_response()),
        Resume::After(after) => after,
    };
    let outcomes = state.router.outcomes().clone();
    super::envelopes::found(&id, outcomes.get(&id).await)?;
    let stopping = state.router.stopping().clone();
    let events =
        follow::follow(outcomes, id, after, stopping).map(|step| Ok::<_, Infallible>(render(step)));
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(SSE_KEEP_ALIVE))
        .into_response())
}
