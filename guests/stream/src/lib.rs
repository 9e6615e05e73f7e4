//! stream: emits `payload.text` word by word as partial output while it works, then
//! returns the whole text; with `payload.chunks`, emits that many numbered chunks
//! (`{"i": 0}`, …) instead, to show the per-call bound on a runaway emitter.

use wasya_guest::{Guest, Message, Outcome, Value, emit, json, output, payload};

struct Stream;

impl Guest for Stream {
    fn handle(msg: Message) -> Outcome {
        let payload = payload(&msg)?;
        if let Some(chunks) = payload.get("chunks").and_then(Value::as_u64) {
            for i in 0..chunks {
                emit(&json!({ "i": i }));
            }
            return Ok(vec![output(&json!({ "emitted": chunks }))]);
        }
        let text = payload.get("text").and_then(Value::as_str).unwrap_or("");
        let mut words = 0;
        for word in text.split_inclusive(' ') {
            emit(&Value::from(word));
            words += 1;
        }
        Ok(vec![output(&json!({ "text": text, "words": words }))])
    }
}

wasya_guest::export!(Stream);
