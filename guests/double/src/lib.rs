//! double: answers `{"n": 2 * payload.n}`; the small handler of the language benchmark.

use wasya_guest::{Guest, Message, Outcome, Value, error, json, output, payload};

struct Double;

impl Guest for Double {
    fn handle(msg: Message) -> Outcome {
        let n = payload(&msg)?
            .get("n")
            .and_then(Value::as_f64)
            .ok_or_else(|| error("bad-input", "payload.n is not a number"))?;
        Ok(vec![output(&json!({"n": n * 2.0}))])
    }
}

wasya_guest::export!(Double);
