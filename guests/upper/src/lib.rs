//! upper: uppercases the string field `payload.text`, keeping the rest of the payload.

use wasya_guest::{Guest, Level, Message, Outcome, Value, log, output, payload, str_field};

struct Upper;

impl Guest for Upper {
    fn handle(msg: Message) -> Outcome {
        log(Level::Debug, "upper handling message");
        let mut payload = payload(&msg)?;
        let upper = str_field(&payload, "text")?.to_uppercase();
        payload["text"] = Value::String(upper);
        Ok(vec![output(&payload)])
    }
}

wasya_guest::export!(Upper);
