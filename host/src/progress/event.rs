//! One progress event: what happened to one envelope at one actor.

use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// What happened at a hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Taken off the actor's queue.
    Received,
    /// Handed to the actor.
    Processing,
    /// The actor's results were handed on to the next actors.
    Completed,
    /// The call failed; the envelope went to error-end.
    Failed,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Received => "received",
            Stage::Processing => "processing",
            Stage::Completed => "completed",
            Stage::Failed => "failed",
        }
    }
}

/// One hop of one envelope, at one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProgressEvent {
    /// The order of this event among its submission's events, from 1 (the SSE event id).
    pub seq: u64,
    /// The envelope at this hop (a fan-out child has its own id).
    pub envelope_id: String,
    /// Its place in the submission's fan-out tree (`1/3` for child 1 of 3; empty for
    /// the envelope submitted).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub branch: String,
    pub actor: String,
    /// The actor's index in the route.
    pub index: usize,
    /// The route's actors as they stand at this hop.
    pub route: Vec<String>,
    pub stage: Stage,
    /// Completed: the actors the results went to (several for a fan-out; `happy-end`
    /// at the end of the route).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next: Vec<String>,
    /// Completed with a fan-out: the ids of the envelopes it became (the first keeps
    /// the input's id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<String>,
    /// Failed: what the actor's failure said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When it happened (RFC 3339, UTC).
    pub at: String,
}

/// Now, as events write it.
pub fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}
