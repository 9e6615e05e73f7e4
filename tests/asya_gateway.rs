//! Asya's gateway paths as Asya's clients, sidecars and integration suite use them:
//! the envelope view of a tool's call (its arguments, deadline and fan-out children),
//! a tool's timeout failing its envelope, the reporting paths Asya's sidecars post to
//! (and a `wasya sidecar` posting to a `wasya up` gateway), and ended envelopes copied
//! to a real S3-compatible server in Asya's key layout.

use crate::support::s3::S3Server;
use crate::support::sse;
use crate::support::{Broker, NodeProcess, Runtime, guest};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOOLS: &str = r#"
defaults:
  timeout: 60
  progress: true
tools:
- name: shout
  description: Upper-cases a text
  parameters:
    text: {type: string, required: true}
  route: [upper]
- name: words
  description: One envelope per word, each echoed
  parameters:
    text: {type: string, required: true}
  route: [split, echo]
- name: relay
  description: Through a socket actor behind a sidecar
  parameters:
    text: {type: string, required: true}
  route: [g-relay]
- name: slow
  description: Waits longer than its timeout
  parameters:
    ms: {type: integer, default: 3000}
  route: [slow]
  timeout: 1
"#;

fn tools_file() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("a directory");
    let path = dir.path().join("gateway-routes.yaml");
    std::fs::write(&path, TOOLS).expect("the tools file");
    (dir, path.display().to_string())
}

