//! split: fans out one output `{"word": w, "index": i}` per word of `payload.text`.
//!
//! Words are separated by whitespace; a text without words gives no output.

use wasya_guest::{Guest, Level, Message, Outcome, json, log, output, payload, str_field};

struct Split;

impl Guest for Split {
    fn handle(msg: Message) -> Outcome {
        log(Level::Debug, "split handling message");
        let payload = payload(&msg)?;
        let text = str_field(&payload, "text")?;
        Ok(text
            .split_whitespace()
            .enumerate()
            .map(|(index, word)| output(&json!({ "word": word, "index": index })))
            .collect())
    }
}

wasya_guest::export!(Split);
