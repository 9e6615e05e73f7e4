//! The default `wasya up` keeps what its embedded queue accepted: a node killed
//! (SIGKILL) or stopped (SIGTERM) in the middle of a pipeline, and started again on
//! the same data directory, ends every envelope it accepted, and still answers the
//! outcomes it had recorded. A damaged store is refused at start and left as it was;
//! a full disk refuses new envelopes (503), loses none, and the node takes envelopes
//! again once there is room.

use crate::support::{NodeProcess, data_dir, link_compile_cache, sse};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Three hops with a slow middle: `spin` busy-loops `for_ms` per envelope.
const ROUTE: [&str; 3] = ["echo", "spin", "echo"];

/// Submits `count` envelopes on `route` (`payload(n)` for the n-th), 32 at a time;
/// every one must be accepted. Returns the ids in order.
async fn submit_all(
    node: &NodeProcess,
    route: &[&str],
    count: usize,
    payload: impl Fn(usize) -> Value,
) -> Vec<String> {
    futures::stream::iter(0..count)
        .map(|n| node.submit(route, payload(n)))
        .buffered(32)
        .collect()
        .await
}

/// The ids among `ids` that had succeeded, as read now.
async fn succeeded_now(node: &NodeProcess, ids: &[String]) -> Vec<String> {
    let mut done = Vec::new();
    for id in ids {
        let (status, view) = node.get(&format!("/v1/envelopes/{id}")).await;
        if status == 200 && view["status"] == "succeeded" {
            done.push(id.clone());
        }
    }
    done
}

/// How often each hop of submission `id` was taken off a queue, beyond the first:
/// the duplicates a crash caused, as its progress events tell.
async fn duplicate_hops(node: &NodeProcess, id: &str) -> usize {
    let response = reqwest::get(format!("{}/v1/envelopes/{id}/events", node.base))
        .await
        .expect("the node answers");
    let stream = sse::read_all(response, Duration::from_secs(30)).await;
    let mut received: HashMap<(String, String, u64), usize> = HashMap::new();
    for event in stream
        .events
        .iter()
        .filter(|event| event.event == "progress")
    {
        let event = event.json();
        if event["stage"] == "received" {
            let hop = (
                event["envelope_id"].as_str().unwrap_or_default().to_owned(),
                event["actor"].as_str().unwrap_or_default().to_owned(),
                event["index"].as_u64().unwrap_or_default(),
            );
            *received.entry(hop).or_default() += 1;
        }
    }
    received.values().map(|count| count - 1).sum()
}

/// Starts a node on `dir` (the default embedded queue) with `spin` two at a time.
fn start_on(dir: &Path) -> NodeProcess {
    NodeProcess::start(&[
        "--data-dir",
        dir.to_str().expect("a UTF-8 path"),
        "--actor-concurrency",
        "spin=2",
    ])
}

/// What the restarted node read back: messages, and those in flight at the stop
/// (`wasya_store_recovered_messages_total{state}`).
async fn opened(node: &NodeProcess) -> (u64, u64) {
    let recovered = |state: &'static str| async move {
        node.metric("wasya_store_recovered_messages_total", &[("state", state)])
            .await as u64
    };
    let queued = recovered("queued").await;
    let in_flight = recovered("in_flight").await;
    (queued + in_flight, in_flight)
}

/// The payload of the n-th envelope on [`ROUTE`].
fn payload(n: usize) -> Value {
    json!({"n": n, "for_ms": 2})
}

/// The outcome of every submission in `ids`, each waited for, in order.
async fn outcomes(node: &NodeProcess, ids: &[String]) -> Vec<Value> {
    futures::stream::iter(ids)
        .map(|id| node.outcome(id))
        .buffered(16)
        .collect()
        .await
}

/// Every submission on [`ROUTE`] ended once, succeeded, with its own payload.
async fn every_one_succeeded(node: &NodeProcess, ids: &[String]) {
    for (n, view) in outcomes(node, ids).await.iter().enumerate() {
        assert_eq!(view["status"], "succeeded", "envelope {n}: {view}");
        assert_eq!(view["results"], json!([payload(n)]), "envelope {n}");
    }
}

