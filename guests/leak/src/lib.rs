//! leak: counts its calls in a global and answers `{"calls": n}`.
//!
//! The node creates a fresh instance per message, so the answer is always 1.

use std::sync::atomic::{AtomicU64, Ordering};

use wasya_guest::{Guest, Level, Message, Outcome, json, log, output};

static CALLS: AtomicU64 = AtomicU64::new(0);

struct Leak;

impl Guest for Leak {
    fn handle(_msg: Message) -> Outcome {
        let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        log(
            Level::Debug,
            &format!("leak handling message: call {calls}"),
        );
        Ok(vec![output(&json!({ "calls": calls }))])
    }
}

wasya_guest::export!(Leak);
