//! Hostile inputs and faults: whatever the node accepted reaches an end, and nothing a
//! client or a runtime does keeps the node from answering its probes.

use crate::support::{Broker, Kind, NodeProcess, Runtime, guest, single_error};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

on_both_transports!(
    a_deep_payload_is_refused_at_submit_and_ends_when_it_comes_from_a_queue,
    an_envelope_over_the_size_limit_is_refused_and_an_output_over_it_fails,
    a_socket_actor_holds_its_messages_until_a_late_runtime_starts,
    a_deleted_actor_takes_no_envelopes,
    an_id_of_the_wrong_type_is_an_invalid_field,
);

/// Checks an error-end payload's `details`: its type, and words of its message.
fn assert_details(error: &Value, kind: &str, words: &str) {
    assert_eq!(error["details"]["type"], kind, "{error}");
    assert!(
        error["details"]["message"]
            .as_str()
            .is_some_and(|message| message.contains(words)),
        "{error}"
    );
}

/// A JSON value nested `depth` arrays deep: `[[…[1]…]]`.
fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| json!([inner]))
}

/// How deep `value` nests.
fn depth_of(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth_of).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth_of).max().unwrap_or(0),
        _ => 0,
    }
}

async fn a_deep_payload_is_refused_at_submit_and_ends_when_it_comes_from_a_queue(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    // Too deep for the wrappers the node adds: refused where it is submitted.
    let (status, answer) = node
        .post_json(
            "/v1/envelopes",
            &json!({"route": ["fail"], "payload": nested(126)}),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "too_deep", "{answer}");

    // Deep but within the limit: accepted, and its failure carries it whole.
    let id = node.submit(&["fail"], nested(100)).await;
    let view = node.outcome(&id).await;
    let error = single_error(&view);
    assert_eq!(error["details"]["type"], "ValueError", "{error}");
    assert_eq!(depth_of(&error["original_payload"]), 100);

    // Too deep, straight onto a queue as a producer would: it ends at error-end,
    // recorded under its own id, naming the actor that refused it, with the payload
    // carried as text so that the wrapper is no deeper than what came in.
    let raw = json!({"id": "deep-1", "route": {"actors": ["fail"]}, "payload": nested(126)});
    assert_eq!(node.publish_raw("fail", raw.to_string()).await, 202);
    let view = node.published_outcome("deep-1").await;
    let error = single_error(&view);
    assert_eq!(error["error"], "msg_parsing_error", "{error}");
    assert_eq!(error["details"]["type"], "too_deep", "{error}");
    assert_eq!(error["details"]["actor"], "fail", "{error}");
    let carried: Value = serde_json::from_str(
        error["original_payload"]
            .as_str()
            .expect("the payload as text"),
    )
    .expect("the text is the payload");
    assert_eq!(carried, nested(126));
}

async fn an_envelope_over_the_size_limit_is_refused_and_an_output_over_it_fails(kind: Kind) {
    let node = NodeProcess::start_on(kind, &["--max-envelope", "1MiB"]);
    let big = "x".repeat(1 << 20);
    let (status, answer) = node
        .post_json(
            "/v1/envelopes",
            &json!({"route": ["echo"], "payload": {"text": big}}),
        )
        .await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"], "envelope_too_large", "{answer}");
    let raw = json!({"id": "big-1", "route": {"actors": ["echo"]}, "payload": big});
    assert_eq!(node.publish_raw("echo", raw.to_string()).await, 413);

    // `ΐ` (2 bytes) uppercases to three characters (6 bytes): the answer of `upper`
    // to 600 KB of them is three times over the limit. The input fits, so it goes to
    // error-end whole, and the node says why.
    let text = "ΐ".repeat(300_000);
    let id = node.submit(&["upper"], json!({"text": text})).await;
    let view = node.outcome(&id).await;
    let error = single_error(&view);
    assert_eq!(error["details"]["type"], "output_too_large", "{error}");
    assert_eq!(error["original_payload"]["text"], json!(text));
}

async fn a_socket_actor_holds_its_messages_until_a_late_runtime_starts(kind: Kind) {
    let mut runtime = Runtime::prepare("echo", "payload", &[]);
    let socket = format!("s-late={}", runtime.socket().display());
    let node = NodeProcess::start_on(
        kind,
        &[
            "--serve",
            "none",
            "--socket-actor",
            &socket,
            "--actor-timeout",
            "s-late=2s",
        ],
    );
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(node.submit(&["s-late"], json!({"n": n})).await);
    }
    let (status, reason) = node.get_text("/readyz").await;
    assert_eq!(status, 503, "{reason}");
    assert!(reason.contains("s-late"), "{reason}");
    // Longer than the call timeout: waiting for the runtime is not the call.
    tokio::time::sleep(Duration::from_secs(5)).await;
    runtime.restart();
    for (n, id) in ids.iter().enumerate() {
        let view = node.outcome(id).await;
        assert_eq!(view["status"], "succeeded", "{view}");
        assert_eq!(view["results"], json!([{"n": n}]));
    }
    assert_eq!(node.get_text("/readyz").await.0, 200);
}

