//! Outbound HTTP from wasm actors, against servers the tests start: grants, denials,
//! each limit, trace context, TLS, and the bundled `fetch` and `llm` examples.

use crate::metrics::{scrape, value};
use crate::support::web::WebServer;
use crate::support::{NodeProcess, single_error};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A node serving `fetch`, granted `server` alone, with `extra` flags.
fn fetch_node(server: &WebServer, extra: &[&str]) -> NodeProcess {
    let grant = format!("fetch={}", server.pattern());
    let mut args = vec!["--serve", "fetch", "--actor-allow-outbound", grant.as_str()];
    args.extend_from_slice(extra);
    NodeProcess::start(&args)
}

async fn fetch(node: &NodeProcess, request: Value) -> Value {
    let id = node.submit(&["fetch"], request).await;
    node.outcome(&id).await
}

#[tokio::test]
async fn a_granted_actor_reaches_its_host_with_the_envelopes_trace_context() {
    let server = WebServer::start(Duration::ZERO).await;
    let node = fetch_node(&server, &[]);
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let id = node
        .submit_body(json!({
            "route": ["fetch"],
            "headers": {"traceparent": traceparent},
            "payload": {"url": server.url("/echo?x=1"), "method": "POST",
                        "headers": {"x-asked": "yes"}, "body": {"n": 1}},
        }))
        .await;
    let view = node.outcome(&id).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    let result = &view["results"][0];
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["headers"]["content-type"], "application/json");
    let echo: Value = serde_json::from_str(result["body"].as_str().expect("a body")).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["version"], "HTTP/1.1");
    assert_eq!(echo["target"], "/echo?x=1");
    assert_eq!(echo["headers"]["x-asked"], "yes");
    assert_eq!(echo["headers"]["content-type"], "application/json");
    assert_eq!(echo["headers"]["traceparent"], traceparent);
    assert_eq!(
        echo["headers"]["host"],
        format!("127.0.0.1:{}", server.port)
    );
    assert_eq!(echo["body"], r#"{"n":1}"#);
    let samples = scrape(&node).await;
    let host = server.pattern();
    assert_eq!(
        value(
            &samples,
            "wasya_outbound_requests_total",
            &[("actor", "fetch"), ("host", &host), ("result", "2xx")]
        ),
        1.0
    );
}

#[tokio::test]
async fn an_ungranted_actor_and_a_host_outside_the_grant_are_denied_by_name() {
    let server = WebServer::start(Duration::ZERO).await;
    let other = WebServer::start(Duration::ZERO).await;
    let node = NodeProcess::start(&["--serve", "fetch"]);
    let view = fetch(&node, json!({"url": server.url("/echo")})).await;
    let error = single_error(&view);
    assert_eq!(error["details"]["type"], "http-denied", "{view}");
    let message = error["details"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("allowed_outbound_hosts"), "{message}");
    assert_eq!(error["details"]["refused_hosts"], json!([server.pattern()]));
    assert_eq!(server.seen.total.load(Ordering::SeqCst), 0);

    // Granted one server over the API: the other stays refused.
    let (status, actor) = node
        .put_json(
            "fetch",
            json!({"allowed_outbound_hosts": [server.pattern()]}),
        )
        .await;
    assert_eq!(status, 200, "{actor}");
    assert_eq!(actor["allowed_outbound_hosts"], json!([server.pattern()]));
    let view = fetch(&node, json!({"url": server.url("/echo")})).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    let view = fetch(&node, json!({"url": other.url("/echo")})).await;
    assert_eq!(
        single_error(&view)["details"]["refused_hosts"],
        json!([other.pattern()])
    );
    assert_eq!(other.seen.total.load(Ordering::SeqCst), 0);
    let samples = scrape(&node).await;
    assert_eq!(
        value(
            &samples,
            "wasya_outbound_requests_total",
            &[
                ("actor", "fetch"),
                ("host", &other.pattern()),
                ("result", "denied")
            ]
        ),
        1.0
    );

    // A pattern that is not one is refused with the reason.
    let (status, answer) = node
        .put_json("fetch", json!({"allowed_outbound_hosts": ["127.0.0.1"]}))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"].to_string().contains("no scheme"),
        "{answer}"
    );
}

#[tokio::test]
async fn the_outbound_timeout_stops_a_server_that_never_answers() {
    let server = WebServer::start(Duration::ZERO).await;
    let node = fetch_node(&server, &["--outbound-timeout", "500ms"]);
    let view = fetch(&node, json!({"url": server.url("/never")})).await;
    let error = single_error(&view);
    assert_eq!(error["details"]["type"], "http-timeout", "{view}");
    // The node and the actor go on.
    let view = fetch(&node, json!({"url": server.url("/slow?ms=10")})).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["results"][0]["body"], "slow answer");
}

#[tokio::test]
async fn the_call_timeout_holds_while_a_guest_waits_on_the_network() {
    let server = WebServer::start(Duration::ZERO).await;
    let node = fetch_node(&server, &["--actor-timeout", "fetch=700ms"]);
    let view = fetch(&node, json!({"url": server.url("/never")})).await;
    let error = single_error(&view);
    // The call's deadline bounds the request too: it ends as the guest's
    // `http-timeout` or, where the call's own timer fires first, as `timeout`.
    let kind = error["details"]["type"].as_str().unwrap_or_default();
    assert!(kind == "http-timeout" || kind == "timeout", "{view}");
    assert_eq!(
        server.seen.in_flight.load(Ordering::SeqCst),
        0,
        "the request was left open"
    );
}

