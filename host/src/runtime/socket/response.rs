//! Reading a runtime's answer: always a JSON array, one item per result, or one item
//! with `error` when the handler failed. Anything else is a `protocol_error` of the
//! runtime, named precisely, so a broken runtime is diagnosed from error-end alone.

use crate::envelope::{parse_headers, parse_route};
use crate::failure::{Code, Failure, Kind};
use crate::route_rules::{Outcome, Output};
use serde_json::{Map, Value};

/// A protocol error of the runtime.
pub fn protocol_error(kind: Kind, message: impl Into<String>) -> Outcome {
    Outcome::Failed(Failure {
        code: Code::Protocol,
        kind,
        message: message.into(),
        traceback: None,
        refused_hosts: Vec::new(),
    })
}

/// Turns a response frame into the outcome of the call.
pub fn parse_response(bytes: &[u8]) -> Outcome {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(error) => {
            return protocol_error(Kind::NotJson, format!("the response is not JSON: {error}"));
        }
    };
    let Value::Array(items) = value else {
        return protocol_error(Kind::NotAnArray, "the response is not a JSON array");
    };
    if let [Value::Object(item)] = items.as_slice()
        && item.contains_key("error")
    {
        return Outcome::Failed(failure(item));
    }
    let outputs: Result<Vec<Output>, String> = items
        .into_iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::Object(item) => output(item).map_err(|reason| format!("item {index}: {reason}")),
            _ => Err(format!("item {index} is not an object")),
        })
        .collect();
    match outputs {
        Ok(outputs) => Outcome::Outputs(outputs),
        Err(reason) => protocol_error(Kind::InvalidItem, reason),
    }
}

fn output(mut item: Map<String, Value>) -> Result<Output, String> {
    let route = match item.remove("route") {
        None | Some(Value::Null) => None,
        route => Some(parse_route(route).map_err(|error| error.to_string())?),
    };
    let headers = match item.remove("headers") {
        None | Some(Value::Null) => None,
        headers => Some(parse_headers(headers).map_err(|error| error.to_string())?),
    };
    let text = |value: Option<Value>| match value {
        Some(Value::String(text)) if !text.is_empty() => Some(text),
        _ => None,
    };
    Ok(Output {
        payload: item.remove("payload").unwrap_or(Value::Null),
        route,
        headers,
        id: text(item.remove("id")),
        parent_id: text(item.remove("parent_id")),
    })
}

fn failure(item: &Map<String, Value>) -> Failure {
    let details = item.get("details");
    let field = |name: &str| {
        details
            .and_then(|details| details.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Failure {
        code: item
            .get("error")
            .and_then(Value::as_str)
            .map_or(Code::Processing, Code::from_wire),
        kind: field("type").map_or(Kind::RuntimeError, Kind::Actor),
        message: field("message").unwrap_or_else(|| "the runtime reported an error".into()),
        traceback: field("traceback"),
        refused_hosts: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kind(outcome: &Outcome) -> &str {
        match outcome {
            Outcome::Failed(failure) => failure.kind.as_str(),
            Outcome::Outputs(_) => "outputs",
        }
    }

    #[test]
    fn reads_results_and_fan_out() {
        let outcome = parse_response(
            br#"[{"payload": 1, "route": {"actors": ["a","b"], "current": 1}}, {"payload": 2}]"#,
        );
        let Outcome::Outputs(outputs) = outcome else {
            panic!()
        };
        assert_eq!(outputs.len(), 2);
        assert_eq!(outputs[0].route.as_ref().unwrap().current, 1);
        assert_eq!(outputs[1].payload, json!(2));
        assert_eq!(parse_response(b"[]"), Outcome::Outputs(vec![]));
    }

    #[test]
    fn reads_an_error_item() {
        let outcome = parse_response(
            br#"[{"error": "processing_error", "details": {"message": "boom", "type": "ValueError", "traceback": "tb"}}]"#,
        );
        let Outcome::Failed(failure) = outcome else {
            panic!()
        };
        assert_eq!(
            (failure.code.as_str(), failure.kind.as_str()),
            ("processing_error", "ValueError")
        );
        assert_eq!(failure.traceback.as_deref(), Some("tb"));
    }

    #[test]
    fn names_protocol_errors() {
        assert_eq!(kind(&parse_response(b"garbage")), "not_json");
        assert_eq!(kind(&parse_response(br#"{"payload": 1}"#)), "not_an_array");
        assert_eq!(kind(&parse_response(b"[1]")), "invalid_item");
        assert_eq!(kind(&parse_response(br#"[{"route": 5}]"#)), "invalid_item");
    }
}