async fn a_deleted_actor_takes_no_envelopes(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    assert_eq!(node.delete("/v1/actors/upper").await, 204);
    let (status, answer) = node
        .post_json(
            "/v1/envelopes",
            &json!({"route": ["upper"], "payload": {"text": "x"}}),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["error"], "unknown_actor", "{answer}");
    assert_eq!(node.publish_raw("upper", "{}").await, 404);
    // A route that reaches it further on ends at error-end, not in a queue.
    let id = node.submit(&["echo", "upper"], json!({"text": "x"})).await;
    let view = node.outcome(&id).await;
    assert_eq!(single_error(&view)["details"]["type"], "unknown_actor");
    // Deployed again, it takes envelopes again.
    assert_eq!(node.upload("upper", guest("upper")).await.0, 201);
    let id = node.submit(&["upper"], json!({"text": "back"})).await;
    assert_eq!(
        node.outcome(&id).await["results"],
        json!([{"text": "BACK"}])
    );
}

async fn an_id_of_the_wrong_type_is_an_invalid_field(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    for (n, id) in [json!(5), json!({"a": 1}), json!("")]
        .into_iter()
        .enumerate()
    {
        let raw = json!({"id": id, "route": {"actors": ["echo"]}, "payload": {"case": n}});
        assert_eq!(node.publish_raw("echo", raw.to_string()).await, 202);
        let failure = node
            .failure_matching(|view| view["errors"][0]["original_payload"]["case"] == n)
            .await;
        assert_details(&failure["errors"][0], "invalid_field", "`id`");
    }
}

/// The bytes of `grep` (about 1 MB) with a custom section of random bytes: the same
/// component to run, a digest no cache has seen, so it compiles.
fn uncached_grep() -> Vec<u8> {
    let mut bytes = guest("grep");
    let name = b"wasya-test";
    let noise = uuid::Uuid::new_v4();
    let size = 1 + name.len() + noise.as_bytes().len();
    bytes.push(0); // a custom section
    bytes.push(u8::try_from(size).expect("a one-byte length"));
    bytes.push(u8::try_from(name.len()).expect("a one-byte length"));
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(noise.as_bytes());
    bytes
}

#[tokio::test]
async fn probes_and_listings_answer_while_a_component_compiles() {
    let node = Arc::new(NodeProcess::start(&[]));
    let upload = tokio::spawn({
        let node = node.clone();
        async move { node.upload("fresh-grep", uncached_grep()).await }
    });
    assert!(
        node.wait_for_log(|line| line.contains("compiling") && line.contains("fresh-grep"))
            .await,
        "the compile did not start"
    );
    for path in ["/readyz", "/v1/actors", "/v1/actors/echo"] {
        let (status, body) = node.get_text(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            !upload.is_finished(),
            "{path} answered only after the compile"
        );
    }
    let (status, answer) = upload.await.unwrap();
    assert_eq!(status, 201, "{answer}");
    let id = node
        .submit(&["fresh-grep"], json!({"text": "a\nb\nab", "pattern": "a"}))
        .await;
    assert_eq!(node.outcome(&id).await["status"], "succeeded");
}

