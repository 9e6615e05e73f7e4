//! Following an envelope: progress over Server-Sent Events, a submission that waits
//! for its outcome, Asya gateway's paths, and a sidecar reporting to an Asya gateway.

use crate::support::sse::{self, SseEvent};
use crate::support::web::WebServer;
use crate::support::{Broker, Kind, NodeProcess, Runtime};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

on_both_transports!(
    a_submission_streams_every_hop_then_its_outcome,
    a_follower_resumes_after_the_last_event_it_saw,
    a_submission_can_wait_for_its_outcome,
    asya_clients_read_envelopes_and_streams_unchanged,
);

const STREAM_WITHIN: Duration = Duration::from_secs(30);

/// Opens `path` as an event stream, with `headers`.
async fn open(node: &NodeProcess, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .get(format!("{}{path}", node.base))
        .header("accept", "text/event-stream");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("the node answers")
}

async fn events_of(node: &NodeProcess, id: &str, headers: &[(&str, &str)]) -> Vec<SseEvent> {
    let response = open(node, &format!("/v1/envelopes/{id}/events"), headers).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or_default(),
        "text/event-stream"
    );
    sse::read_all(response, STREAM_WITHIN).await.events
}

/// `(actor, index, stage)` of each progress event.
fn stages(events: &[SseEvent]) -> Vec<(String, u64, String)> {
    events
        .iter()
        .filter(|event| event.event == "progress")
        .map(|event| {
            let data = event.json();
            (
                data["actor"].as_str().unwrap_or_default().to_owned(),
                data["index"].as_u64().unwrap_or(u64::MAX),
                data["stage"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn a_submission_streams_every_hop_then_its_outcome(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    let id = node
        .submit(&["echo", "split", "echo"], json!({"text": "one two"}))
        .await;
    let events = events_of(&node, &id, &[]).await;
    let stages = stages(&events);
    for (actor, index) in [("echo", 0), ("split", 1)] {
        for stage in ["received", "processing", "completed"] {
            assert!(
                stages.contains(&(actor.to_owned(), index, stage.to_owned())),
                "{actor} {stage} missing from {stages:?}"
            );
        }
    }
    let split_done = events
        .iter()
        .map(SseEvent::json)
        .find(|data| data["actor"] == "split" && data["stage"] == "completed")
        .expect("split completed");
    assert_eq!(split_done["next"], json!(["echo", "echo"]));
    assert_eq!(split_done["children"].as_array().map(Vec::len), Some(2));
    assert_eq!(split_done["route"], json!(["echo", "split", "echo"]));
    // Both branches of the fan-out are followed, each with its own branch path.
    let branches: Vec<Value> = events
        .iter()
        .filter(|event| event.event == "progress")
        .map(SseEvent::json)
        .filter(|data| {
            data["actor"] == "echo" && data["index"] == 2 && data["stage"] == "completed"
        })
        .map(|data| data["branch"].clone())
        .collect();
    assert_eq!(branches.len(), 2, "{stages:?}");
    assert_ne!(branches[0], branches[1]);
    // Events are numbered in order, and the outcome comes last, once.
    let ids: Vec<u64> = events
        .iter()
        .filter(|event| event.event == "progress")
        .map(|event| {
            event
                .id
                .as_deref()
                .and_then(|id| id.parse().ok())
                .expect("a numeric id")
        })
        .collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    let last = events.last().expect("events");
    assert_eq!(last.event, "outcome");
    assert_eq!(last.id.as_deref(), Some("end"));
    let outcome = last.json();
    assert_eq!(outcome["status"], "succeeded");
    assert_eq!(
        outcome["results"],
        json!([{"word": "one", "index": 0}, {"word": "two", "index": 1}])
    );
    assert_eq!(
        events
            .iter()
            .filter(|event| event.event == "outcome")
            .count(),
        1
    );
}

async fn a_follower_resumes_after_the_last_event_it_saw(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    let id = node.submit(&["echo", "echo"], json!("resume")).await;
    let all = events_of(&node, &id, &[]).await;
    let progress = all.iter().filter(|event| event.event == "progress").count();
    assert_eq!(progress, 6, "{all:?}");
    let resumed = events_of(&node, &id, &[("last-event-id", "4")]).await;
    let ids: Vec<Option<&str>> = resumed.iter().map(|event| event.id.as_deref()).collect();
    assert_eq!(ids, vec![Some("5"), Some("6"), Some("end")]);
    let done = open(
        &node,
        &format!("/v1/envelopes/{id}/events"),
        &[("last-event-id", "end")],
    )
    .await;
    assert_eq!(
        done.status(),
        204,
        "nothing more: an EventSource stops reconnecting"
    );
    let unknown = open(&node, "/v1/envelopes/no-such-envelope/events", &[]).await;
    assert_eq!(unknown.status(), 404);
    let invalid = open(
        &node,
        &format!("/v1/envelopes/{id}/events"),
        &[("last-event-id", "x")],
    )
    .await;
    assert_eq!(invalid.status(), 400);
}

async fn a_submission_can_wait_for_its_outcome(kind: Kind) {
    let node = NodeProcess::start_on(kind, &["--actor-timeout", "spin=3s"]);
    let (status, view) = node
        .post_json(
            "/v1/envelopes?wait=20s",
            &json!({"route": ["upper"], "payload": {"text": "now"}}),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "succeeded");
    assert_eq!(view["results"], json!([{"text": "NOW"}]));
    let (status, view) = node
        .post_json(
            "/v1/envelopes?wait=20s",
            &json!({"route": ["fail"], "payload": {"reason": "sync"}}),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "failed");
    // Past the wait, the answer is the id and where to follow it.
    let (status, answer) = node
        .post_json(
            "/v1/envelopes?wait=200ms",
            &json!({"route": ["spin"], "payload": {}}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().expect("an id");
    assert_eq!(answer["events_url"], format!("/v1/envelopes/{id}/events"));
    assert_eq!(answer["status_url"], format!("/v1/envelopes/{id}"));
    let (status, refused) = node
        .post_json("/v1/envelopes?wait=10m", &json!({"route": ["echo"]}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"], "invalid_wait");
}

async fn asya_clients_read_envelopes_and_streams_unchanged(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    let id = node
        .submit(&["echo", "upper"], json!({"text": "asya"}))
        .await;
    node.outcome(&id).await;
    let (status, envelope) = node.get(&format!("/envelopes/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(envelope["id"], id.as_str());
    assert_eq!(envelope["status"], "succeeded");
    assert_eq!(envelope["progress_percent"], 100.0);
    assert_eq!(envelope["result"], json!({"text": "ASYA"}));
    assert_eq!(envelope["total_actors"], 2);
    assert_eq!(envelope["route"]["actors"], json!(["echo", "upper"]));
    assert_eq!(envelope["actors_completed"], 2);
    assert_eq!(envelope["message"], "Envelope completed successfully");

    let response = open(&node, &format!("/envelopes/{id}/stream"), &[]).await;
    assert_eq!(response.status(), 200);
    let updates = sse::read_all(response, STREAM_WITHIN).await.events;
    assert!(
        updates.iter().all(|event| event.event == "update"),
        "{updates:?}"
    );
    let states: Vec<Value> = updates
        .iter()
        .map(|event| event.json()["envelope_state"].clone())
        .collect();
    assert_eq!(
        states[..3],
        [json!("received"), json!("processing"), json!("completed")]
    );
    let percents: Vec<f64> = updates
        .iter()
        .map(|event| event.json()["progress_percent"].as_f64().unwrap_or(-1.0))
        .collect();
    assert!(
        percents.windows(2).all(|pair| pair[0] <= pair[1]),
        "progress goes back: {percents:?}"
    );
    let last = updates.last().expect("updates").json();
    assert_eq!(last["status"], "succeeded");
    assert_eq!(last["result"], json!({"text": "ASYA"}));

    let (status, active) = node.get(&format!("/envelopes/{id}/active")).await;
    assert_eq!((status, active), (410, json!({"active": false})));
    let failed = node.submit(&["fail"], json!({"reason": "asya"})).await;
    node.outcome(&failed).await;
    let (_, envelope) = node.get(&format!("/envelopes/{failed}")).await;
    assert_eq!(envelope["status"], "failed");
    assert!(
        envelope["error"]
            .as_str()
            .is_some_and(|error| error.contains("fail always fails: asya")),
        "{envelope}"
    );
    let (status, _) = node.get_text("/envelopes/no-such-envelope").await;
    assert_eq!(status, 404);
    assert_eq!(node.get_text("/health").await, (200, "OK\n".to_owned()));
}

#[tokio::test]
async fn the_sidecar_reports_progress_to_an_asya_gateway() {
    let gateway = WebServer::start(Duration::ZERO).await;
    let broker = Arc::new(Broker::new());
    let url = broker.url();
    let gateway_url = gateway.url("");
    let sidecar_of = |actor: &str, runtime: &Runtime| {
        let socket_dir = runtime.socket_dir().display().to_string();
        NodeProcess::sidecar(&[
            ("ASYA_ACTOR_NAME", actor),
            ("ASYA_SOCKET_DIR", socket_dir.as_str()),
            ("ASYA_RABBITMQ_URL", url.as_str()),
            ("ASYA_METRICS_ADDR", "127.0.0.1:0"),
            ("ASYA_GATEWAY_URL", gateway_url.as_str()),
        ])
    };
    let split_runtime = Runtime::start("split", "payload", &[]);
    let echo_runtime = Runtime::start("echo", "payload", &[]);
    let _split = sidecar_of("g-split", &split_runtime);
    let _echo = sidecar_of("g-echo", &echo_runtime);
    let collector = NodeProcess::start_on_broker(&broker, &["--serve", "none"]);
    let id = collector
        .submit(&["g-split", "g-echo"], json!({"text": "a b"}))
        .await;
    let view = collector.outcome(&id).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    // Reports go out in the background: wait for the last of them.
    let expected = 3 + 1 + 3 * 2;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let reports = loop {
        let reports = gateway.seen.gateway.lock().expect("a lock").clone();
        if reports.len() >= expected || std::time::Instant::now() > deadline {
            break reports;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let progress_of = |envelope: &str| -> Vec<(String, Value)> {
        reports
            .iter()
            .filter(|(path, _)| *path == format!("/envelopes/{envelope}/progress"))
            .map(|(_, body)| {
                (
                    body["status"].as_str().unwrap_or_default().to_owned(),
                    body["current_actor_idx"].clone(),
                )
            })
            .collect()
    };
    // g-split's sidecar reports its hop in order; g-echo's sidecar may report its own
    // hop of the same envelope in between, so its reports are left out here.
    let split_hop: Vec<(String, Value)> = progress_of(&id)
        .into_iter()
        .filter(|(status, index)| match status.as_str() {
            "completed" => *index == json!(1),
            _ => *index == json!(0),
        })
        .collect();
    assert_eq!(
        split_hop,
        [
            ("received".to_owned(), json!(0)),
            ("processing".to_owned(), json!(0)),
            ("completed".to_owned(), json!(1)),
        ],
        "{reports:?}"
    );
    let child = format!("{id}-1");
    let created: Vec<&Value> = reports
        .iter()
        .filter(|(path, _)| path == "/envelopes")
        .map(|(_, body)| body)
        .collect();
    assert_eq!(
        created,
        vec![&json!({"id": child, "parent_id": id, "actors": ["g-split", "g-echo"], "current": 1})]
    );
    for envelope in [&id, &child] {
        let echo: Vec<(String, Value)> = progress_of(envelope)
            .into_iter()
            .filter(|(_, index)| *index != json!(0))
            .collect();
        assert!(
            echo.contains(&("received".to_owned(), json!(1)))
                && echo.contains(&("completed".to_owned(), json!(2))),
            "g-echo's hop of {envelope}: {reports:?}"
        );
    }
    let body = &reports[0].1;
    assert!(
        body["actors"].is_array() && body["message"].is_string(),
        "{body}"
    );
}

#[tokio::test]
async fn without_progress_a_stream_carries_only_the_outcome() {
    let node = NodeProcess::start(&["--no-progress"]);
    let id = node
        .submit(&["echo", "upper"], json!({"text": "quiet"}))
        .await;
    let events = events_of(&node, &id, &[]).await;
    let names: Vec<&str> = events.iter().map(|event| event.event.as_str()).collect();
    assert_eq!(names, vec!["outcome"], "{events:?}");
    assert_eq!(events[0].json()["results"], json!([{"text": "QUIET"}]));
}

/// A stopping sidecar sends what it queued for the gateway before it exits: with a
/// gateway that takes 100 ms a report, every report of the envelopes it handled
/// arrives though SIGTERM came right after their outcomes.
#[tokio::test]
async fn a_stopping_sidecar_flushes_its_reports_to_the_gateway() {
    let gateway = WebServer::start(Duration::from_millis(100)).await;
    let broker = Arc::new(Broker::new());
    let url = broker.url();
    let gateway_url = gateway.url("");
    let runtime = Runtime::start("echo", "payload", &[]);
    let socket_dir = runtime.socket_dir().display().to_string();
    let mut sidecar = NodeProcess::sidecar(&[
        ("ASYA_ACTOR_NAME", "g-flush"),
        ("ASYA_SOCKET_DIR", socket_dir.as_str()),
        ("ASYA_RABBITMQ_URL", url.as_str()),
        ("ASYA_METRICS_ADDR", "127.0.0.1:0"),
        ("ASYA_GATEWAY_URL", gateway_url.as_str()),
    ]);
    let collector = NodeProcess::start_on_broker(&broker, &["--serve", "none"]);
    const ENVELOPES: usize = 5;
    let mut ids = Vec::new();
    for n in 0..ENVELOPES {
        ids.push(collector.submit(&["g-flush"], json!({"n": n})).await);
    }
    for id in &ids {
        assert_eq!(collector.outcome(id).await["status"], "succeeded");
    }
    // Waited for off the runtime: the gateway answers on it meanwhile.
    let stopped = tokio::task::spawn_blocking(move || sidecar.terminate())
        .await
        .unwrap();
    assert!(stopped.success());
    // received, processing and completed for each.
    let reports = gateway.seen.gateway.lock().expect("a lock").len();
    assert_eq!(reports, 3 * ENVELOPES, "{:?}", gateway.seen.gateway.lock());
}