/// Calls a tool through Asya's `POST /tools/call`; the inner answer.
async fn call(node: &NodeProcess, name: &str, arguments: Value) -> Value {
    let (status, answer) = node
        .post_json(
            "/tools/call",
            &json!({"name": name, "arguments": arguments}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.get("isError").is_none(), "{answer}");
    serde_json::from_str(answer["content"][0]["text"].as_str().expect("text")).expect("JSON")
}

/// Reads Asya's view of `id` until `done` holds (at most 30 s).
async fn view_until(node: &NodeProcess, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, view) = node.get(&format!("/envelopes/{id}")).await;
        if status == 200 && done(&view) {
            return view;
        }
        assert!(Instant::now() < deadline, "{id}: {status} {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ended(view: &Value) -> bool {
    view["status"] == "succeeded" || view["status"] == "failed"
}

#[tokio::test]
async fn asyas_view_shows_a_calls_arguments_deadline_and_fan_out_children() {
    let (_dir, tools) = tools_file();
    let node = NodeProcess::start(&["--tools", &tools]);
    let answer = call(&node, "words", json!({"text": "alpha beta gamma"})).await;
    let id = answer["envelope_id"].as_str().expect("an id").to_owned();
    assert_eq!(answer["status_url"], format!("/envelopes/{id}"));
    assert_eq!(answer["envelope_url"], format!("/v1/envelopes/{id}"));
    assert_eq!(answer["stream_url"], format!("/envelopes/{id}/stream"));
    assert_eq!(node.outcome(&id).await["status"], "succeeded");

    let view = view_until(&node, &id, ended).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["payload"], json!({"text": "alpha beta gamma"}));
    assert_eq!(view["timeout_seconds"], 60);
    let deadline = view["deadline"].as_str().expect("a deadline");
    assert!(
        deadline.ends_with('Z') && !deadline.starts_with("0001"),
        "{deadline}"
    );
    assert!(view.get("parent_id").is_none(), "{view}");
    assert_eq!(view["route"]["actors"], json!(["split", "echo"]));
    // The submission's own result, as Asya's gateway gives it: the first child's.
    assert_eq!(view["result"], json!({"word": "alpha", "index": 0}));

    for (index, word) in [(1, "beta"), (2, "gamma")] {
        let (status, child) = node.get(&format!("/envelopes/{id}-{index}")).await;
        assert_eq!(status, 200, "{child}");
        assert_eq!(child["id"], format!("{id}-{index}"));
        assert_eq!(child["parent_id"], id.as_str());
        assert_eq!(child["status"], "succeeded", "{child}");
        assert_eq!(child["payload"], Value::Null);
        assert_eq!(child["result"], json!({"word": word, "index": index}));
    }
    let (status, _) = node.get_text(&format!("/envelopes/{id}-9")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_tool_call_fails_at_its_timeout_and_a_late_result_does_not_revive_it() {
    let (_dir, tools) = tools_file();
    let node = NodeProcess::start(&["--tools", &tools]);
    let (status, answer) = node.upload("slow", guest("wait")).await;
    assert!(status == 200 || status == 201, "{answer}");
    let answer = call(&node, "slow", json!({})).await;
    let id = answer["envelope_id"].as_str().expect("an id").to_owned();

    let view = view_until(&node, &id, ended).await;
    assert_eq!(view["status"], "failed", "{view}");
    assert_eq!(view["error"], "envelope timed out");
    assert_eq!(view["timeout_seconds"], 1);
    let (status, _) = node.get_text(&format!("/envelopes/{id}/active")).await;
    assert_eq!(status, 410);

    // The actor answers after the deadline: recorded, and the call stays failed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let outcome = loop {
        let (_, outcome) = node.get(&format!("/v1/envelopes/{id}")).await;
        if outcome["results"]
            .as_array()
            .is_some_and(|results| !results.is_empty())
        {
            break outcome;
        }
        assert!(Instant::now() < deadline, "no late result: {outcome}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(outcome["status"], "failed", "{outcome}");
    assert_eq!(outcome["results"][0]["ms"], 3000);
    let (_, view) = node.get(&format!("/envelopes/{id}")).await;
    assert_eq!(view["status"], "failed", "{view}");
    let (_, metrics) = node.get_text("/metrics").await;
    assert!(
        metrics.contains("wasya_envelopes_timed_out_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn asyas_reporting_paths_move_an_envelope_through_every_view() {
    let node = NodeProcess::start(&[]);
    let route = json!(["prep", "summarize"]);
    let (status, created) = node
        .post_json(
            "/envelopes",
            &json!({"id": "ext-1", "actors": route, "current": 0}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created, json!({"status": "created", "id": "ext-1"}));
    let view = view_until(&node, "ext-1", |view| view["status"] == "pending").await;
    assert_eq!(view["total_actors"], 2);

    let step = |status: &str, index: usize| json!({"actors": route, "current_actor_idx": index, "status": status, "message": "m"});
    for (status, index) in [("received", 0), ("processing", 0), ("completed", 1)] {
        let (code, answer) = node
            .post_json("/envelopes/ext-1/progress", &step(status, index))
            .await;
        assert_eq!(code, 200, "{answer}");
        assert_eq!(answer["status"], "ok");
    }
    let view = view_until(&node, "ext-1", |view| view["status"] == "running").await;
    assert_eq!(view["progress_percent"], 50.0, "{view}");
    assert_eq!(view["current_actor_name"], "prep");

    let (code, _) = node
        .post_json(
            "/envelopes/ext-1/final",
            &json!({"id": "ext-1", "status": "succeeded", "progress": 1.0, "result": {"summary": "s"}}),
        )
        .await;
    assert_eq!(code, 200);
    let view = view_until(&node, "ext-1", ended).await;
    assert_eq!(view["status"], "succeeded");
    assert_eq!(view["result"], json!({"summary": "s"}));
    assert_eq!(view["message"], "Envelope completed successfully");
    assert_eq!(
        node.outcome("ext-1").await["results"],
        json!([{"summary": "s"}])
    );
    // The reported steps are the envelope's progress in wasya's stream too.
    let response = reqwest::get(format!("{}/v1/envelopes/ext-1/events", node.base))
        .await
        .expect("the node answers");
    let events = sse::read_all(response, Duration::from_secs(10))
        .await
        .events;
    let stages = sse::actor_stages(&events);
    assert_eq!(
        stages,
        vec![
            ("prep".to_owned(), "received".to_owned()),
            ("prep".to_owned(), "processing".to_owned()),
            ("prep".to_owned(), "completed".to_owned()),
        ]
    );
    assert!(
        events.iter().any(|event| event.event == "outcome"),
        "{events:?}"
    );

    // A fan-out child, registered by the sidecar that split it.
    let (status, _) = node
        .post_json(
            "/envelopes",
            &json!({"id": "ext-1-1", "parent_id": "ext-1", "actors": route, "current": 1}),
        )
        .await;
    assert_eq!(status, 201);
    let child = view_until(&node, "ext-1-1", |_| true).await;
    assert_eq!(child["parent_id"], "ext-1");
    assert_eq!(child["status"], "pending");

    // error-end's report.
    let (code, _) = node
        .post_json(
            "/envelopes/ext-2/final",
            &json!({"status": "failed", "error": "boom", "error_details": {"type": "ValueError"},
                    "actors": route, "current_actor_idx": 1, "current_actor_name": "summarize"}),
        )
        .await;
    assert_eq!(code, 200);
    let failed = view_until(&node, "ext-2", ended).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"], "boom");
    assert_eq!(
        failed["message"],
        "Envelope failed at actor 'summarize': boom"
    );

    // What Asya's gateway refuses, refused; a web page of another site, refused.
    let (status, _) = node
        .post_json("/envelopes/ext-1/progress", &step("finished", 0))
        .await;
    assert_eq!(status, 400);
    let (status, _) = node
        .post_json("/envelopes/ext-1/final", &json!({"status": "done"}))
        .await;
    assert_eq!(status, 400);
    let (status, _) = node.post_json("/envelopes", &json!({"actors": []})).await;
    assert_eq!(status, 400);
    let long = "x".repeat(300);
    let (status, _) = node
        .post_json(
            &format!("/envelopes/{long}/final"),
            &json!({"status": "succeeded"}),
        )
        .await;
    assert_eq!(status, 400);
    let foreign = reqwest::Client::new()
        .post(format!("{}/envelopes/ext-3/final", node.base))
        .header("origin", "https://evil.example")
        .json(&json!({"status": "succeeded"}))
        .send()
        .await
        .expect("the node answers");
    assert_eq!(foreign.status(), 403);
    let (status, _) = node.get_text("/envelopes/ext-3").await;
    assert_eq!(status, 404, "a refused report left an envelope behind");
}

#[tokio::test]
async fn a_runtime_behind_a_wasya_sidecar_reports_to_a_wasya_gateway() {
    let broker = Arc::new(Broker::new());
    let (_dir, tools) = tools_file();
    // The gateway: a node on the broker serving the end actors and the API only.
    let gateway = NodeProcess::start_on_broker(&broker, &["--serve", "none", "--tools", &tools]);
    let runtime = Runtime::start("echo", "payload", &[]);
    let socket_dir = runtime.socket_dir().display().to_string();
    let url = broker.url();
    let _sidecar = NodeProcess::sidecar(&[
        ("ASYA_ACTOR_NAME", "g-relay"),
        ("ASYA_SOCKET_DIR", socket_dir.as_str()),
        ("ASYA_RABBITMQ_URL", url.as_str()),
        ("ASYA_METRICS_ADDR", "127.0.0.1:0"),
        ("ASYA_GATEWAY_URL", gateway.base.as_str()),
    ]);
    // `relay` routes to `g-relay`, served only by the sidecar's runtime (an echo).
    let answer = call(&gateway, "relay", json!({"text": "hi"})).await;
    let id = answer["envelope_id"].as_str().expect("an id").to_owned();
    let outcome = gateway.outcome(&id).await;
    assert_eq!(outcome["status"], "succeeded", "{outcome}");
    assert_eq!(outcome["results"], json!([{"text": "hi"}]));
    // Every step the gateway knows of the hop came from the sidecar's reports.
    let view = view_until(&gateway, &id, ended).await;
    assert_eq!(view["payload"], json!({"text": "hi"}));
    let response = reqwest::get(format!("{}/v1/envelopes/{id}/events", gateway.base))
        .await
        .expect("the node answers");
    let events = sse::read_all(response, Duration::from_secs(10))
        .await
        .events;
    let stages: Vec<String> = sse::actor_stages(&events)
        .into_iter()
        .filter(|(actor, _)| actor == "g-relay")
        .map(|(_, stage)| stage)
        .collect();
    assert_eq!(
        stages,
        vec!["received", "processing", "completed"],
        "{events:?}"
    );
}

#[tokio::test]
async fn ended_envelopes_are_copied_to_object_storage_in_asyas_layout() {
    let Some(s3) = S3Server::start() else {
        return;
    };
    let (_dir, tools) = tools_file();
    let mut flags = s3.flags("asya-results");
    flags.extend(["--s3-errors-bucket".to_owned(), "asya-errors".to_owned()]);
    flags.extend(["--tools".to_owned(), tools]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let node = NodeProcess::start(&flags);

    let id = call(&node, "shout", json!({"text": "hi"})).await["envelope_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let failed = node
        .submit(&["fail"], json!({"reason": "on purpose"}))
        .await;
    let fanned = call(&node, "words", json!({"text": "one two"})).await["envelope_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    for id in [&id, &failed, &fanned] {
        node.outcome(id).await;
    }
    let view = view_until(&node, &id, ended).await;

    let results = s3.wait_for("asya-results", 3).await;
    assert_eq!(results.len(), 3, "{results:?}");
    // Asya's suite finds an envelope's object by its id in the key.
    let (key, object) = results
        .iter()
        .find(|(key, _)| key.ends_with(&format!("/upper/{id}.json")))
        .unwrap_or_else(|| panic!("no object for {id}: {results:?}"));
    assert!(key.starts_with("happy-asya/"), "{key}");
    let time = key["happy-asya/".len()..]
        .split('/')
        .next()
        .unwrap_or_default();
    assert!(
        time.ends_with('Z') && time.len() == "2025-11-11T10:30:45.123456Z".len(),
        "{key}"
    );
    assert_eq!(object["id"], id.as_str());
    assert_eq!(object["route"]["actors"], json!(["upper"]));
    assert!(object["route"]["current"].is_number());
    assert_eq!(object["payload"], view["result"]);
    // Each fan-out child is an object of its own, under its own id.
    let children: Vec<&Value> = results
        .iter()
        .filter(|(key, _)| key.contains(&fanned))
        .map(|(_, object)| &object["payload"])
        .collect();
    assert_eq!(children.len(), 2, "{results:?}");
    assert!(
        children
            .iter()
            .all(|payload| payload["index"].is_number() && payload["word"].is_string())
    );

    let errors = s3.wait_for("asya-errors", 1).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (key, object) = &errors[0];
    assert!(
        key.starts_with("error-asya/") && key.ends_with(&format!("/fail/{failed}.json")),
        "{key}"
    );
    assert_eq!(object["id"], failed.as_str());
    assert!(object["payload"]["error"].is_string(), "{object}");
}

#[tokio::test]
async fn a_store_that_is_down_delays_no_envelope_and_its_copies_are_counted() {
    let Some(mut s3) = S3Server::start() else {
        return;
    };
    s3.stop();
    let flags = s3.flags("asya-results");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let node = NodeProcess::start(&flags);
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            node.submit(&["upper"], json!({"text": format!("m{n}")}))
                .await,
        );
    }
    for id in &ids {
        assert_eq!(node.outcome(id).await["status"], "succeeded");
    }
    // Each copy is tried a few times, then counted as failed.
    let failed = r#"wasya_results_archived_total{end="happy-end",result="failed"} 3"#;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, metrics) = node.get_text("/metrics").await;
        if metrics.contains(failed) {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Back up: the next ones are written.
    s3.resume();
    let id = node.submit(&["upper"], json!({"text": "back"})).await;
    node.outcome(&id).await;
    let objects = s3.wait_for("asya-results", 1).await;
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert!(objects[0].0.ends_with(&format!("/{id}.json")));
}

#[tokio::test]
async fn with_a_token_the_reporting_paths_need_it_unless_opened_to_sidecars() {
    let report = json!({"status": "succeeded", "result": 1});
    let closed = NodeProcess::start_with(&[], &[("WASYA_TOKEN", "s3cret")]);
    let (status, _) = closed.post_json("/envelopes/r/final", &report).await;
    assert_eq!(status, 401);
    let opened = NodeProcess::start_with(&["--open-reports"], &[("WASYA_TOKEN", "s3cret")]);
    let (status, _) = opened.post_json("/envelopes/r/final", &report).await;
    assert_eq!(status, 200);
    assert_eq!(opened.outcome("r").await["results"], json!([1]));
    // Opened to sidecars, not to web pages.
    let foreign = reqwest::Client::new()
        .post(format!("{}/envelopes/r2/final", opened.base))
        .header("origin", "https://evil.example")
        .json(&report)
        .send()
        .await
        .expect("the node answers");
    assert_eq!(foreign.status(), 403);
}