#[tokio::test]
async fn outcomes_are_bounded_by_bytes_and_an_evicted_one_says_so() {
    let node = NodeProcess::start(&["--outcome-memory", "4MiB"]);
    let text = "o".repeat(900 << 10);
    let mut ids = Vec::new();
    for n in 0..12 {
        let id = node.submit(&["echo"], json!({"n": n, "text": text})).await;
        assert_eq!(node.outcome(&id).await["status"], "succeeded");
        ids.push(id);
    }
    let (status, answer) = node.get(&format!("/v1/envelopes/{}", ids[0])).await;
    assert_eq!(status, 410, "{answer}");
    assert_eq!(answer["error"], "evicted", "{answer}");
    let (status, answer) = node.get(&format!("/v1/envelopes/{}?wait=1s", ids[0])).await;
    assert_eq!(status, 410, "{answer}");
    let (status, answer) = node.get(&format!("/v1/envelopes/{}", ids[11])).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["results"][0]["n"], 11);
    assert_eq!(node.get("/v1/envelopes/never-submitted").await.0, 404);
    let (_, metrics) = node.get_text("/metrics").await;
    let kept = metrics
        .lines()
        .find_map(|line| line.strip_prefix("wasya_outcomes_bytes "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .expect("the outcome bytes gauge");
    assert!(kept <= f64::from(4u32 << 20), "{kept} bytes kept");
}

#[tokio::test]
async fn sigterm_on_an_ephemeral_queue_drains_accepted_work_with_the_api_up() {
    let grace = Duration::from_secs(60);
    let mut node = NodeProcess::start(&[
        "--ephemeral",
        "--actor-concurrency",
        "spin=2",
        "--grace-period",
        "60s",
    ]);
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(node.submit(&["spin"], json!({"for_ms": 100})).await);
    }
    let stopping = Instant::now();
    node.signal_term();
    let (mut not_ready, mut outcome_read, mut refused) = (false, false, false);
    while node.is_running() {
        let client = reqwest::Client::new();
        let Ok(ready) = client.get(format!("{}/readyz", node.base)).send().await else {
            break;
        };
        if ready.status() == 503 && ready.text().await.unwrap_or_default().contains("stopping") {
            not_ready = true;
        }
        if let Ok(read) = client
            .get(format!("{}/v1/envelopes/{}", node.base, ids[19]))
            .send()
            .await
        {
            outcome_read |= read.status() == 200;
        }
        if let Ok(submit) = client
            .post(format!("{}/v1/envelopes", node.base))
            .json(&json!({"route": ["echo"], "payload": 1}))
            .send()
            .await
        {
            refused |= submit.status() == 503;
            assert_ne!(submit.status(), 202, "a stopping node took a new envelope");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = node.wait();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        stopping.elapsed() < grace,
        "waited out the grace period with the work done"
    );
    assert!(not_ready, "/readyz never said it was stopping");
    assert!(outcome_read, "outcomes were not readable during the drain");
    assert!(refused, "new envelopes were not refused during the drain");
    let stopped = node
        .log_event("stopped routing")
        .expect("the stop is logged");
    assert_eq!(stopped["submissions_lost"], 0, "{stopped}");
    assert_eq!(stopped["messages_lost"], 0, "{stopped}");
}

#[tokio::test]
async fn sigterm_at_the_grace_ceiling_counts_what_is_lost() {
    let mut node = NodeProcess::start(&[
        "--ephemeral",
        "--actor-concurrency",
        "spin=2",
        "--actor-timeout",
        "spin=10m",
        "--grace-period",
        "1s",
    ]);
    for _ in 0..10 {
        node.submit(&["spin"], json!({})).await;
    }
    assert!(
        node.wait_for_log(|line| line.contains("spin handling message"))
            .await
    );
    let status = node.terminate();
    assert!(status.success(), "exit status {status:?}");
    let stopped = node
        .log_event("stopped routing")
        .expect("the stop is logged");
    let fields = &stopped;
    assert_eq!(fields["submissions_lost"], 10, "{stopped}");
    assert_eq!(fields["calls_cut_off"], 2, "{stopped}");
    assert_eq!(fields["messages_lost"], 10, "{stopped}");
}

#[tokio::test]
async fn a_producer_cannot_set_the_redelivery_count() {
    use lapin::types::{AMQPValue, FieldTable};
    let broker = Arc::new(Broker::new());
    let node = NodeProcess::start_on_broker(&broker, &[]);
    let mut headers = FieldTable::default();
    headers.insert("x-wasya-redeliveries".into(), AMQPValue::LongInt(99));
    headers.insert("x-delivery-count".into(), AMQPValue::LongInt(99));
    let envelope = json!({"id": "forged", "route": {"actors": ["echo"]}, "payload": 7});
    broker
        .publish("echo", envelope.to_string().as_bytes(), headers)
        .await;
    let view = node.published_outcome("forged").await;
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(broker.queue_length("asya-echo-dlq"), Some(0));
}

#[tokio::test]
async fn an_oversized_message_from_a_producer_is_dead_lettered_and_ends() {
    let broker = Arc::new(Broker::new());
    let node = NodeProcess::start_on_broker(&broker, &["--max-envelope", "1MiB"]);
    let envelope =
        json!({"id": "huge-1", "route": {"actors": ["echo"]}, "payload": "h".repeat(2 << 20)});
    broker
        .publish("echo", envelope.to_string().as_bytes(), Default::default())
        .await;
    let view = node.published_outcome("huge-1").await;
    assert_details(single_error(&view), "too_large", "asya-echo-dlq");
    assert_eq!(broker.queue_length("asya-echo-dlq"), Some(1), "kept whole");
}

#[tokio::test]
async fn a_half_sent_request_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let node = NodeProcess::start(&["--header-read-timeout", "1s"]);
    let address = node.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection stayed open");
    assert_eq!(node.get_text("/healthz").await.0, 200);
}

