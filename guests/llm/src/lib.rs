//! llm: asks an OpenAI-compatible chat-completions endpoint, `{"prompt"}` → `{"text"}`.
//!
//! Configured by its environment, as OpenAI's own clients are: `OPENAI_BASE_URL`
//! (default `https://api.openai.com/v1`), `OPENAI_API_KEY` (sent as a bearer token
//! when set) and `OPENAI_MODEL` (default `gpt-4o-mini`). The actor must be granted
//! the endpoint's host (`allowed_outbound_hosts`). Payload: `{"prompt": "…",
//! "system"?: "…", "max_tokens"?: n}`; result: `{"text": "…", "model": "…"}`.

use wasya_guest::http::{self, Request};
use wasya_guest::{Guest, Message, Outcome, Value, error, json, output, payload, str_field};

struct Llm;

const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
const DEFAULT_MODEL: &str = "gpt-4o-mini";

impl Guest for Llm {
    fn handle(msg: Message) -> Outcome {
        let payload = payload(&msg)?;
        let prompt = str_field(&payload, "prompt")?;
        let base = std::env::var("OPENAI_BASE_URL").unwrap_or_else(|_| DEFAULT_BASE_URL.into());
        let model = std::env::var("OPENAI_MODEL").unwrap_or_else(|_| DEFAULT_MODEL.into());
        let mut messages = Vec::new();
        if let Some(Value::String(system)) = payload.get("system") {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": prompt}));
        let mut request = json!({"model": model, "messages": messages});
        if let Some(max_tokens) = payload.get("max_tokens").and_then(Value::as_u64) {
            request["max_tokens"] = json!(max_tokens);
        }
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let Ok(key) = std::env::var("OPENAI_API_KEY")
            && !key.is_empty()
        {
            headers.push(("authorization".into(), format!("Bearer {key}")));
        }
        let url = format!("{}/chat/completions", base.trim_end_matches('/'));
        let response = http::send(&Request {
            method: "POST".into(),
            url,
            headers,
            body: request.to_string().into_bytes(),
        })
        .map_err(|failure| error(format!("http-{}", failure.kind), failure.message))?;
        let answer: Value = serde_json::from_slice(&response.body).map_err(|e| {
            error(
                "llm-error",
                format!(
                    "the endpoint answered {} with a body that is not JSON: {e}",
                    response.status
                ),
            )
        })?;
        if !(200..300).contains(&response.status) {
            let message = answer
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("no error message");
            return Err(error(
                "llm-error",
                format!("the endpoint answered {}: {message}", response.status),
            ));
        }
        let text = answer
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .ok_or_else(|| error("llm-error", "the answer has no choices[0].message.content"))?;
        let model = answer.get("model").cloned().unwrap_or(Value::Null);
        Ok(vec![output(&json!({"text": text, "model": model}))])
    }
}

wasya_guest::export!(Llm);
