//! Starting, configuring and stopping a node.

use crate::support::{NodeProcess, data_dir};
use serde_json::json;
use std::process::Command;

#[tokio::test]
async fn health_readiness_and_actors() {
    let node = NodeProcess::start(&[]);
    let client = reqwest::Client::new();
    let health = client
        .get(format!("{}/healthz", node.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = client
        .get(format!("{}/readyz", node.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let (_, actors) = node.get("/v1/actors").await;
    let names: Vec<&str> = actors
        .as_array()
        .unwrap()
        .iter()
        .map(|actor| actor["name"].as_str().unwrap())
        .collect();
    for example in [
        "echo", "upper", "split", "drop", "fail", "trap", "spin", "hog", "route", "leak", "env",
        "grep",
    ] {
        assert!(
            names.contains(&example),
            "{example} is not served: {names:?}"
        );
    }
}

#[tokio::test]
async fn the_cli_sends_and_prints_the_fan_out() {
    let node = NodeProcess::start(&[]);
    let base = node.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_wasya"))
            .args(["send", "--node", &base, "--route", "upper,split"])
            .args(["--payload", r#"{"text":"hello wasm world"}"#, "--wait"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["status"], "succeeded");
    let words: Vec<_> = printed["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| result["word"].clone())
        .collect();
    assert_eq!(words, vec![json!("HELLO"), json!("WASM"), json!("WORLD")]);
}

#[tokio::test]
async fn the_cli_exits_non_zero_on_a_failed_envelope() {
    let node = NodeProcess::start(&[]);
    let base = node.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_wasya"))
            .args(["send", "--node", &base, "--route", "fail", "--wait"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("failed"));
}

#[tokio::test]
async fn sigterm_finishes_in_flight_work_and_exits_zero() {
    let dir = data_dir();
    let data = dir.path().to_str().expect("a UTF-8 path");
    let args = [
        "--data-dir",
        data,
        "--timeout",
        "1s",
        "--grace-period",
        "20s",
    ];
    let mut node = NodeProcess::start(&args);
    // A spinner is in flight until its timeout; queued echoes wait behind nothing.
    let spinner = node.submit(&["spin"], json!({})).await;
    let mut ids = Vec::new();
    for n in 0..200 {
        ids.push(node.submit(&["echo", "echo"], json!(n)).await);
    }
    let status = node.terminate();
    assert!(status.success(), "exit status {status:?}");
    let stopped = node
        .log_event("stopped routing")
        .expect("the stop says what it left");
    assert_eq!(stopped["calls_cut_off"], 0, "{stopped}");

    // The next start on the same data directory finds nothing that was in flight
    // (the spinner's call ended before the exit), and every envelope ends.
    let node = NodeProcess::start(&args);
    let in_flight = node
        .metric(
            "wasya_store_recovered_messages_total",
            &[("state", "in_flight")],
        )
        .await;
    assert_eq!(in_flight, 0.0, "a call was cut off by the stop");
    for (n, id) in ids.iter().enumerate() {
        let view = node.outcome(id).await;
        assert_eq!(view["status"], "succeeded", "envelope {n}: {view}");
        assert_eq!(view["results"], json!([n]), "envelope {n}: {view}");
    }
    let view = node.outcome(&spinner).await;
    assert_eq!(view["status"], "failed", "the spinner: {view}");
}

#[test]
fn a_bad_setting_is_one_clear_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_wasya"))
        .args(["up", "--listen", "127.0.0.1:0", "--concurrency", "0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<_> = stderr
        .lines()
        .filter(|line| line.starts_with("error"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("--concurrency"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_wasya"))
        .args(["up", "--memory-limit", "lots"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--memory-limit"));

    let output = Command::new(env!("CARGO_BIN_EXE_wasya"))
        .args(["up", "--listen", "127.0.0.1:0"])
        .env("WASYA_TIMEOUT", "never")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--timeout"));
}

#[tokio::test]
async fn a_restart_loads_compiled_components_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let mut first = NodeProcess::start(&["--data-dir", data_dir]);
    let bundled = wasya::bundled::BUNDLED_ACTORS.len() as f64;
    let loads = |result: &'static str| [("result", result)];
    assert_eq!(
        first
            .metric("wasya_compile_cache_total", &loads("miss"))
            .await,
        bundled,
        "one compile per bundled actor"
    );
    assert_eq!(
        first
            .metric("wasya_compile_cache_total", &loads("hit"))
            .await,
        0.0
    );
    assert!(first.terminate().success());

    let second = NodeProcess::start(&["--data-dir", data_dir]);
    assert_eq!(
        second
            .metric("wasya_compile_cache_total", &loads("hit"))
            .await,
        bundled,
        "every bundled actor loaded from the cache"
    );
    assert_eq!(
        second
            .metric("wasya_compile_cache_total", &loads("miss"))
            .await,
        0.0,
        "recompiled"
    );
    let id = second.submit(&["upper"], json!({"text": "cached"})).await;
    assert_eq!(
        second.outcome(&id).await["results"],
        json!([{"text": "CACHED"}])
    );
}

#[tokio::test]
async fn an_oversized_body_is_refused_and_the_node_serves_on() {
    let node = NodeProcess::start(&["--max-body", "1KiB"]);
    let (status, _) = node
        .post_json(
            "/v1/envelopes",
            &json!({"route": ["echo"], "payload": "x".repeat(4096)}),
        )
        .await;
    assert_eq!(status, 413);
    let id = node.submit(&["echo"], json!("small")).await;
    assert_eq!(node.outcome(&id).await["status"], "succeeded");
}

#[test]
fn a_setting_for_an_unknown_actor_is_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_wasya"))
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--actor-timeout",
            "nosuch=1s",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("`nosuch`"));
}
