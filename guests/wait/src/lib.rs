//! wait: an async actor (`wasya:actor@0.2.0`) that waits, many calls in one instance.
//!
//! The payload says what a call does: `{"ms": 200}` waits 200 ms on the clock (an
//! `await`: the instance serves other calls meanwhile), `{"spin_ms": 50}` keeps the CPU
//! busy for 50 ms first, `{"trap": true}` panics after its wait (a trap: its instance
//! ends). It logs one line as it starts, attributed by the node to its envelope, and
//! answers with the payload plus `waited_ms` and the number of calls its instance ran
//! at once when it started (`in_instance`).

use std::cell::Cell;

wit_bindgen::generate!({
    inline: r#"
        package wasya:wait;

        world wait {
            include wasya:actor/actor@0.2.0;
            import wasi:clocks/monotonic-clock@0.3.0;
        }
    "#,
    path: "../../wit/async",
    world: "wasya:wait/wait",
    generate_all,
});

use wasi::clocks::monotonic_clock;
use wasya::actor::log::{Level, log};

thread_local! {
    /// Calls running in this instance now.
    static RUNNING: Cell<u32> = const { Cell::new(0) };
}

struct Wait;

fn number(payload: &serde_json::Value, field: &str) -> u64 {
    payload
        .get(field)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

impl Guest for Wait {
    async fn handle(msg: Message) -> Result<Vec<Output>, ActorError> {
        let mut payload: serde_json::Value =
            serde_json::from_str(&msg.payload).map_err(|error| ActorError {
                kind: "bad-input".into(),
                message: format!("the payload is not JSON: {error}"),
                traceback: None,
            })?;
        let in_instance = RUNNING.with(|running| {
            running.set(running.get() + 1);
            running.get()
        });
        log(&msg.id, Level::Info, &format!("waiting for {}", msg.id));
        let spin = number(&payload, "spin_ms") * 1_000_000;
        let started = monotonic_clock::now();
        while monotonic_clock::now() - started < spin {}
        let ms = number(&payload, "ms");
        monotonic_clock::wait_for(ms * 1_000_000).await;
        RUNNING.with(|running| running.set(running.get() - 1));
        if payload.get("trap").and_then(serde_json::Value::as_bool) == Some(true) {
            panic!("asked to trap");
        }
        payload["waited_ms"] = ms.into();
        payload["in_instance"] = in_instance.into();
        Ok(vec![Output {
            payload: payload.to_string(),
            route: None,
            headers: None,
        }])
    }
}

export!(Wait);
