//! `wasya sidecar` in the place of Asya's sidecar: configured by Asya's environment
//! alone, beside a real runtime process and a real RabbitMQ. Each `ASYA_*` variable of
//! the README's table is shown doing what the table says, or refused as it says.

use crate::support::web::WebServer;
use crate::support::{Broker, NodeProcess, Runtime, sidecar_log_until};
use lapin::types::FieldTable;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The events of a JSON log whose `message` is `message`.
fn events<'a>(log: &'a [String], message: &'a str) -> impl Iterator<Item = Value> + 'a {
    log.iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(move |event| event["message"] == message)
}

#[tokio::test]
async fn the_sidecar_runs_from_asya_environment_alone() {
    let broker = Arc::new(Broker::new());
    let runtime = Runtime::start("upper", "payload", &[]);
    let url = broker.url();
    let socket_dir = runtime.socket_dir().display().to_string();
    let sidecar = NodeProcess::sidecar(&[
        ("ASYA_ACTOR_NAME", "s-upper"),
        ("ASYA_SOCKET_DIR", &socket_dir),
        ("ASYA_RUNTIME_TIMEOUT", "1m30s"),
        ("ASYA_RABBITMQ_URL", &url),
        ("ASYA_RABBITMQ_EXCHANGE", "asya"),
        ("ASYA_RABBITMQ_PREFETCH", "2"),
        ("ASYA_METRICS_ADDR", "127.0.0.1:0"),
    ]);
    let (_, actors) = sidecar.get("/v1/actors").await;
    assert_eq!(actors[0]["name"], "s-upper");
    assert_eq!(actors[0]["kind"], "socket");
    assert_eq!(actors[0]["timeout_ms"], 90_000);
    assert_eq!(actors[0]["concurrency"], 2);
    let collector = NodeProcess::start_on_broker(&broker, &["--serve", "none"]);
    let id = collector
        .submit(&["s-upper", "s-upper"], json!({"text": "asya"}))
        .await;
    let view = collector.outcome(&id).await;
    assert_eq!(view["results"], json!([{"text": "ASYA"}]), "{view}");
    // One info line per message, as Asya's sidecar logs each message it handles.
    assert!(
        sidecar
            .wait_for_log(|line| line.contains("message handled") && line.contains("happy-end"))
            .await
    );
    let handled: Vec<Value> = events(&sidecar.log(), "message handled").collect();
    assert_eq!(handled.len(), 2, "one line per message: {handled:?}");
    assert_eq!(handled[0]["level"], "INFO");
    assert_eq!(handled[0]["outcome"], "s-upper");
    assert_eq!(handled[1]["outcome"], "happy-end");
}

#[test]
fn asya_transport_sqs_stops_the_start_with_one_line() {
    let broker = Broker::new();
    let url = broker.url();
    let (log, exit) = sidecar_log_until(
        &[
            ("ASYA_ACTOR_NAME", "s-upper"),
            ("ASYA_TRANSPORT", "sqs"),
            ("ASYA_RABBITMQ_URL", &url),
        ],
        Duration::from_secs(20),
        |_| false,
    );
    assert_eq!(exit, Some(1), "{log:?}");
    assert_eq!(
        log,
        ["error: ASYA_TRANSPORT=sqs: sqs is not supported, use rabbitmq"]
    );
}

#[tokio::test]
async fn without_metrics_nothing_listens_and_messages_still_flow() {
    let broker = Arc::new(Broker::new());
    let runtime = Runtime::start("upper", "payload", &[]);
    let url = broker.url();
    let socket_dir = runtime.socket_dir().display().to_string();
    let sidecar = NodeProcess::sidecar_without_listener(&[
        ("ASYA_ACTOR_NAME", "quiet"),
        ("ASYA_SOCKET_DIR", &socket_dir),
        ("ASYA_RABBITMQ_URL", &url),
        ("ASYA_METRICS_ENABLED", "false"),
    ]);
    let collector = NodeProcess::start_on_broker(&broker, &["--serve", "none"]);
    let id = collector.submit(&["quiet"], json!({"text": "off"})).await;
    assert_eq!(
        collector.outcome(&id).await["results"],
        json!([{"text": "OFF"}])
    );
    let log = sidecar.log();
    assert_eq!(
        events(&log, "HTTP API listening").count(),
        0,
        "nothing listens: {log:?}"
    );
    assert!(log.iter().any(|line| line.contains("metrics disabled")));
}

