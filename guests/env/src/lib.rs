//! env: answers with the environment variable named by `payload.name` (`null` when
//! the node did not grant it), so operators can check what an actor is given.

use wasya_guest::{Guest, Message, Outcome, Value, json, output, payload, str_field};

struct Env;

impl Guest for Env {
    fn handle(msg: Message) -> Outcome {
        let payload = payload(&msg)?;
        let name = str_field(&payload, "name")?;
        let value = std::env::var(name).map_or(Value::Null, Value::String);
        Ok(vec![output(&json!({"name": name, "value": value}))])
    }
}

wasya_guest::export!(Env);
