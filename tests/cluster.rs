//! Several real nodes on one RabbitMQ: bursts, crashes, broker faults and poison
//! messages. Worker nodes serve `echo` and leave the end actors to a collector node
//! (`--serve none`), which records every outcome, so killing a worker loses no record.

use crate::support::{Broker, NodeProcess};
use futures::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;

const BURST: usize = 10_000;
const IN_FLIGHT: usize = 64;

/// What a burst came to.
struct Tally {
    missing: Vec<String>,
    failed: usize,
    duplicates: usize,
}

fn worker(broker: &Arc<Broker>) -> NodeProcess {
    NodeProcess::start_on_broker(broker, &["--serve", "echo", "--no-end-actors"])
}

fn collector(broker: &Arc<Broker>) -> NodeProcess {
    NodeProcess::start_on_broker(broker, &["--serve", "none"])
}

/// Submits `BURST` envelopes through echo×3 to the collector; `midway` runs once half
/// of them are submitted. Returns the ids in order.
async fn submit_burst(collector: &NodeProcess, midway: impl FnOnce()) -> Vec<String> {
    let mut midway = Some(midway);
    let mut ids = Vec::with_capacity(BURST);
    let mut submissions = futures::stream::iter(0..BURST)
        .map(|n| collector.submit(&["echo", "echo", "echo"], json!({"n": n})))
        .buffered(IN_FLIGHT);
    while let Some(id) = submissions.next().await {
        ids.push(id);
        if ids.len() == BURST / 2
            && let Some(midway) = midway.take()
        {
            midway();
        }
    }
    ids
}