#[tokio::test]
async fn the_metrics_namespace_renames_asyas_families() {
    let broker = Arc::new(Broker::new());
    let runtime = Runtime::start("echo", "payload", &[]);
    let url = broker.url();
    let socket_dir = runtime.socket_dir().display().to_string();
    let sidecar = NodeProcess::sidecar(&[
        ("ASYA_ACTOR_NAME", "named"),
        ("ASYA_SOCKET_DIR", &socket_dir),
        ("ASYA_RABBITMQ_URL", &url),
        ("ASYA_METRICS_ADDR", "127.0.0.1:0"),
        ("ASYA_METRICS_NAMESPACE", "mesh_actor"),
    ]);
    let collector = NodeProcess::start_on_broker(&broker, &["--serve", "none"]);
    let id = collector.submit(&["named"], json!(1)).await;
    assert_eq!(collector.outcome(&id).await["status"], "succeeded");
    let (status, metrics) = sidecar.get_text("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(
            "mesh_actor_messages_received_total{queue=\"asya-named\",transport=\"amqp\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        !metrics
            .lines()
            .any(|line| line.starts_with("asya_actor_") || line.contains(" asya_actor_")),
        "{metrics}"
    );
    assert!(
        metrics.contains("wasya_"),
        "wasya's own families keep their names"
    );
}

#[test]
fn nothing_is_consumed_before_the_runtime_is_ready_and_the_wait_ends() {
    let broker = Broker::new();
    let url = broker.url();
    let runtime = Runtime::prepare("echo", "payload", &[]);
    let socket_dir = runtime.socket_dir().display().to_string();
    let started = std::time::Instant::now();
    let (log, exit) = sidecar_log_until(
        &[
            ("ASYA_ACTOR_NAME", "patient"),
            ("ASYA_SOCKET_DIR", &socket_dir),
            ("ASYA_RABBITMQ_URL", &url),
            ("ASYA_METRICS_ADDR", "127.0.0.1:0"),
            ("ASYA_RUNTIME_READY_TIMEOUT", "2s"),
        ],
        Duration::from_secs(30),
        |_| false,
    );
    assert_eq!(exit, Some(1), "{log:?}");
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(
        log.last().is_some_and(|line| line
            .starts_with("error: the runtime did not become ready within 2s: no ")
            && line.contains("runtime-ready")),
        "{log:?}"
    );
    assert_eq!(events(&log, "HTTP API listening").count(), 0);
    // It never reached the broker: its queue was not even declared.
    assert_eq!(broker.queue_length("asya-patient"), None);
}

#[tokio::test]
async fn the_sidecar_consumes_once_the_runtime_wrote_its_ready_file() {
    let broker = Arc::new(Broker::new());
    let url = broker.url();
    let mut runtime = Runtime::prepare("upper", "payload", &[]);
    let socket_dir = runtime.socket_dir().display().to_string();
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        runtime.restart();
        runtime
    });
    // Returns once the sidecar listens, which is after the runtime is ready.
    let sidecar = NodeProcess::sidecar(&[
        ("ASYA_ACTOR_NAME", "late"),
        ("ASYA_SOCKET_DIR", &socket_dir),
        ("ASYA_RABBITMQ_URL", &url),
        ("ASYA_METRICS_ADDR", "127.0.0.1:0"),
    ]);
    let _runtime = starter.join().expect("the runtime starts");
    let log = sidecar.log();
    let ready: Vec<Value> = events(&log, "runtime ready").collect();
    assert_eq!(ready.len(), 1, "{log:?}");
    assert!(ready[0]["waited_ms"].as_u64().unwrap() >= 1000, "{ready:?}");
    let collector = NodeProcess::start_on_broker(&broker, &["--serve", "none"]);
    let id = collector.submit(&["late"], json!({"text": "ready"})).await;
    assert_eq!(
        collector.outcome(&id).await["results"],
        json!([{"text": "READY"}])
    );
}