#[tokio::test]
async fn a_killed_node_ends_every_accepted_envelope_after_a_restart() {
    let dir = data_dir();
    let mut node = start_on(dir.path());
    let ids = submit_all(&node, &ROUTE, 2000, payload).await;
    node.outcome(&ids[99]).await;
    let recorded = succeeded_now(&node, &ids[..100]).await;
    node.kill();

    let node = start_on(dir.path());
    let (kept, in_flight) = opened(&node).await;
    assert!(kept > 0, "the kill came after the pipeline had ended");
    for id in &recorded {
        let (status, view) = node.get(&format!("/v1/envelopes/{id}")).await;
        assert_eq!(status, 200, "an outcome recorded before the kill: {view}");
        assert_eq!(view["status"], "succeeded", "{view}");
    }
    every_one_succeeded(&node, &ids).await;
    let duplicates: usize = futures::stream::iter(&ids)
        .map(|id| duplicate_hops(&node, id))
        .buffered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .sum();
    eprintln!(
        "kill -9: 2000 accepted, {} outcomes read before the kill, {kept} messages kept, \
         {in_flight} in flight at the kill (delivered again), {duplicates} hops seen twice; \
         2000 succeeded, none lost",
        recorded.len()
    );
}

#[tokio::test]
async fn a_terminated_node_keeps_what_is_queued_for_the_next_start() {
    let dir = data_dir();
    let mut node = start_on(dir.path());
    let ids = submit_all(&node, &ROUTE, 2000, payload).await;
    node.outcome(&ids[99]).await;
    let stopping = Instant::now();
    let status = node.terminate();
    assert!(status.success(), "exit status {status:?}");
    let stopped = node
        .log_event("stopped routing")
        .expect("the stop is logged");
    let kept = stopped["messages_kept"]
        .as_u64()
        .expect("the stop says what it kept");
    assert!(kept > 0, "the stop drained the queue instead: {stopped}");
    assert!(
        stopping.elapsed() < Duration::from_secs(20),
        "the stop waited for the queue"
    );

    let node = start_on(dir.path());
    let (messages, in_flight) = opened(&node).await;
    assert_eq!(
        (messages, in_flight),
        (kept, 0),
        "the start reads back what the stop kept, none of it cut off"
    );
    every_one_succeeded(&node, &ids).await;
}

#[tokio::test]
async fn a_crash_during_fan_outs_loses_no_branch() {
    let words = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let text = words.join(" ");
    let dir = data_dir();
    let mut node = start_on(dir.path());
    let ids = submit_all(
        &node,
        &["spin", "split", "echo"],
        400,
        |_| json!({"text": text, "for_ms": 2}),
    )
    .await;
    node.outcome(&ids[49]).await;
    node.kill();

    let node = start_on(dir.path());
    let (kept, _) = opened(&node).await;
    assert!(kept > 0, "the kill came after the pipeline had ended");
    for view in outcomes(&node, &ids).await {
        assert_eq!(view["status"], "succeeded", "{view}");
        let seen: Vec<&str> = view["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|result| result["word"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(seen, words, "every branch once, in fan-out order: {view}");
    }
}

/// Runs `wasya up` on `dir`, which must refuse to start; its stderr.
fn refused_start(dir: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_wasya"))
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "started on a damaged store: {stderr}"
    );
    stderr
}

#[tokio::test]
async fn a_garbage_store_is_refused_and_left_as_it_was() {
    let dir = data_dir();
    let store = dir.path().join("queue.redb");
    let garbage: Vec<u8> = (0..65_536u32).map(|i| (i * 31 % 253) as u8).collect();
    std::fs::write(&store, &garbage).unwrap();
    let stderr = refused_start(dir.path());
    assert!(stderr.contains("cannot be read"), "{stderr}");
    assert!(stderr.contains("left as it is"), "{stderr}");
    assert!(
        std::fs::read(&store).unwrap() == garbage,
        "the store was changed"
    );
}

