//! Socket actors: real external runtime processes (the repository's reference Python
//! runtime, or one that breaks the protocol on purpose) behind a real node.

use crate::support::{Kind, NodeProcess, Runtime, single_error};
use serde_json::json;

fn socket_actor(name: &str, runtime: &Runtime) -> String {
    format!("{name}={}", runtime.socket().display())
}

/// The routing matrix through socket actors, payload and envelope modes.
async fn routing_matrix_on_socket_actors(kind: Kind) {
    let runtimes = [
        ("s-echo", Runtime::start("echo", "payload", &[])),
        ("s-upper", Runtime::start("upper", "payload", &[])),
        ("s-split", Runtime::start("split", "payload", &[])),
        ("s-drop", Runtime::start("drop", "payload", &[])),
        ("s-fail", Runtime::start("fail", "payload", &[])),
        ("s-hop", Runtime::start("add_hop", "envelope", &[])),
    ];
    let mut args = vec!["--serve".to_owned(), "echo,upper".to_owned()];
    for (name, runtime) in &runtimes {
        args.push("--socket-actor".into());
        args.push(socket_actor(name, runtime));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let node = NodeProcess::start_on(kind, &args);

    // Three hops, with headers and metadata carried along.
    let id = node
        .submit_body(json!({
            "route": {"actors": ["s-upper", "s-echo", "s-echo"], "metadata": {"job": 1}},
            "headers": {"traceparent": "00-abc-01"},
            "payload": {"text": "socket"},
        }))
        .await;
    let view = node.outcome(&id).await;
    assert_eq!(view["results"], json!([{"text": "SOCKET"}]), "{view}");
    let envelope = &view["ended"][0]["envelope"];
    assert_eq!(envelope["headers"]["traceparent"], "00-abc-01");
    assert_eq!(envelope["route"]["metadata"], json!({"job": 1}));

    // Fan-out: ids {id}-{i} and parent_id.
    let id = node
        .submit(&["s-split", "echo"], json!({"text": "a b c"}))
        .await;
    let view = node.outcome(&id).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["results"].as_array().unwrap().len(), 3);
    assert_eq!(view["ended"][2]["envelope"]["id"], format!("{id}-2"));
    assert_eq!(view["ended"][2]["envelope"]["parent_id"], id.as_str());

    // No result: the original to happy-end.
    let id = node.submit(&["s-drop", "s-echo"], json!({"keep": 1})).await;
    let view = node.outcome(&id).await;
    assert_eq!(view["results"], json!([{"keep": 1}]));
    assert_eq!(view["ended"][0]["envelope"]["route"]["current"], 0);

    // The handler raises: error-end with its type, message and traceback.
    let id = node.submit(&["s-fail"], json!({"reason": "testing"})).await;
    let view = node.outcome(&id).await;
    let error = single_error(&view);
    assert_eq!(error["error"], "processing_error");
    assert_eq!(error["details"]["type"], "ValueError");
    assert!(
        error["details"]["message"]
            .as_str()
            .unwrap()
            .contains("testing")
    );
    assert!(
        error["details"]["traceback"]
            .as_str()
            .unwrap()
            .contains("Traceback")
    );
    assert_eq!(error["original_payload"], json!({"reason": "testing"}));

    // Envelope mode: the handler extends the route.
    let id = node
        .submit(
            &["s-hop", "s-echo"],
            json!({"append": "upper", "text": "hop"}),
        )
        .await;
    let view = node.outcome(&id).await;
    assert_eq!(
        view["results"],
        json!([{"append": "upper", "text": "HOP"}]),
        "{view}"
    );
    assert_eq!(
        view["ended"][0]["envelope"]["route"]["actors"],
        json!(["s-hop", "s-echo", "upper"])
    );
}