#[tokio::test]
async fn an_end_actor_takes_any_route_routes_nothing_and_reports_the_end() {
    let gateway = WebServer::start(Duration::ZERO).await;
    let gateway_url = gateway.url("");
    let broker = Arc::new(Broker::new());
    let url = broker.url();
    // Asya's crew end handlers run in envelope mode and return nothing to route.
    let runtime = Runtime::start("echo", "envelope", &[]);
    let socket_dir = runtime.socket_dir().display().to_string();
    let sidecar = NodeProcess::sidecar(&[
        ("ASYA_ACTOR_NAME", "happy-end"),
        ("ASYA_IS_END_ACTOR", "true"),
        ("ASYA_SOCKET_DIR", &socket_dir),
        ("ASYA_RABBITMQ_URL", &url),
        ("ASYA_METRICS_ADDR", "127.0.0.1:0"),
        ("ASYA_GATEWAY_URL", &gateway_url),
    ]);
    // A finished route, addressed to no actor: an end takes it all the same.
    let envelope = json!({
        "id": "ended-1",
        "route": {"actors": ["a", "b"], "current": 2},
        "payload": {"answer": 42},
    });
    broker
        .publish(
            "happy-end",
            envelope.to_string().as_bytes(),
            FieldTable::default(),
        )
        .await;
    broker
        .publish("happy-end", b"{not an envelope", FieldTable::default())
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let finals = loop {
        let finals: Vec<(String, Value)> = gateway
            .seen
            .gateway
            .lock()
            .unwrap()
            .iter()
            .filter(|(path, _)| path.ends_with("/final"))
            .cloned()
            .collect();
        if !finals.is_empty() || std::time::Instant::now() > deadline {
            break finals;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(finals.len(), 1, "{finals:?}");
    assert_eq!(finals[0].0, "/envelopes/ended-1/final");
    assert_eq!(finals[0].1["status"], "succeeded");
    assert_eq!(finals[0].1["result"], json!({"answer": 42}));
    // Nothing was routed on: the end's queue is drained, and the bytes that were no
    // envelope wait in its dead-letter queue.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let queues = broker.queue_lengths();
        let length = |name: &str| queues.iter().find(|(q, _)| q == name).map(|(_, n)| *n);
        if length("asya-happy-end") == Some(0) && length("asya-happy-end-dlq") == Some(1) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{queues:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !broker
            .queue_lengths()
            .iter()
            .any(|(queue, count)| *count > 0 && !queue.ends_with("-dlq")),
        "nothing sent onward: {:?}",
        broker.queue_lengths()
    );
    drop(sidecar);
}

#[test]
fn ignored_variables_are_named_once_and_bad_custom_metrics_refused() {
    let broker = Broker::new();
    let url = broker.url();
    let dir = tempfile::tempdir().unwrap();
    let socket_dir = dir.path().display().to_string();
    let base = [
        ("ASYA_ACTOR_NAME", "ignoring"),
        ("ASYA_SOCKET_DIR", socket_dir.as_str()),
        ("ASYA_RABBITMQ_URL", url.as_str()),
        ("ASYA_RUNTIME_READY_TIMEOUT", "1s"),
    ];
    let mut env = base.to_vec();
    env.extend([
        ("ASYA_SQS_ENDPOINT", "http://sqs.local"),
        ("ASYA_QUEUE_RETRY_MAX_ATTEMPTS", "3"),
        (
            "ASYA_CUSTOM_METRICS",
            r#"[{"name": "tokens", "type": "counter", "help": "Tokens", "labels": []}]"#,
        ),
    ]);
    let (log, _) = sidecar_log_until(&env, Duration::from_secs(20), |line| {
        line.contains("waiting for the runtime")
    });
    for name in [
        "ASYA_SQS_ENDPOINT",
        "ASYA_QUEUE_RETRY_MAX_ATTEMPTS",
        "ASYA_CUSTOM_METRICS",
    ] {
        let named: Vec<&String> = log
            .iter()
            .filter(|line| line.contains(&format!("{name} is ignored")))
            .collect();
        assert_eq!(named.len(), 1, "{name} named once: {log:?}");
        assert!(named[0].contains("\"level\":\"WARN\""), "{named:?}");
    }
    let mut env = base.to_vec();
    env.push(("ASYA_CUSTOM_METRICS", "{not json"));
    let (log, exit) = sidecar_log_until(&env, Duration::from_secs(20), |_| false);
    assert_eq!(exit, Some(1), "{log:?}");
    assert!(
        log.last()
            .is_some_and(|line| line.starts_with("error: ASYA_CUSTOM_METRICS is not a JSON array")),
        "{log:?}"
    );
}

/// Asya's `test_invalid_route_current` through the sidecar: an envelope-mode handler
/// returns `route.current = 7` on a two-actor route.
#[tokio::test]
async fn a_current_past_the_end_reaches_happy_end_as_returned() {
    let broker = Arc::new(Broker::new());
    let url = broker.url();
    let runtime = Runtime::start("set_current", "envelope", &[]);
    let socket_dir = runtime.socket_dir().display().to_string();
    let _sidecar = NodeProcess::sidecar(&[
        ("ASYA_ACTOR_NAME", "test-invalid-route"),
        ("ASYA_SOCKET_DIR", &socket_dir),
        ("ASYA_RABBITMQ_URL", &url),
        ("ASYA_METRICS_ADDR", "127.0.0.1:0"),
    ]);
    let collector = NodeProcess::start_on_broker(&broker, &["--serve", "none"]);
    let payload = json!({"current": 7, "test": "invalid_route_current"});
    let id = collector
        .submit(&["test-invalid-route", "should-not-reach"], payload.clone())
        .await;
    let view = collector.outcome(&id).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["results"], json!([payload]));
    let envelope = &view["ended"][0]["envelope"];
    assert_eq!(envelope["route"]["current"], 7);
    assert_eq!(
        envelope["route"]["actors"],
        json!(["test-invalid-route", "should-not-reach"])
    );
}

/// What a node publishes looks like what Asya's sidecar publishes: a `timestamp` on
/// every message, and a fan-out child's lineage in AMQP headers, not in the JSON body.
#[tokio::test]
async fn published_messages_carry_a_timestamp_and_lineage_outside_the_body() {
    let broker = Arc::new(Broker::new());
    // An outside consumer's queue for `spy`, which the node does not serve.
    broker.bind_queue("spy").await;
    let node = NodeProcess::start_on_broker(&broker, &["--serve", "split"]);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let id = node
        .submit(&["split", "spy"], json!({"text": "a b c"}))
        .await;
    let taken = broker.take("asya-spy", 3).await;
    assert_eq!(taken.len(), 3, "three fan-out children");
    let mut seen = Vec::new();
    // The children arrive in any order: each is told by its place in the fan-out.
    for (body, properties) in &taken {
        let stamp = properties.timestamp().expect("a timestamp");
        assert!(
            stamp >= before && stamp <= before + 60,
            "{stamp} vs {before}"
        );
        assert_eq!(
            properties.content_type().as_ref().map(|t| t.as_str()),
            Some("application/json")
        );
        assert_eq!(*properties.delivery_mode(), Some(2), "persistent");
        let envelope: Value = serde_json::from_slice(body).unwrap();
        let headers = envelope.get("headers").cloned().unwrap_or(json!({}));
        assert!(
            headers.get("wasya-root").is_none() && headers.get("wasya-branch").is_none(),
            "no bookkeeping in the body: {envelope}"
        );
        let amqp = properties.headers().clone().expect("AMQP headers");
        let text = |name: &str| match amqp.inner().get(name) {
            Some(lapin::types::AMQPValue::LongString(text)) => text.to_string(),
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(text("wasya-root"), id);
        let branch = text("wasya-branch");
        let index: usize = branch
            .strip_suffix("/3")
            .and_then(|index| index.parse().ok())
            .unwrap_or_else(|| panic!("a child of three: {branch}"));
        let expected_id = if index == 0 {
            id.clone()
        } else {
            format!("{id}-{index}")
        };
        assert_eq!(envelope["id"], expected_id.as_str());
        seen.push(index);
    }
    seen.sort_unstable();
    assert_eq!(seen, [0, 1, 2]);
}
