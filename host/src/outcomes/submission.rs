//! What a submission was when the node took it in: the payload, headers and route it
//! started with, when, and (a tool's call) the deadline it must end by.
//!
//! Asya's gateway answers these with every envelope (`payload`, `headers`,
//! `timeout_seconds`, `deadline`, `created_at`); the outcome alone cannot, since it
//! holds only what reached the end actors. They are kept beside the outcome, counted
//! in its bytes bound and evicted with it, and only on the node that took the
//! submission in: they are a view's details, not something the pipeline depends on.

use crate::envelope::{Envelope, Headers};
use serde_json::Value;
use std::time::{Duration, SystemTime};

/// The message a submission that missed its tool's deadline fails with (Asya's).
pub const TIMED_OUT: &str = "envelope timed out";

/// A submission as it was taken in.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// The payload the first actor received (a tool's arguments).
    pub payload: Value,
    /// Its headers, without the node's own bookkeeping.
    pub headers: Headers,
    /// The envelope it was split from, for a fan-out child registered by a sidecar.
    pub parent_id: Option<String>,
    /// The route it started on.
    pub actors: Vec<String>,
    /// When the node took it in.
    pub created: SystemTime,
    /// A tool's timeout, and the moment it runs out.
    pub deadline: Option<Deadline>,
}

/// When a submission must have ended by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// The tool's timeout.
    pub timeout: Duration,
    /// When it runs out, by the wall clock (as Asya's view shows it).
    pub at: SystemTime,
    /// When it runs out, by the node's clock (what the node waits for).
    pub due: tokio::time::Instant,
}

impl Deadline {
    /// A deadline `timeout` from now.
    pub fn after(timeout: Duration) -> Deadline {
        Deadline {
            timeout,
            at: SystemTime::now() + timeout,
            due: tokio::time::Instant::now() + timeout,
        }
    }
}

impl Submission {
    /// What `envelope` was as it was taken in, now.
    pub fn of(envelope: &Envelope) -> Submission {
        Submission {
            payload: envelope.payload.clone(),
            headers: envelope
                .headers
                .iter()
                .filter(|(name, _)| !crate::branch::is_bookkeeping(name))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
            parent_id: envelope.parent_id.clone(),
            actors: envelope.route.actors.clone(),
            created: SystemTime::now(),
            deadline: None,
        }
    }

    /// A submission the node learnt of without seeing it taken in.
    pub fn unknown() -> Submission {
        Submission {
            payload: Value::Null,
            headers: Headers::new(),
            parent_id: None,
            actors: Vec::new(),
            created: SystemTime::now(),
            deadline: None,
        }
    }

    /// The bytes it takes, roughly, for the outcome store's bound.
    pub fn size(&self) -> usize {
        const OVERHEAD: usize = 128;
        OVERHEAD
            + value_size(&self.payload)
            + self
                .headers
                .iter()
                .map(|(name, value)| name.len() + value.len())
                .sum::<usize>()
            + self.parent_id.as_ref().map_or(0, String::len)
            + self.actors.iter().map(String::len).sum::<usize>()
    }
}

/// The bytes of `value` as JSON, roughly (a submission's payload has passed the depth
/// check, so the recursion is bounded).
fn value_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 16,
        Value::String(text) => text.len() + 2,
        Value::Array(items) => 2 + items.iter().map(|item| value_size(item) + 1).sum::<usize>(),
        Value::Object(fields) => {
            2 + fields
                .iter()
                .map(|(name, item)| name.len() + 4 + value_size(item))
                .sum::<usize>()
        }
    }
}

/// The error-end payload a submission that missed its deadline reads as having.
pub fn timed_out_error() -> Value {
    serde_json::json!({"error": "timeout", "details": {"message": TIMED_OUT}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Route;
    use serde_json::json;

    #[test]
    fn a_submission_keeps_what_the_caller_gave_without_the_nodes_bookkeeping() {
        let mut headers = Headers::new();
        headers.insert("traceparent".into(), "00-a-b-01".into());
        headers.insert(crate::branch::BRANCH_HEADER.into(), "0/2".into());
        let envelope = Envelope {
            id: "e".into(),
            parent_id: None,
            route: Route {
                actors: vec!["a".into()],
                current: 0,
                metadata: None,
            },
            headers,
            payload: json!({"text": "hi"}),
        };
        let submission = Submission::of(&envelope);
        assert_eq!(submission.payload, json!({"text": "hi"}));
        assert_eq!(submission.headers.len(), 1);
        assert!(submission.headers.contains_key("traceparent"));
        assert!(submission.size() > 128);
    }
}