/// Waits for every id's outcome on the collector and counts what went wrong.
async fn tally(collector: &NodeProcess, ids: &[String]) -> Tally {
    let outcomes: Vec<(String, Value)> = futures::stream::iter(ids.iter().cloned())
        .map(|id| async move {
            let (_, view) = collector
                .get(&format!("/v1/envelopes/{id}?wait=120s"))
                .await;
            (id, view)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let mut tally = Tally {
        missing: Vec::new(),
        failed: 0,
        duplicates: 0,
    };
    for (id, view) in outcomes {
        match view["status"].as_str() {
            Some("succeeded") => {}
            Some("failed") => tally.failed += 1,
            _ => tally.missing.push(id),
        }
        let ended = view["ended"].as_array().map_or(0, Vec::len);
        tally.duplicates += ended.saturating_sub(1);
    }
    tally
}

fn report(name: &str, tally: &Tally) {
    eprintln!(
        "{name}: {BURST} envelopes, {} missing, {} failed, {} duplicates (at-least-once)",
        tally.missing.len(),
        tally.failed,
        tally.duplicates
    );
    assert!(
        tally.missing.is_empty(),
        "{name}: {} envelopes never reached happy-end, e.g. {:?}",
        tally.missing.len(),
        &tally.missing[..tally.missing.len().min(5)]
    );
    assert_eq!(tally.failed, 0, "{name}: envelopes failed");
}

#[tokio::test]
async fn a_burst_through_two_nodes_arrives_whole() {
    let broker = Arc::new(Broker::new());
    let workers = [worker(&broker), worker(&broker)];
    let collector = collector(&broker);
    let ids = submit_burst(&collector, || {}).await;
    let tally = tally(&collector, &ids).await;
    report("burst", &tally);
    assert_eq!(tally.duplicates, 0, "no fault, so no duplicate");
    drop(workers);
}

#[tokio::test]
async fn a_node_killed_mid_burst_loses_nothing() {
    let broker = Arc::new(Broker::new());
    let survivor = worker(&broker);
    let mut victim = worker(&broker);
    let collector = collector(&broker);
    let ids = submit_burst(&collector, || victim.kill()).await;
    let tally = tally(&collector, &ids).await;
    report("kill -9 one of two nodes", &tally);
    let handled = |node: &NodeProcess| {
        node.log()
            .iter()
            .filter(|line| line.contains("echo handling message"))
            .count()
    };
    assert!(
        handled(&victim) > 0,
        "the victim was killed before it handled anything"
    );
    assert!(handled(&survivor) > 0, "the survivor handled nothing");
}

#[tokio::test]
async fn broker_side_disconnects_heal_by_themselves() {
    let broker = Arc::new(Broker::new());
    let workers = [worker(&broker), worker(&broker)];
    let collector = collector(&broker);
    let ids = submit_burst(&collector, || broker.close_connections()).await;
    let tally = tally(&collector, &ids).await;
    report("broker closed every connection", &tally);
    for node in workers.iter().chain([&collector]) {
        let reconnected = node
            .wait_for_log(|line| {
                line.contains("connected to RabbitMQ") && line.contains("\"generation\":2")
            })
            .await;
        assert!(reconnected, "a node did not reconnect");
    }
}

/// Reads the one message of a dead-letter queue.
async fn dead_letter(broker: &Broker, queue: &str) -> (Value, String) {
    use lapin::options::BasicGetOptions;
    let connection =
        lapin::Connection::connect(&broker.url(), lapin::ConnectionProperties::default())
            .await
            .expect("the test connects to RabbitMQ");
    let channel = connection.create_channel().await.unwrap();
    let message = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("a dead-lettered message");
    let reason = message
        .properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get("x-wasya-dead-reason").cloned())
        .and_then(|value| value.as_long_string().map(|text| text.to_string()))
        .expect("the dead letter carries its reason");
    (serde_json::from_slice(&message.data).unwrap(), reason)
}

#[tokio::test]
async fn a_poison_message_ends_in_the_dead_letter_queue() {
    let broker = Arc::new(Broker::new());
    let start = || {
        NodeProcess::start_on_broker(
            &broker,
            &[
                "--serve",
                "spin",
                "--actor-timeout",
                "spin=10m",
                "--concurrency",
                "1",
            ],
        )
    };
    let mut node = start();
    // This message takes down whatever node runs it (here: kill -9 while it runs).
    let poison = node.submit(&["spin"], json!({"poison": true})).await;
    let limit = 5;
    for crash in 0..=limit {
        let running = node
            .wait_for_log(|line| line.contains("spin handling message") && line.contains(&poison))
            .await;
        assert!(
            running,
            "crash {crash}: the poison message was not redelivered"
        );
        node.kill();
        node = start();
    }
    let dead_lettered = node
        .wait_for_log(|line| {
            line.contains("without being settled") && line.contains("asya-spin-dlq")
        })
        .await;
    assert!(dead_lettered, "the poison message was not dead-lettered");
    let (envelope, reason) = dead_letter(&broker, "asya-spin-dlq").await;
    assert_eq!(envelope["id"], poison.as_str());
    assert!(
        reason.contains("redelivered 6 times") && reason.contains("limit 5"),
        "{reason}"
    );
    // The queue flows on.
    let id = node.submit(&["spin"], json!({"for_ms": 5})).await;
    assert_eq!(node.outcome(&id).await["status"], "succeeded");
    assert_eq!(broker.queue_length("asya-spin"), Some(0));
}

#[tokio::test]
async fn sigterm_finishes_in_flight_work_and_gives_back_the_rest() {
    let broker = Arc::new(Broker::new());
    let start = || {
        NodeProcess::start_on_broker(
            &broker,
            &[
                "--serve",
                "spin",
                "--actor-concurrency",
                "spin=1",
                "--no-end-actors",
                "--grace-period",
                "3s",
            ],
        )
    };
    // In flight and able to finish within the grace period: finished, its result
    // handed on, the input acked.
    let mut node = start();
    let id = node.submit(&["spin"], json!({"for_ms": 1000})).await;
    assert!(
        node.wait_for_log(|line| line.contains("spin handling message") && line.contains(&id))
            .await
    );
    let status = node.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(broker.queue_length("asya-spin"), Some(0));
    assert_eq!(
        broker.queue_length("asya-happy-end"),
        Some(1),
        "the finished result was handed on"
    );

    // In flight past the grace period: given back to its queue, not lost.
    let mut node = start();
    let id = node.submit(&["spin"], json!({"for_ms": 20000})).await;
    assert!(
        node.wait_for_log(|line| line.contains("spin handling message") && line.contains(&id))
            .await
    );
    let status = node.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(node.log().join("\n").contains("grace period over"));
    assert_eq!(
        broker.queue_length("asya-spin"),
        Some(1),
        "the unfinished message went back"
    );
}
