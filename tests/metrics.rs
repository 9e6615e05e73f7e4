//! `/metrics` read by a real Prometheus text parser, after a known workload.

use crate::support::NodeProcess;
use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;
use std::io::BufRead;

pub(crate) async fn scrape(node: &NodeProcess) -> Vec<Sample> {
    let response = reqwest::get(format!("{}/metrics", node.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    Scrape::parse(std::io::BufReader::new(text.as_bytes()).lines())
        .expect("the Prometheus parser reads /metrics")
        .samples
}

/// The value of the sample `metric` whose labels include `labels`.
pub(crate) fn value(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> f64 {
    let sample = samples
        .iter()
        .find(|sample| {
            sample.metric == metric
                && labels
                    .iter()
                    .all(|(name, value)| sample.labels.get(name) == Some(value))
        })
        .unwrap_or_else(|| panic!("no {metric} with {labels:?}"));
    match &sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
        Value::Summary(_) => panic!("{metric} is a summary"),
    }
}

#[tokio::test]
async fn metrics_count_a_known_workload() {
    let node = NodeProcess::start(&["--actor-concurrency", "upper=3"]);
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            node.submit(&["echo", "upper"], json!({"text": format!("m{n}")}))
                .await,
        );
    }
    ids.push(node.submit(&["trap"], json!({})).await);
    ids.push(node.submit(&["fail"], json!({})).await);
    for id in &ids {
        node.outcome(id).await;
    }
    let samples = scrape(&node).await;
    let received = "asya_actor_messages_received_total";
    assert_eq!(
        value(
            &samples,
            received,
            &[("queue", "asya-echo"), ("transport", "embedded")]
        ),
        3.0
    );
    assert_eq!(value(&samples, received, &[("queue", "asya-upper")]), 3.0);
    let processed = "asya_actor_messages_processed_total";
    assert_eq!(
        value(
            &samples,
            processed,
            &[("queue", "asya-upper"), ("status", "success")]
        ),
        3.0
    );
    assert_eq!(
        value(
            &samples,
            processed,
            &[("queue", "asya-trap"), ("status", "error")]
        ),
        1.0
    );
    let failed = "asya_actor_messages_failed_total";
    assert_eq!(
        value(
            &samples,
            failed,
            &[("queue", "asya-fail"), ("reason", "ValueError")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            failed,
            &[("queue", "asya-trap"), ("reason", "trap")]
        ),
        1.0
    );
    let sent = "asya_actor_messages_sent_total";
    assert_eq!(
        value(
            &samples,
            sent,
            &[
                ("destination_queue", "asya-upper"),
                ("message_type", "routing")
            ]
        ),
        3.0
    );
    assert_eq!(
        value(
            &samples,
            sent,
            &[
                ("destination_queue", "asya-happy-end"),
                ("message_type", "happy_end")
            ]
        ),
        3.0
    );
    assert_eq!(
        value(
            &samples,
            sent,
            &[
                ("destination_queue", "asya-error-end"),
                ("message_type", "error_end")
            ]
        ),
        2.0
    );
    assert_eq!(
        value(
            &samples,
            "asya_actor_active_messages",
            &[("queue", "asya-echo")]
        ),
        0.0
    );
    assert_eq!(
        value(
            &samples,
            "asya_actor_processing_duration_seconds",
            &[("queue", "asya-echo")]
        ),
        3.0
    );
    assert_eq!(
        value(
            &samples,
            "asya_actor_runtime_execution_duration_seconds",
            &[("queue", "asya-upper")]
        ),
        3.0
    );
    assert_eq!(
        value(
            &samples,
            "asya_actor_envelope_size_bytes",
            &[("direction", "received")]
        ),
        8.0
    );
    assert_eq!(
        value(
            &samples,
            "wasya_wasm_instantiation_duration_seconds",
            &[("actor", "echo")]
        ),
        3.0
    );
    assert_eq!(
        value(&samples, "wasya_guest_traps_total", &[("actor", "trap")]),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "wasya_actor_concurrency_limit",
            &[("actor", "upper")]
        ),
        3.0
    );
    let loads: f64 = ["hit", "miss"]
        .iter()
        .map(|result| {
            samples
                .iter()
                .filter(|s| {
                    s.metric == "wasya_compile_cache_total"
                        && s.labels.get("result") == Some(result)
                })
                .map(|s| value(std::slice::from_ref(s), "wasya_compile_cache_total", &[]))
                .sum::<f64>()
        })
        .sum();
    let bundled = wasya::bundled::BUNDLED_ACTORS.len() as f64;
    assert_eq!(loads, bundled, "one load per bundled actor");
    // The lag tick fires every 10 ms from the node's start; give it a moment.
    let mut ticks = value(&samples, "wasya_event_loop_lag_seconds", &[]);
    for _ in 0..50 {
        if ticks > 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        ticks = value(&scrape(&node).await, "wasya_event_loop_lag_seconds", &[]);
    }
    assert!(ticks > 0.0, "the lag tick runs");
    assert_eq!(
        value(&samples, "wasya_compile_duration_seconds", &[]),
        bundled
    );
}

/// A guest that raises a new exception class per message cannot grow the registry:
/// past the bound its error types read `other`, and a removed actor's series go.
#[tokio::test]
async fn guest_chosen_labels_are_bounded_and_go_with_their_actor() {
    use futures::StreamExt;
    const MESSAGES: usize = 10_000;
    let node = NodeProcess::start(&["--serve", "fail", "--actor-concurrency", "fail=16"]);
    let submitted: Vec<u16> = futures::stream::iter(0..MESSAGES)
        .map(|n| {
            let node = &node;
            async move {
                let body = json!({"route": ["fail"], "payload": {"kind": format!("Error{n}")}});
                node.post_json("/v1/envelopes", &body).await.0
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert!(submitted.iter().all(|status| *status == 202));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (_, actor) = node.get("/v1/actors/fail").await;
        if actor["processed"] == MESSAGES {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{actor}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let samples = scrape(&node).await;
    let reasons: Vec<&str> = samples
        .iter()
        .filter(|sample| {
            sample.metric == "asya_actor_messages_failed_total"
                && sample.labels.get("queue") == Some("asya-fail")
        })
        .filter_map(|sample| sample.labels.get("reason"))
        .collect();
    assert_eq!(
        reasons.len(),
        wasya::metrics::LABEL_VALUES_PER_SCOPE + 1,
        "{reasons:?}"
    );
    assert!(reasons.contains(&"other"));
    let other = value(
        &samples,
        "asya_actor_messages_failed_total",
        &[("queue", "asya-fail"), ("reason", "other")],
    );
    assert_eq!(
        other as usize,
        MESSAGES - wasya::metrics::LABEL_VALUES_PER_SCOPE,
        "every failure counted"
    );
    assert_eq!(node.delete("/v1/actors/fail").await, 204);
    let samples = scrape(&node).await;
    let left: Vec<&Sample> = samples
        .iter()
        .filter(|sample| {
            sample
                .labels
                .values()
                .any(|value| value == "asya-fail" || value == "fail")
        })
        .collect();
    assert!(left.is_empty(), "a removed actor's series: {left:?}");
}
