//! spin: busy-loops forever (or for `payload.for_ms` milliseconds, then echoes), so the
//! node's timeout has to stop it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use wasya_guest::{Guest, Level, Message, Outcome, Value, log, output_text, payload};

struct Spin;

impl Guest for Spin {
    fn handle(msg: Message) -> Outcome {
        let bound = payload(&msg)?
            .get("for_ms")
            .and_then(Value::as_u64)
            .map(Duration::from_millis);
        log(
            Level::Info,
            &format!("spin handling message: looping for {bound:?} (None: forever)"),
        );
        let started = Instant::now();
        let mut turns = 0u64;
        while bound.is_none_or(|bound| started.elapsed() < bound) {
            // `black_box` keeps the optimiser from seeing that the loop does nothing.
            turns = black_box(turns.wrapping_add(1));
        }
        Ok(vec![output_text(msg.payload)])
    }
}

wasya_guest::export!(Spin);