#[tokio::test]
async fn a_body_past_the_limit_is_refused_streamed_or_announced() {
    let server = WebServer::start(Duration::ZERO).await;
    let node = fetch_node(&server, &["--outbound-body-limit", "64KiB"]);
    for path in ["/big?bytes=1000000", "/big?bytes=1000000&announce=1"] {
        let view = fetch(&node, json!({"url": server.url(path)})).await;
        let error = single_error(&view);
        assert_eq!(error["details"]["type"], "http-too_large", "{path}: {view}");
    }
    let view = fetch(&node, json!({"url": server.url("/big?bytes=60000")})).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(
        view["results"][0]["body"].as_str().map(str::len),
        Some(60000)
    );
    let samples = scrape(&node).await;
    assert_eq!(
        value(
            &samples,
            "wasya_outbound_body_limit_hits_total",
            &[("actor", "fetch")]
        ),
        2.0
    );
}

#[tokio::test]
async fn outbound_concurrency_bounds_the_requests_open_at_once() {
    let server = WebServer::start(Duration::ZERO).await;
    let node = fetch_node(
        &server,
        &["--concurrency", "8", "--outbound-concurrency", "2"],
    );
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(
            node.submit(&["fetch"], json!({"url": server.url("/slow?ms=300")}))
                .await,
        );
    }
    for id in &ids {
        let view = node.outcome(id).await;
        assert_eq!(view["status"], "succeeded", "{view}");
    }
    assert_eq!(server.seen.total.load(Ordering::SeqCst), 8);
    assert_eq!(server.seen.most_in_flight.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn llm_asks_an_openai_compatible_endpoint_named_by_its_env() {
    let server = WebServer::start(Duration::from_millis(300)).await;
    let grant = format!("llm={}", server.pattern());
    let base = format!("OPENAI_BASE_URL={}", server.url("/v1"));
    let node = NodeProcess::start(&[
        "--serve",
        "llm",
        "--actor-allow-outbound",
        &grant,
        "--actor-env",
        &base,
        "--actor-env",
        "OPENAI_API_KEY=sk-test",
        "--actor-env",
        "OPENAI_MODEL=local-model",
    ]);
    let id = node
        .submit(&["llm"], json!({"prompt": "hello there"}))
        .await;
    let view = node.outcome(&id).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["results"][0]["text"], "echo: hello there");
    assert_eq!(view["results"][0]["model"], "local-model");
    assert_eq!(
        server.seen.authorization.lock().unwrap().as_deref(),
        Some("Bearer sk-test")
    );
    assert_eq!(
        server.seen.model.lock().unwrap().as_deref(),
        Some("local-model")
    );
    // A prompt that is not a string is the caller's error, said plainly.
    let id = node.submit(&["llm"], json!({"prompt": 3})).await;
    let view = node.outcome(&id).await;
    assert_eq!(
        single_error(&view)["details"]["type"],
        "bad-input",
        "{view}"
    );
}

#[tokio::test]
async fn https_reaches_a_server_whose_ca_the_node_trusts_and_no_other() {
    let server = WebServer::tls(Duration::ZERO).await;
    let ca = server.ca_file.clone().expect("a CA file");
    let trusting = fetch_node(&server, &["--outbound-ca", ca.to_str().expect("a path")]);
    let view = fetch(&trusting, json!({"url": server.url("/echo")})).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    let echo: Value =
        serde_json::from_str(view["results"][0]["body"].as_str().expect("a body")).unwrap();
    assert_eq!(echo["method"], "GET");
    // The server offers HTTP/2 by ALPN, and the node's client takes it.
    assert_eq!(echo["version"], "HTTP/2.0");

    let wary = fetch_node(&server, &[]);
    let view = fetch(&wary, json!({"url": server.url("/echo")})).await;
    assert_eq!(single_error(&view)["details"]["type"], "http-tls", "{view}");
}

#[test]
fn a_ca_file_that_is_not_one_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("ca.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wasya"))
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--serve",
            "echo",
            "--outbound-ca",
        ])
        .arg(&bad)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--outbound-ca"), "{stderr}");
    assert!(stderr.contains("no PEM certificate"), "{stderr}");
}

/// A warning that repeats (a guest calling a host it may not, message after message)
/// is written a few times per window, then summed up in one line.
#[tokio::test]
async fn a_repeated_warning_is_held_back_and_summed_up() {
    let server = WebServer::start(Duration::ZERO).await;
    let node = NodeProcess::start(&["--serve", "fetch"]);
    const MESSAGES: usize = 60;
    for _ in 0..MESSAGES {
        let view = fetch(&node, json!({"url": server.url("/echo")})).await;
        assert_eq!(single_error(&view)["details"]["type"], "http-denied");
    }
    let denied = |log: &[String]| {
        log.iter()
            .filter(|line| line.contains("an outbound request was denied"))
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let summary = loop {
        if let Some(line) = node
            .log()
            .into_iter()
            .find(|line| line.contains("more in the last 10s like:"))
        {
            break line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no summary: {:?}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    let held = summary["held"].as_u64().unwrap() as usize;
    let written = denied(&node.log());
    assert!(written <= 2 * 5, "written {written} times");
    assert!(held >= MESSAGES - written, "held {held}, written {written}");
    assert!(
        summary["message"].as_str().unwrap().contains("denied"),
        "{summary}"
    );
}
