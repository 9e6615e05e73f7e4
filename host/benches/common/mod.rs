//! What every benchmark shares: the envelope they send and their size knobs.

#![allow(dead_code)]

pub mod hop;
pub mod runtime;

use serde_json::json;
use wasya::envelope::{Envelope, Headers, Route};

/// A size knob from the environment, or its default.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Envelope `n` of a run, with a fresh id and a small payload, routed through `actors`.
pub fn envelope(n: usize, actors: &[String]) -> Envelope {
    Envelope {
        id: format!("bench-{n}-{}", uuid::Uuid::new_v4()),
        parent_id: None,
        route: Route {
            actors: actors.to_vec(),
            current: 0,
            metadata: None,
        },
        headers: Headers::new(),
        payload: json!({"n": n, "text": "a small payload of a few dozen bytes"}),
    }
}
