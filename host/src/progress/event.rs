//! One progress event: what happened to one envelope at one actor.
//!
//! The events of one hop share who and where ([`Hop`]: the envelope, its branch, the
//! actor, its index, the route) behind one `Arc`, and carry their time as a
//! [`SystemTime`] written out only when read: recording a hop's three events costs a
//! handful of allocations, not a copy of the route per event.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::sync::Arc;
use std::time::SystemTime;

/// What happened at a hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// Who and where: what the events of one hop share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hop {
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
}

/// When an event happened; written as RFC 3339 (UTC, milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At(pub SystemTime);

impl At {
    pub fn now() -> At {
        At(SystemTime::now())
    }
}

impl std::fmt::Display for At {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        humantime::format_rfc3339_millis(self.0).fmt(formatter)
    }
}

impl Serialize for At {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for At {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<At, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_rfc3339_weak(&text)
            .map(At)
            .map_err(serde::de::Error::custom)
    }
}

/// One hop of one envelope, at one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressEvent {
    /// The order of this event among its submission's events, from 1 (the SSE event id).
    pub seq: u64,
    #[serde(flatten)]
    pub hop: Arc<Hop>,
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
    pub at: At,
}

impl ProgressEvent {
    /// An event of `hop` at `stage`, numbered later.
    pub fn new(hop: Arc<Hop>, stage: Stage, at: At) -> ProgressEvent {
        ProgressEvent {
            seq: 0,
            hop,
            stage,
            next: Vec::new(),
            children: Vec::new(),
            message: None,
            at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_reads_as_one_flat_object_and_back() {
        let hop = Arc::new(Hop {
            envelope_id: "e".into(),
            branch: String::new(),
            actor: "a".into(),
            index: 0,
            route: vec!["a".into(), "b".into()],
        });
        let at = At(SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1500));
        let event = ProgressEvent::new(hop, Stage::Received, at);
        let json = serde_json::to_value(&event).expect("serialises");
        assert_eq!(
            json,
            json!({"seq": 0, "envelope_id": "e", "actor": "a", "index": 0, "route": ["a", "b"],
                   "stage": "received", "at": "1970-01-01T00:00:01.500Z"})
        );
        let back: ProgressEvent = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, event);
    }
}
