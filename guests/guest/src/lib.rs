//! Bindings for the `wasya:actor` world and small helpers shared by the example actors.
//!
//! An actor implements [`Guest`] and names its type in [`export!`]:
//!
//! ```ignore
//! struct Echo;
//!
//! impl wasya_guest::Guest for Echo {
//!     fn handle(msg: wasya_guest::Message) -> wasya_guest::Outcome {
//!         Ok(vec![wasya_guest::output_text(msg.payload)])
//!     }
//! }
//!
//! wasya_guest::export!(Echo);
//! ```

/// The code generated from `wit/actor.wit`.
///
/// It lives in a module of its own: the exported `export!` macro is defined at the crate
/// root, and a `pub use` of it next to the definition would clash with that name.
// The generated lowering of `handle` takes the flattened message as 15 parameters.
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "actor",
        pub_export_macro: true,
        // The macro is expanded in the actor crates, which reach the bindings through
        // this crate.
        default_bindings_module: "wasya_guest::bindings",
    });
}

pub mod http;

pub use bindings::wasya::actor::log::Level;
pub use bindings::wasya::actor::types::{Header, Route};
pub use bindings::{ActorError, Guest, Message, Output, export};
pub use serde_json::{self, Map, Value, json};

/// What [`Guest::handle`] returns.
pub type Outcome = Result<Vec<Output>, ActorError>;

/// Logs `message` through the node, which records it with the actor name and envelope id.
pub fn log(level: Level, message: &str) {
    bindings::wasya::actor::log::log(level, message);
}

/// Emits a chunk of partial output (any JSON value: a token as a string, say) while
/// the call runs. Whoever follows the envelope receives it before the result (SSE
/// `event: partial`); it is advisory, and bounded per call (past the bound, chunks are
/// dropped and counted by the node).
pub fn emit(chunk: &Value) {
    bindings::wasya::actor::progress::emit(&chunk.to_string());
}

/// An actor error of the given kind; the node sends the envelope to `error-end` with it.
pub fn error(kind: impl Into<String>, message: impl Into<String>) -> ActorError {
    ActorError {
        kind: kind.into(),
        message: message.into(),
    }
}

/// The payload of `msg`, parsed. Text that is not JSON gives a `bad-input` error.
pub fn payload(msg: &Message) -> Result<Value, ActorError> {
    serde_json::from_str(&msg.payload)
        .map_err(|e| error("bad-input", format!("the payload is not valid JSON: {e}")))
}

/// The string field `name` of an object payload, or a `bad-input` error that says what is
/// wrong with it.
pub fn str_field<'a>(payload: &'a Value, name: &str) -> Result<&'a str, ActorError> {
    match payload.get(name) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(error(
            "bad-input",
            format!("payload.{name} is missing: a string is expected"),
        )),
        Some(other) => Err(error(
            "bad-input",
            format!(
                "payload.{name} must be a string, not {}",
                json_type_name(other)
            ),
        )),
    }
}

/// An output in payload mode: the node advances the route and carries the headers and
/// route metadata along.
pub fn output(payload: &Value) -> Output {
    output_text(payload.to_string())
}

/// Like [`output`], for a payload that is JSON text already.
pub fn output_text(payload: String) -> Output {
    Output {
        payload,
        route: None,
        headers: None,
    }
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