#[tokio::test]
async fn a_truncated_store_is_refused_and_left_as_it_was() {
    let dir = data_dir();
    let mut node = start_on(dir.path());
    let ids = submit_all(&node, &ROUTE, 200, payload).await;
    every_one_succeeded(&node, &ids).await;
    assert!(node.terminate().success());
    let store = dir.path().join("queue.redb");
    let whole = std::fs::read(&store).unwrap();
    let truncated = &whole[..whole.len() / 2];
    std::fs::write(&store, truncated).unwrap();
    let stderr = refused_start(dir.path());
    assert!(stderr.contains("cannot be read"), "{stderr}");
    assert!(
        std::fs::read(&store).unwrap() == truncated,
        "the store was changed"
    );
}

/// A small tmpfs, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts one of `size` (`24m`), or `None` where this machine does not let the
    /// tests mount (CI requires it: it runs as root).
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("a mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !mounted {
            assert!(
                std::env::var_os("WASYA_REQUIRE_TOOLCHAINS").is_none(),
                "cannot mount a tmpfs for the disk-full test"
            );
            eprintln!("skipped: cannot mount a tmpfs here");
            return None;
        }
        Some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("the filler");
        let chunk = vec![7u8; 64 << 10];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[tokio::test]
async fn a_full_disk_refuses_new_envelopes_loses_none_and_recovers() {
    let Some(disk) = SmallDisk::mount("48m") else {
        return;
    };
    let data = disk.path().join("data");
    std::fs::create_dir(&data).unwrap();
    link_compile_cache(&data);
    let node = start_on(&data);
    let before = submit_all(&node, &ROUTE, 50, payload).await;

    let filler = disk.fill();
    let big = "x".repeat(4 << 20);
    let (status, answer) = node
        .post_json(
            "/v1/envelopes",
            &json!({"route": ["echo"], "payload": {"big": big}}),
        )
        .await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"], "store_unavailable", "{answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(message.contains("No space left"), "{message}");

    std::fs::remove_file(&filler).unwrap();
    every_one_succeeded(&node, &before).await;
    let after = submit_all(&node, &ROUTE, 50, payload).await;
    every_one_succeeded(&node, &after).await;
    let (status, view) = node
        .post_json(
            "/v1/envelopes?wait=30s",
            &json!({"route": ["echo"], "payload": {"big": big}}),
        )
        .await;
    assert_eq!(status, 200, "the large envelope fits now: {view}");
    assert_eq!(view["status"], "succeeded");
}

/// What the node acknowledged never waits on a write that can be dropped: the disk
/// fills while envelopes keep coming, the node is killed right after the first commit
/// that failed, and after a restart on a disk with room every envelope it accepted
/// (answered 202) ends.
#[tokio::test]
async fn a_kill_right_after_a_failed_commit_loses_no_accepted_envelope() {
    let Some(disk) = SmallDisk::mount("48m") else {
        return;
    };
    let data = disk.path().join("data");
    std::fs::create_dir(&data).unwrap();
    link_compile_cache(&data);
    let mut node = start_on(&data);
    // A few MiB of room left, for the envelopes to fill.
    let reserve = disk.path().join("reserve");
    std::fs::write(&reserve, vec![0u8; 3 << 20]).unwrap();
    let filler = disk.fill();
    std::fs::remove_file(&reserve).unwrap();
    let text = "y".repeat(32 << 10);
    let mut accepted = Vec::new();
    let mut refused = false;
    for n in 0..2000 {
        let (status, answer) = node
            .post_json(
                "/v1/envelopes",
                &json!({"route": ROUTE, "payload": {"n": n, "for_ms": 2, "text": text}}),
            )
            .await;
        match status {
            202 => accepted.push((n, answer["id"].as_str().unwrap().to_owned())),
            503 => {
                refused = true;
                break;
            }
            other => panic!("{other}: {answer}"),
        }
    }
    assert!(refused, "the disk never filled");
    assert!(!accepted.is_empty());
    node.kill();
    std::fs::remove_file(&filler).unwrap();
    let node = start_on(&data);
    for (n, id) in &accepted {
        let view = node.outcome(id).await;
        assert_eq!(view["status"], "succeeded", "envelope {n}: {view}");
        assert_eq!(view["results"][0]["n"], *n, "envelope {n}");
    }
}