#[tokio::test]
async fn a_pipeline_mixes_wasm_and_socket_actors() {
    let runtime = Runtime::start("echo", "payload", &[]);
    let node = NodeProcess::start(&["--socket-actor", &socket_actor("s-echo", &runtime)]);
    let id = node
        .submit(
            &["upper", "s-echo", "split"],
            json!({"text": "wasm to socket"}),
        )
        .await;
    let view = node.outcome(&id).await;
    let words: Vec<_> = view["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| result["word"].clone())
        .collect();
    assert_eq!(
        words,
        [json!("WASM"), json!("TO"), json!("SOCKET")],
        "{view}"
    );
}

#[tokio::test]
async fn a_runtime_killed_mid_message_loses_nothing() {
    let mut runtime = Runtime::start("slow", "payload", &[]);
    let node = NodeProcess::start(&["--socket-actor", &socket_actor("s-slow", &runtime)]);
    let id = node.submit(&["s-slow"], json!({"seconds": 2})).await;
    assert!(
        runtime
            .wait_for_log(&format!("handling envelope {id}"))
            .await
    );
    runtime.kill();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    runtime.restart();
    let view = node.outcome(&id).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["results"], json!([{"seconds": 2}]));
    assert_eq!(view["ended"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_slow_runtime_times_out_once_and_the_next_message_is_served() {
    // The runtime serves on threads, so it can take the next message while the
    // timed-out call still sleeps on its side.
    let runtime = Runtime::start("slow", "payload", &[("ASYA_RUNTIME_CONCURRENT", "1")]);
    let node = NodeProcess::start(&[
        "--socket-actor",
        &socket_actor("s-slow", &runtime),
        "--actor-timeout",
        "s-slow=1s",
    ]);
    let id = node.submit(&["s-slow"], json!({"seconds": 3})).await;
    let view = node.outcome(&id).await;
    let error = single_error(&view);
    assert_eq!(error["details"]["type"], "timeout", "{view}");
    assert_eq!(view["ended"].as_array().unwrap().len(), 1, "error-end once");
    let id = node.submit(&["s-slow"], json!({"seconds": 0})).await;
    assert_eq!(node.outcome(&id).await["status"], "succeeded");
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn protocol_violations_are_clear_errors() {
    let cases = [
        ("garbage", "not_json", "not JSON"),
        ("truncated", "truncated_frame", "cut short"),
        ("non_array", "not_an_array", "not a JSON array"),
        ("huge", "frame_too_large", "2147483648 bytes"),
    ];
    let runtimes: Vec<(String, Runtime)> = cases
        .iter()
        .map(|(mode, _, _)| {
            (
                format!("bad-{}", mode.replace('_', "-")),
                Runtime::misbehaving(mode),
            )
        })
        .collect();
    let mut args = Vec::new();
    for (name, runtime) in &runtimes {
        args.push("--socket-actor".to_owned());
        args.push(socket_actor(name, runtime));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let node = NodeProcess::start(&args);
    for ((name, _), (mode, kind, words)) in runtimes.iter().zip(cases) {
        let id = node.submit(&[name.as_str()], json!({"mode": mode})).await;
        let view = node.outcome(&id).await;
        let error = single_error(&view);
        assert_eq!(error["error"], "protocol_error", "{mode}: {view}");
        assert_eq!(error["details"]["type"], kind, "{mode}: {view}");
        let message = error["details"]["message"].as_str().unwrap();
        assert!(
            message.contains(words),
            "{mode}: `{message}` should say `{words}`"
        );
    }
    let peak = peak_rss_kib(node.pid());
    assert!(peak < 1024 * 1024, "the node's peak RSS reached {peak} KiB");
    let id = node.submit(&["echo"], json!("still serving")).await;
    assert_eq!(node.outcome(&id).await["status"], "succeeded");
}

async fn peaks(node: &NodeProcess, count: usize) -> Vec<u64> {
    let ids = futures::future::join_all(
        (0..count).map(|_| node.submit(&["s-peak"], json!({"seconds": 1}))),
    )
    .await;
    let mut peaks = Vec::new();
    for id in ids {
        let view = node.outcome(&id).await;
        peaks.push(view["results"][0]["peak"].as_u64().expect("a peak"));
    }
    peaks
}

#[tokio::test]
async fn connections_are_limited_as_configured() {
    let runtime = Runtime::start(
        "Peak.observe",
        "payload",
        &[("ASYA_RUNTIME_CONCURRENT", "1")],
    );
    let one = NodeProcess::start(&[
        "--serve",
        "none",
        "--socket-actor",
        &socket_actor("s-peak", &runtime),
    ]);
    assert!(
        peaks(&one, 3).await.iter().all(|&peak| peak == 1),
        "default: one connection at a time"
    );
    drop(one);
    let four = NodeProcess::start(&[
        "--serve",
        "none",
        "--socket-actor",
        &socket_actor("s-peak", &runtime),
        "--actor-concurrency",
        "s-peak=4",
    ]);
    let peaks = peaks(&four, 4).await;
    assert!(
        peaks.iter().any(|&peak| peak >= 2),
        "no call overlapped: {peaks:?}"
    );
    assert!(
        peaks.iter().all(|&peak| peak <= 4),
        "more than 4 at once: {peaks:?}"
    );
}

#[tokio::test]
async fn a_message_waits_for_a_runtime_that_is_not_up_yet() {
    let mut runtime = Runtime::start("echo", "payload", &[]);
    runtime.kill();
    let _ = std::fs::remove_file(runtime.socket_dir().join("runtime-ready"));
    let _ = std::fs::remove_file(runtime.socket());
    let node = NodeProcess::start(&[
        "--serve",
        "none",
        "--socket-actor",
        &socket_actor("s-echo", &runtime),
    ]);
    let ready = reqwest::get(format!("{}/readyz", node.base)).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("s-echo"));
    let id = node.submit(&["s-echo"], json!("patience")).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        node.get(&format!("/v1/envelopes/{id}")).await.1["status"],
        "pending"
    );
    runtime.restart();
    assert_eq!(node.outcome(&id).await["results"], json!(["patience"]));
    let ready = reqwest::get(format!("{}/readyz", node.base)).await.unwrap();
    assert_eq!(ready.status(), 200);
}

/// One runtime gone does not take a node of many actors out: it stays ready, serves
/// the others, and says which actor cannot serve.
#[tokio::test]
async fn a_missing_runtime_does_not_take_out_a_node_of_many_actors() {
    let runtime = Runtime::prepare("echo", "payload", &[]);
    let node = NodeProcess::start(&[
        "--serve",
        "echo",
        "--socket-actor",
        &socket_actor("s-gone", &runtime),
    ]);
    let ready = reqwest::get(format!("{}/readyz", node.base)).await.unwrap();
    assert_eq!(ready.status(), 200);
    let text = ready.text().await.unwrap();
    assert!(
        text.starts_with("ready; 1 of 2 actors cannot serve:") && text.contains("s-gone"),
        "{text}"
    );
    let id = node.submit(&["echo"], json!("served")).await;
    assert_eq!(node.outcome(&id).await["results"], json!(["served"]));
    let (_, actor) = node.get("/v1/actors/s-gone").await;
    assert!(
        actor["not_ready"].as_str().unwrap().contains("s-gone"),
        "{actor}"
    );
}

/// A runtime is called with the envelope as Asya's sidecar would send it: the node's
/// fan-out bookkeeping stays with the node, and the submission still completes.
async fn a_runtime_never_sees_the_nodes_fan_out_bookkeeping(kind: Kind) {
    let seen = Runtime::start("headers_seen", "envelope", &[]);
    let node = NodeProcess::start_on(kind, &["--socket-actor", &socket_actor("s-seen", &seen)]);
    let id = node
        .submit_body(json!({
            "route": {"actors": ["split", "s-seen"]},
            "headers": {"x-tenant": "acme"},
            "payload": {"text": "a b"},
        }))
        .await;
    let view = node.outcome(&id).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(
        view["results"],
        json!([{"headers": {"x-tenant": "acme"}}, {"headers": {"x-tenant": "acme"}}]),
        "{view}"
    );
}

on_both_transports!(
    routing_matrix_on_socket_actors,
    a_runtime_never_sees_the_nodes_fan_out_bookkeeping
);
