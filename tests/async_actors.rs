//! Async actors (`wasya:actor@0.2.0`), on the real binary with the `wait` example
//! actor (`guests/wait`, a Rust `async fn handle` that awaits the WASI 0.3 clock):
//! many waiting calls share a few instances, a trap ends only the calls of its
//! instance, a timeout fails one call, log lines name their envelope however calls
//! interleave, and a 0.1 and a 0.2 component serve one route side by side.

use crate::support::{Kind, NodeProcess, guest, single_error};
use futures::future::join_all;
use serde_json::{Value, json};
use std::time::Duration;

on_both_transports!(a_sync_and_an_async_component_serve_one_route);

/// A node serving the async `wait` component as `waiter`, with `options` set.
async fn node_with_waiter(options: Value) -> NodeProcess {
    let node = NodeProcess::start(&[]);
    let (status, answer) = node.upload("waiter", guest("wait")).await;
    assert_eq!(status, 201, "{answer}");
    if options != json!({}) {
        let (status, answer) = node.patch_json("waiter", options).await;
        assert_eq!(status, 200, "{answer}");
    }
    node
}

async fn submit_all(node: &NodeProcess, payloads: Vec<Value>) -> Vec<String> {
    join_all(
        payloads
            .into_iter()
            .map(|payload| node.submit(&["waiter"], payload)),
    )
    .await
}

async fn outcomes(node: &NodeProcess, ids: &[String]) -> Vec<Value> {
    join_all(ids.iter().map(|id| node.outcome(id))).await
}

#[tokio::test]
async fn a_thousand_waiting_calls_share_a_few_instances() {
    let node = node_with_waiter(json!({})).await;
    let (_, view) = node.get("/v1/actors/waiter").await;
    assert_eq!(view["world"], "wasya:actor@0.2.0", "{view}");
    assert_eq!(view["concurrency"], 10_000, "the async default: {view}");
    assert_eq!(view["instance_concurrency"], 256, "{view}");
    let ids = submit_all(&node, vec![json!({"ms": 1000}); 1000]).await;
    let ended = outcomes(&node, &ids).await;
    let mut most_at_once = 0;
    for view in &ended {
        assert_eq!(view["status"], "succeeded", "{view}");
        assert_eq!(view["results"][0]["waited_ms"], 1000, "{view}");
        most_at_once = most_at_once.max(view["results"][0]["in_instance"].as_u64().unwrap_or(0));
    }
    assert!(
        most_at_once > 100,
        "calls waited together in one instance: at most {most_at_once} did"
    );
    let (_, view) = node.get("/v1/actors/waiter").await;
    let instances = view["instances"].as_u64().expect("instances are counted");
    assert!(
        (1..=4).contains(&instances),
        "1000 calls at 256 per instance: {instances} instances"
    );
}

#[tokio::test]
async fn a_trap_fails_only_the_calls_of_its_instance() {
    let node = node_with_waiter(json!({"instance_concurrency": 4, "concurrency": 8})).await;
    // Four calls fill the first instance; one of them traps while the others wait.
    let mut first = vec![json!({"ms": 2000}); 3];
    first.push(json!({"ms": 300, "trap": true}));
    let first = submit_all(&node, first).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let second = submit_all(&node, vec![json!({"ms": 800}); 4]).await;
    for view in outcomes(&node, &first).await {
        assert_eq!(view["status"], "failed", "{view}");
        assert_eq!(single_error(&view)["details"]["type"], "trap", "{view}");
    }
    for view in outcomes(&node, &second).await {
        assert_eq!(view["status"], "succeeded", "another instance: {view}");
    }
    let after = node.submit(&["waiter"], json!({"ms": 10})).await;
    let view = node.outcome(&after).await;
    assert_eq!(view["status"], "succeeded", "the actor serves on: {view}");
}

#[tokio::test]
async fn a_timeout_fails_one_call_and_its_instance_serves_the_others() {
    let node = node_with_waiter(json!({"timeout": "600ms"})).await;
    let slow = node.submit(&["waiter"], json!({"ms": 5000})).await;
    let quick = submit_all(&node, vec![json!({"ms": 200}); 5]).await;
    let view = node.outcome(&slow).await;
    assert_eq!(view["status"], "failed", "{view}");
    assert_eq!(single_error(&view)["details"]["type"], "timeout", "{view}");
    for view in outcomes(&node, &quick).await {
        assert_eq!(view["status"], "succeeded", "{view}");
        assert_eq!(
            view["results"][0]["in_instance"].as_u64().map(|n| n >= 2),
            Some(true),
            "beside the slow one: {view}"
        );
    }
    let after = node.submit(&["waiter"], json!({"ms": 10})).await;
    assert_eq!(node.outcome(&after).await["status"], "succeeded");
}

#[tokio::test]
async fn log_lines_name_the_envelope_of_the_call_that_wrote_them() {
    let node = node_with_waiter(json!({})).await;
    let ids = submit_all(
        &node,
        (0..50).map(|i| json!({"ms": 50 + (i % 7) * 20})).collect(),
    )
    .await;
    for view in outcomes(&node, &ids).await {
        assert_eq!(view["status"], "succeeded", "{view}");
    }
    let lines: Vec<Value> = node
        .log()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| {
            event["message"]
                .as_str()
                .is_some_and(|text| text.starts_with("waiting for "))
        })
        .collect();
    assert_eq!(lines.len(), ids.len(), "one line per call");
    for event in lines {
        let named = event["message"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("waiting for ");
        assert_eq!(event["envelope_id"], named, "{event}");
        assert_eq!(event["actor"], "waiter", "{event}");
    }
}

async fn a_sync_and_an_async_component_serve_one_route(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    let (status, answer) = node.upload("waiter", guest("wait")).await;
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = node.upload("shout", guest("upper")).await;
    assert_eq!(status, 201, "{answer}");
    let ids = join_all((0..20).map(|_| {
        node.submit(
            &["shout", "waiter", "shout"],
            json!({"text": "hi", "ms": 100}),
        )
    }))
    .await;
    for view in outcomes(&node, &ids).await {
        assert_eq!(view["status"], "succeeded", "{view}");
        assert_eq!(view["results"][0]["text"], "HI", "{view}");
        assert_eq!(view["results"][0]["waited_ms"], 100, "{view}");
    }
    let (_, shout) = node.get("/v1/actors/shout").await;
    assert_eq!(shout["world"], "wasya:actor@0.1.0", "{shout}");
    assert!(shout.get("instances").is_none(), "{shout}");
}
