//! fetch: sends the HTTP request its payload describes and answers with the response.
//!
//! Payload: `{"url": "https://…", "method"?: "GET", "headers"?: {"name": "value"},
//! "body"?: "text" or any JSON (sent as JSON)}`. Result: `{"status": 200, "headers":
//! {…}, "body": "text"}` (a body that is not UTF-8 is carried lossily). A request the
//! node refuses (a host the actor is not granted), a timeout, a body past the limit
//! or a connection failure fails the call with kind `http-<what>`.

use wasya_guest::http::{self, Request};
use wasya_guest::{Guest, Map, Message, Outcome, Value, error, json, output, payload, str_field};

struct Fetch;

impl Guest for Fetch {
    fn handle(msg: Message) -> Outcome {
        let payload = payload(&msg)?;
        let url = str_field(&payload, "url")?.to_owned();
        let method = match payload.get("method") {
            None | Some(Value::Null) => "GET".to_owned(),
            Some(Value::String(method)) => method.clone(),
            Some(_) => return Err(error("bad-input", "payload.method must be a string")),
        };
        let mut headers = Vec::new();
        match payload.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(fields)) => {
                for (name, value) in fields {
                    let Value::String(value) = value else {
                        return Err(error(
                            "bad-input",
                            format!("payload.headers.{name} must be a string"),
                        ));
                    };
                    headers.push((name.clone(), value.clone()));
                }
            }
            Some(_) => return Err(error("bad-input", "payload.headers must be an object")),
        }
        let body = match payload.get("body") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(text)) => text.clone().into_bytes(),
            Some(value) => {
                if !headers
                    .iter()
                    .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
                {
                    headers.push(("content-type".into(), "application/json".into()));
                }
                value.to_string().into_bytes()
            }
        };
        let response = http::send(&Request {
            method,
            url,
            headers,
            body,
        })
        .map_err(|failure| error(format!("http-{}", failure.kind), failure.message))?;
        let mut fields = Map::new();
        for (name, value) in response.headers {
            fields.insert(name, Value::String(value));
        }
        Ok(vec![output(&json!({
            "status": response.status,
            "headers": fields,
            "body": String::from_utf8_lossy(&response.body),
        }))])
    }
}

wasya_guest::export!(Fetch);
