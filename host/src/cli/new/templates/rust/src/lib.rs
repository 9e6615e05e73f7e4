//! The actor {{name}}: a component of the `actor` world of `wit/actor.wit`.
//!
//! `handle` gets each message; what it returns decides where the envelope goes: one
//! output moves it on, several fan out, none ends the route, an error sends it to
//! error-end. The logic lives in `process`, a plain function tested with `cargo test`.

wit_bindgen::generate!({ path: "wit", world: "actor" });

use serde_json::{Value, json};

/// Takes a payload, returns the next one.
pub fn process(payload: &Value) -> Result<Value, ActorError> {
    let text = payload.get("text").and_then(Value::as_str).unwrap_or("");
    Ok(json!({"text": text.to_uppercase(), "length": text.chars().count()}))
}

struct Actor;

impl Guest for Actor {
    fn handle(msg: Message) -> Result<Vec<Output>, ActorError> {
        let payload: Value = serde_json::from_str(&msg.payload).map_err(|error| ActorError {
            kind: "bad-input".into(),
            message: format!("the payload is not JSON: {error}"),
        })?;
        let next = process(&payload)?;
        Ok(vec![Output {
            payload: next.to_string(),
            route: None,
            headers: None,
        }])
    }
}

export!(Actor);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uppercases_and_counts() {
        let next = process(&json!({"text": "hi"})).unwrap_or(Value::Null);
        assert_eq!(next, json!({"text": "HI", "length": 2}));
    }
}
