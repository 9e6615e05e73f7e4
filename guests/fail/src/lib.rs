//! fail: always returns an actor error, of kind `ValueError` or `payload.kind`.
//!
//! The message quotes `payload.reason` when the payload has one.

use wasya_guest::{Guest, Level, Message, Outcome, Value, error, log, payload};

struct Fail;

impl Guest for Fail {
    fn handle(msg: Message) -> Outcome {
        log(Level::Info, "fail handling message: failing on purpose");
        let payload = payload(&msg).unwrap_or(Value::Null);
        let message = match payload.get("reason").and_then(Value::as_str) {
            Some(reason) => format!("fail always fails: {reason}"),
            None => "fail always fails".to_owned(),
        };
        let kind = payload
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("ValueError");
        Err(error(kind, message))
    }
}

wasya_guest::export!(Fail);
