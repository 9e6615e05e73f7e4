//! Reading Server-Sent Events as a client does: `event`, `id` and `data` fields,
//! events separated by a blank line, comments (`:`) kept apart.

use futures::StreamExt;
use serde_json::Value;
use std::time::Duration;

/// One event of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

impl SseEvent {
    /// The data as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|error| panic!("event data is not JSON ({error}): {}", self.data))
    }
}

/// `(actor, stage)` of each `progress` event of wasya's stream, in order.
pub fn actor_stages(events: &[SseEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|event| event.event == "progress")
        .map(|event| {
            let data = event.json();
            (
                data["actor"].as_str().unwrap_or_default().to_owned(),
                data["stage"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// What a stream sent until the server closed it.
#[derive(Debug, Default)]
pub struct Stream {
    pub events: Vec<SseEvent>,
    pub comments: Vec<String>,
}

fn parse_block(block: &str, stream: &mut Stream) {
    let mut event = SseEvent {
        event: "message".to_owned(),
        id: None,
        data: String::new(),
    };
    let mut has_data = false;
    for line in block.lines() {
        if let Some(comment) = line.strip_prefix(':') {
            stream.comments.push(comment.trim().to_owned());
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event.event = value.to_owned(),
            "id" => event.id = Some(value.to_owned()),
            "data" => {
                if has_data {
                    event.data.push('\n');
                }
                event.data.push_str(value);
                has_data = true;
            }
            _ => {}
        }
    }
    if has_data {
        stream.events.push(event);
    }
}

/// Reads `response` to its end (at most `within`), parsing its events.
pub async fn read_all(response: reqwest::Response, within: Duration) -> Stream {
    let mut stream = Stream::default();
    let mut buffer = String::new();
    let mut body = response.bytes_stream();
    let read = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.expect("the stream reads");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                parse_block(&block, &mut stream);
            }
        }
    };
    tokio::time::timeout(within, read)
        .await
        .expect("the stream ends within the time given");
    if !buffer.trim().is_empty() {
        parse_block(&buffer, &mut stream);
    }
    stream
}
