//! A trace per envelope: spans exported over OTLP/HTTP to a real receiver (a Python
//! one decoding with the OpenTelemetry protobuf definitions), checked for their parent
//! chain over a route with a fan-out, on both transports.

use crate::support::python::{self, PythonProcess};
use crate::support::{Kind, NodeProcess, Runtime};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

on_both_transports!(every_hop_is_a_span_of_the_envelopes_trace);

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER: &str = "00f067aa0ba902b7";

/// Starts the receiver; it and the environment that points a node at it.
async fn receiver(python: &std::path::PathBuf) -> (PythonProcess, String) {
    let receiver = PythonProcess::spawn(python, "otlp_receiver.py", &[]);
    let port: u16 = receiver
        .line(|line| {
            line.strip_prefix("listening ")
                .and_then(|port| port.parse().ok())
        })
        .await;
    (receiver, format!("http://127.0.0.1:{port}"))
}

/// The spans of trace `trace` received, once at least `count` came.
async fn received_spans(receiver: &PythonProcess, trace: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let spans: Vec<Value> = receiver
            .lines
            .lock()
            .expect("a lock")
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|span| span["trace_id"] == trace)
            .collect();
        if spans.len() >= count {
            return spans;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} spans came: {spans:#?}",
            spans.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `traceparent` the `s-headers` socket actor saw, after `echo`, for an envelope
/// submitted with the caller's context `00-{TRACE}-{CALLER}-01`.
async fn traceparent_seen(node: &NodeProcess) -> String {
    let id = node
        .submit_body(json!({
            "route": ["echo", "s-headers"],
            "payload": {},
            "headers": {"traceparent": format!("00-{TRACE}-{CALLER}-01")},
        }))
        .await;
    let view = node.outcome(&id).await;
    view["results"][0]["headers"]["traceparent"]
        .as_str()
        .unwrap_or_else(|| panic!("no traceparent reached the runtime: {view}"))
        .to_owned()
}

fn socket_actor(name: &str, runtime: &Runtime) -> String {
    format!("{name}={}", runtime.socket().display())
}

async fn every_hop_is_a_span_of_the_envelopes_trace(kind: Kind) {
    let Some(python) = python::python() else {
        return;
    };
    let (receiver, endpoint) = receiver(&python).await;
    let headers = Runtime::start("headers_seen", "envelope", &[]);
    let actor = socket_actor("s-headers", &headers);
    let node = NodeProcess::start_on_with(
        kind,
        &["--socket-actor", &actor],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "wasya-under-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let id = node
        .submit_body(json!({
            "route": ["echo", "split", "echo"],
            "payload": {"text": "a b"},
            "headers": {"traceparent": format!("00-{TRACE}-{CALLER}-01")},
        }))
        .await;
    assert_eq!(node.outcome(&id).await["status"], "succeeded");
    // echo, split, echo twice, happy-end twice.
    let spans = received_spans(&receiver, TRACE, 6).await;
    assert_eq!(spans.len(), 6, "{spans:#?}");
    let by_id: HashMap<&str, &Value> = spans
        .iter()
        .map(|span| (span["span_id"].as_str().unwrap_or_default(), span))
        .collect();
    assert_eq!(by_id.len(), 6, "span ids are unique");
    let named =
        |name: &str| -> Vec<&Value> { spans.iter().filter(|span| span["name"] == name).collect() };
    let first = named("process echo")
        .into_iter()
        .find(|span| span["attributes"]["wasya.route.index"] == 0)
        .expect("the first hop");
    assert_eq!(
        first["parent_span_id"], CALLER,
        "the first hop continues the caller"
    );
    assert_eq!(first["attributes"]["messaging.message.id"], id.as_str());
    assert_eq!(first["attributes"]["wasya.actor"], "echo");
    assert_eq!(first["attributes"]["wasya.outcome"], "completed");
    assert_eq!(first["service"], "wasya-under-test");
    let split = named("process split")[0];
    assert_eq!(split["parent_span_id"], first["span_id"]);
    let branches: Vec<&Value> = named("process echo")
        .into_iter()
        .filter(|span| span["attributes"]["wasya.route.index"] == 2)
        .collect();
    assert_eq!(branches.len(), 2, "the fan-out's branches");
    for branch in &branches {
        assert_eq!(
            branch["parent_span_id"], split["span_id"],
            "a branch of the split"
        );
    }
    let ends = named("record happy-end");
    assert_eq!(ends.len(), 2);
    for end in ends {
        assert!(
            branches
                .iter()
                .any(|branch| branch["span_id"] == end["parent_span_id"]),
            "happy-end follows a branch: {end}"
        );
    }

    // A socket runtime receives the traceparent of its own hop.
    let seen = traceparent_seen(&node).await;
    let spans = received_spans(&receiver, TRACE, 6 + 3).await;
    let hop = spans
        .iter()
        .find(|span| span["name"] == "process s-headers")
        .expect("the socket actor's span");
    assert_eq!(
        seen,
        format!(
            "00-{TRACE}-{}-01",
            hop["span_id"].as_str().unwrap_or_default()
        )
    );
}

#[tokio::test]
async fn without_an_endpoint_headers_pass_unchanged() {
    let headers = Runtime::start("headers_seen", "envelope", &[]);
    let actor = socket_actor("s-headers", &headers);
    let node = NodeProcess::start(&["--socket-actor", &actor]);
    assert_eq!(
        traceparent_seen(&node).await,
        format!("00-{TRACE}-{CALLER}-01")
    );
}

#[tokio::test]
async fn a_sampler_that_keeps_nothing_exports_nothing_and_says_so_downstream() {
    let Some(python) = python::python() else {
        return;
    };
    let (receiver, endpoint) = receiver(&python).await;
    let headers = Runtime::start("headers_seen", "envelope", &[]);
    let actor = socket_actor("s-headers", &headers);
    let node = NodeProcess::start_with(
        &["--socket-actor", &actor],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_TRACES_SAMPLER", "always_off"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let seen = traceparent_seen(&node).await;
    assert!(
        seen.starts_with(&format!("00-{TRACE}-")) && seen.ends_with("-00"),
        "the runtime is told the trace is not sampled: {seen}"
    );
    // Give the exporter several of its 100 ms rounds.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        receiver.lines.lock().expect("a lock").len() == 1,
        "spans were exported: {:?}",
        receiver.lines.lock().expect("a lock")
    );
}
