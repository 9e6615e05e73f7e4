//! Partial output: what an actor emits while its call runs reaches the followers of
//! its envelope, in order, between its hop's `processing` and `completed` and before
//! the outcome; a runaway emitter is cut at its bound and counted.

use crate::support::sse::{self, SseEvent};
use crate::support::{Kind, NodeProcess};
use serde_json::{Value, json};
use std::time::Duration;

on_both_transports!(
    an_actors_chunks_reach_a_follower_in_order_before_the_outcome,
    a_runaway_emitter_is_cut_at_its_bound_and_counted,
);

const STREAM_WITHIN: Duration = Duration::from_secs(30);

async fn events_of(node: &NodeProcess, id: &str) -> Vec<SseEvent> {
    let response = reqwest::Client::new()
        .get(format!("{}/v1/envelopes/{id}/events", node.base))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("the node answers");
    assert_eq!(response.status(), 200);
    sse::read_all(response, STREAM_WITHIN).await.events
}

/// The position of the first event that `wanted` picks.
fn position(events: &[SseEvent], wanted: impl Fn(&SseEvent) -> bool) -> usize {
    events
        .iter()
        .position(wanted)
        .unwrap_or_else(|| panic!("no such event in {events:?}"))
}

async fn an_actors_chunks_reach_a_follower_in_order_before_the_outcome(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    let id = node
        .submit(
            &["echo", "stream", "echo"],
            json!({"text": "the quick brown fox"}),
        )
        .await;
    let events = events_of(&node, &id).await;
    let partials: Vec<Value> = events
        .iter()
        .filter(|event| event.event == "partial")
        .map(SseEvent::json)
        .collect();
    let chunks: Vec<&str> = partials
        .iter()
        .map(|partial| partial["chunk"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(chunks, ["the ", "quick ", "brown ", "fox"], "{events:?}");
    for (n, partial) in partials.iter().enumerate() {
        assert_eq!(partial["n"], n as u64 + 1);
        assert_eq!(partial["actor"], "stream");
        assert_eq!(partial["index"], 1);
        assert_eq!(partial["envelope_id"], id);
    }
    // Between the stream hop's processing and completed, and before the outcome.
    let stage_of = |stage: &'static str| {
        move |event: &SseEvent| {
            event.event == "progress" && {
                let data = event.json();
                data["actor"] == "stream" && data["stage"] == stage
            }
        }
    };
    let processing = position(&events, stage_of("processing"));
    let completed = position(&events, stage_of("completed"));
    let first = position(&events, |event| event.event == "partial");
    let last = events
        .iter()
        .rposition(|event| event.event == "partial")
        .expect("partial events");
    assert!(
        processing < first && last < completed,
        "chunks outside their hop: {events:?}"
    );
    let outcome = events.last().expect("events");
    assert_eq!(outcome.event, "outcome");
    assert_eq!(
        outcome.json()["results"],
        json!([{"text": "the quick brown fox", "words": 4}])
    );
    // A chunk carries no SSE id: a client resumes by progress events.
    assert!(
        events
            .iter()
            .filter(|event| event.event == "partial")
            .all(|event| event.id.is_none())
    );
    assert_eq!(
        node.metric("wasya_partials_total", &[("actor", "stream")])
            .await,
        4.0
    );
}

async fn a_runaway_emitter_is_cut_at_its_bound_and_counted(kind: Kind) {
    const BOUND: u64 = 1024;
    const KEPT: usize = 64;
    let node = NodeProcess::start_on(kind, &[]);
    let id = node.submit(&["stream"], json!({"chunks": 1100})).await;
    let events = events_of(&node, &id).await;
    let outcome = events.last().expect("events");
    assert_eq!(outcome.event, "outcome");
    // The call still succeeds: chunks are advisory.
    assert_eq!(outcome.json()["status"], "succeeded");
    assert_eq!(outcome.json()["results"], json!([{"emitted": 1100}]));
    let numbers: Vec<u64> = events
        .iter()
        .filter(|event| event.event == "partial")
        .map(|event| event.json()["n"].as_u64().expect("a number"))
        .collect();
    // Read live or late, chunks come in order, none past the bound, and the latest
    // ones kept (the ring's) all reach the follower.
    assert!(
        numbers.windows(2).all(|pair| pair[0] < pair[1]),
        "{numbers:?}"
    );
    assert_eq!(numbers.last(), Some(&BOUND), "{numbers:?}");
    let latest = BOUND - KEPT as u64 + 1..=BOUND;
    assert!(
        latest.clone().all(|n| numbers.contains(&n)),
        "{numbers:?} lacks some of {latest:?}"
    );
    assert_eq!(
        node.metric("wasya_partials_total", &[("actor", "stream")])
            .await,
        BOUND as f64
    );
    assert_eq!(
        node.metric(
            "wasya_partials_dropped_total",
            &[("actor", "stream"), ("reason", "count")]
        )
        .await,
        (1100 - BOUND) as f64
    );
}