#[tokio::test]
async fn a_wait_over_the_cap_is_refused_and_says_the_cap() {
    let node = NodeProcess::start(&[]);
    let id = node.submit(&["echo"], json!(1)).await;
    let (status, answer) = node.get(&format!("/v1/envelopes/{id}?wait=1years")).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "invalid_wait", "{answer}");
    assert!(answer["message"].to_string().contains("5m"), "{answer}");
    let (status, answer) = node.get(&format!("/v1/envelopes/{id}?wait=5m")).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn a_socket_actor_must_point_at_a_socket_location() {
    let node = NodeProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "not a socket").unwrap();
    for path in [
        "/etc/passwd".to_owned(),
        "/no/such/directory/asya-runtime.sock".to_owned(),
        file.display().to_string(),
        dir.path().display().to_string(),
    ] {
        let (status, answer) = node
            .put_json("bad-socket", json!({"kind": "socket", "socket": path}))
            .await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert_eq!(answer["error"], "invalid_options", "{path}: {answer}");
    }
    let later = dir.path().join("asya-runtime.sock").display().to_string();
    let (status, answer) = node
        .put_json("good-socket", json!({"kind": "socket", "socket": later}))
        .await;
    assert_eq!(status, 200, "{answer}");
    // One runtime not started yet among many actors: the node serves the others and
    // says which cannot.
    let (status, reason) = node.get_text("/readyz").await;
    assert_eq!(status, 200, "{reason}");
    assert!(
        reason.contains("cannot serve") && reason.contains("good-socket"),
        "a runtime not started yet: {reason}"
    );
}

#[tokio::test]
async fn hogs_at_once_all_hit_their_memory_limit() {
    let node = NodeProcess::start(&[
        "--actor-concurrency",
        "hog=8",
        "--actor-memory-limit",
        "hog=64MiB",
        "--actor-timeout",
        "hog=10s",
    ]);
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(node.submit(&["hog"], json!({})).await);
    }
    for id in &ids {
        let view = node.outcome(id).await;
        assert_eq!(
            single_error(&view)["details"]["type"],
            "resource_limit",
            "{view}"
        );
    }
}

#[test]
fn an_empty_token_reads_as_unset() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wasya"))
        .args(["up", "--listen", "0.0.0.0:0", "--serve", "none"])
        .env("WASYA_TOKEN", "")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("without a token"), "{stderr}");
    let node = NodeProcess::start_with(&["--serve", "echo"], &[("WASYA_TOKEN", "")]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let id = runtime.block_on(node.submit(&["echo"], json!(1)));
    assert!(!id.is_empty());
}

/// A component that imports an interface the node does not provide.
fn component_importing(interface: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component (import "{interface}" (instance (export "f" (func)))))"#
    ))
    .expect("the component text is valid")
}

#[tokio::test]
async fn an_upload_with_imports_the_node_lacks_is_refused_before_compiling_and_leaves_nothing() {
    let node = NodeProcess::start_alone(&["--serve", "echo"]);
    let compiled = node.data_dir().join("compiled");
    let before = std::fs::read_dir(&compiled).map_or(0, |dir| dir.count());
    let (status, answer) = node
        .upload(
            "no-kv",
            component_importing("wasi:keyvalue/store@0.2.0-draft"),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "invalid_component", "{answer}");
    assert!(
        answer["message"]
            .to_string()
            .contains("wasi:keyvalue/store@0.2.0-draft"),
        "{answer}"
    );
    assert!(
        !node
            .log()
            .iter()
            .any(|line| line.contains("compiling") && line.contains("no-kv")),
        "the refused upload was compiled"
    );
    let after = std::fs::read_dir(&compiled).map_or(0, |dir| dir.count());
    assert_eq!(before, after, "a compiled file was left behind");
    let components = node.data_dir().join("deployments/components");
    assert_eq!(
        std::fs::read_dir(&components).map_or(0, |dir| dir.count()),
        0,
        "the refused component was kept"
    );
    assert_eq!(node.get("/v1/actors/no-kv").await.0, 404);
}
