//! The sandbox and its limits: traps, timeouts and memory limits end one call, go to
//! error-end with a distinct type, and leave the node serving.

use crate::support::{Kind, NodeProcess, single_error};
use serde_json::json;
use std::time::{Duration, Instant};

async fn a_trap_is_reported_as_trap(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    let id = node.submit(&["trap"], json!({"x": 1})).await;
    let view = node.outcome(&id).await;
    let error = single_error(&view);
    assert_eq!(error["details"]["type"], "trap");
    assert_eq!(error["original_payload"], json!({"x": 1}));
    // The guest's own account of it (Rust prints a panic to stderr) comes first.
    let traceback = error["details"]["traceback"].as_str().unwrap_or("");
    assert!(
        traceback.contains("trap actor panics on purpose"),
        "{error}"
    );
    let id = node.submit(&["echo"], json!("after")).await;
    assert_eq!(node.outcome(&id).await["status"], "succeeded");
}

async fn a_guest_past_its_timeout_is_stopped_while_others_serve(kind: Kind) {
    let timeout = Duration::from_secs(2);
    let node = NodeProcess::start_on(
        kind,
        &[
            "--actor-timeout",
            "spin=2s",
            "--actor-concurrency",
            "spin=2",
        ],
    );
    let started = Instant::now();
    let spinners: Vec<String> =
        futures::future::join_all((0..2).map(|n| node.submit(&["spin"], json!({"n": n})))).await;
    // While both spinners run, other actors keep serving.
    for n in 0..20 {
        let id = node
            .submit(&["echo", "upper"], json!({"text": format!("m{n}")}))
            .await;
        let view = node.outcome(&id).await;
        assert_eq!(view["status"], "succeeded", "{view}");
    }
    let served_while_spinning = started.elapsed();
    for id in spinners {
        let view = node.outcome(&id).await;
        let error = single_error(&view);
        assert_eq!(error["details"]["type"], "timeout", "{view}");
    }
    let stopped_after = started.elapsed();
    assert!(
        served_while_spinning < timeout,
        "echo waited for the spinners: {served_while_spinning:?}"
    );
    assert!(
        stopped_after < timeout + Duration::from_secs(1),
        "spin was stopped only after {stopped_after:?}"
    );
}

async fn a_guest_over_its_memory_limit_is_stopped(kind: Kind) {
    let node = NodeProcess::start_on(kind, &["--actor-memory-limit", "hog=32MiB"]);
    let id = node.submit(&["hog"], json!({})).await;
    let view = node.outcome(&id).await;
    let error = single_error(&view);
    assert_eq!(error["details"]["type"], "resource_limit", "{view}");
    assert!(
        error["details"]["message"]
            .as_str()
            .unwrap()
            .contains("memory limit")
    );
    let id = node.submit(&["echo"], json!("after")).await;
    assert_eq!(node.outcome(&id).await["status"], "succeeded");
}

async fn guest_logs_become_node_events_with_the_envelope_id(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    let id = node.submit(&["echo"], json!(1)).await;
    node.outcome(&id).await;
    let logged = node
        .wait_for_log(|line| {
            line.contains("wasya::guest")
                && line.contains(&id)
                && line.contains("\"actor\":\"echo\"")
        })
        .await;
    assert!(logged, "no guest log event carries {id}");
}

async fn per_actor_limits_apply_to_that_actor_only(kind: Kind) {
    let node = NodeProcess::start_on(
        kind,
        &["--actor-timeout", "spin=1500ms", "--memory-limit", "64MiB"],
    );
    let (_, actors) = node.get("/v1/actors").await;
    let limits = |name: &str| {
        actors
            .as_array()
            .unwrap()
            .iter()
            .find(|actor| actor["name"] == name)
            .map(|actor| {
                (
                    actor["timeout_ms"].clone(),
                    actor["memory_limit_bytes"].clone(),
                )
            })
            .unwrap()
    };
    assert_eq!(limits("spin"), (json!(1500), json!(64 << 20)));
    assert_eq!(limits("echo"), (json!(30_000), json!(64 << 20)));
}

on_both_transports!(
    a_trap_is_reported_as_trap,
    a_guest_past_its_timeout_is_stopped_while_others_serve,
    a_guest_over_its_memory_limit_is_stopped,
    guest_logs_become_node_events_with_the_envelope_id,
    per_actor_limits_apply_to_that_actor_only,
);
