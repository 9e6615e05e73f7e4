//! What every benchmark shares: the envelope they send and their size knobs.

#![allow(dead_code)]

pub mod broker;
pub mod hop;
pub mod pipeline;
pub mod runtime;

use serde_json::json;
use wasya::envelope::{Envelope, Headers, Route};

/// A memory figure of a process in MiB, from `/proc/{pid}/status` (`self` for this
/// one): `VmHWM:` is the peak resident set, `VmRSS:` the current one.
pub fn status_mib(pid: &str, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// This process's peak resident set, in MiB.
pub fn peak_rss_mib() -> f64 {
    status_mib("self", "VmHWM:")
}

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
