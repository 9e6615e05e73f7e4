//! The routing matrix: every rule of the envelope format, through real actors.

use crate::support::{Kind, NodeProcess, single_error};
use serde_json::{Value, json};

async fn three_hop_pipeline(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    let id = node
        .submit(
            &["upper", "echo", "echo"],
            json!({"text": "three hops", "n": 3}),
        )
        .await;
    let view = node.outcome(&id).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["results"], json!([{"text": "THREE HOPS", "n": 3}]));
    let ended = &view["ended"][0];
    assert_eq!(ended["end"], "happy-end");
    assert_eq!(ended["envelope"]["id"], id.as_str());
    assert_eq!(ended["envelope"]["route"]["current"], 3);
}

async fn fan_out_names_children_after_the_parent(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    let words = ["one", "two", "three", "four", "five"];
    let id = node
        .submit(
            &["upper", "split", "echo"],
            json!({"text": words.join(" ")}),
        )
        .await;
    let view = node.outcome(&id).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    let results = view["results"].as_array().unwrap();
    assert_eq!(results.len(), words.len());
    for (index, word) in words.iter().enumerate() {
        assert_eq!(results[index]["word"], word.to_uppercase());
        let envelope = &view["ended"][index]["envelope"];
        if index == 0 {
            assert_eq!(envelope["id"], id.as_str());
            assert!(envelope.get("parent_id").is_none(), "{envelope}");
        } else {
            assert_eq!(envelope["id"], format!("{id}-{index}"));
            assert_eq!(envelope["parent_id"], id.as_str());
        }
    }
}

async fn empty_result_sends_the_original_to_happy_end(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    let payload = json!({"keep": "me"});
    let id = node.submit(&["drop", "upper"], payload.clone()).await;
    let view = node.outcome(&id).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["results"], json!([payload]));
    let envelope = &view["ended"][0]["envelope"];
    assert_eq!(envelope["route"]["current"], 0, "the original, unchanged");
    assert_eq!(envelope["route"]["actors"], json!(["drop", "upper"]));
}

async fn actor_error_goes_to_error_end_with_the_original_payload(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    let payload = json!({"reason": "testing", "n": 1});
    let id = node
        .submit(&["echo", "fail", "echo"], payload.clone())
        .await;
    let view = node.outcome(&id).await;
    let error = single_error(&view);
    assert_eq!(error["error"], "processing_error");
    assert_eq!(error["details"]["type"], "ValueError");
    assert!(
        error["details"]["message"]
            .as_str()
            .unwrap()
            .contains("testing"),
        "{error}"
    );
    assert_eq!(error["original_payload"], payload);
    let envelope = &view["ended"][0]["envelope"];
    assert_eq!(view["ended"][0]["end"], "error-end");
    assert_eq!(envelope["route"]["current"], 1, "route unchanged");
}

async fn envelope_mode_adds_a_hop(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    let id = node
        .submit(
            &["route", "upper"],
            json!({"append": "split", "text": "a b"}),
        )
        .await;
    let view = node.outcome(&id).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(
        view["results"],
        json!([{"word": "A", "index": 0}, {"word": "B", "index": 1}])
    );
    let envelope = &view["ended"][0]["envelope"];
    assert_eq!(
        envelope["route"]["actors"],
        json!(["route", "upper", "split"])
    );
}

async fn envelope_mode_rejects_an_invalid_route_change(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    let payload = json!({"bad_route": true});
    let id = node.submit(&["route", "echo"], payload.clone()).await;
    let view = node.outcome(&id).await;
    let error = single_error(&view);
    assert_eq!(error["details"]["type"], "invalid_route");
    assert_eq!(error["original_payload"], payload);
}

/// Asya's `test_invalid_route_current`: an envelope-mode handler returns
/// `route.current = 7` on a two-actor route; the envelope reaches happy-end as returned.
async fn envelope_mode_current_past_the_end_is_a_happy_end(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    let payload = json!({"current": 7, "test": "invalid_route_current"});
    let id = node
        .submit(&["route", "should-not-reach"], payload.clone())
        .await;
    let view = node.outcome(&id).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["results"], json!([payload]));
    let ended = &view["ended"][0];
    assert_eq!(ended["end"], "happy-end");
    assert_eq!(ended["envelope"]["id"], id.as_str());
    assert_eq!(ended["envelope"]["route"]["current"], 7);
    assert_eq!(
        ended["envelope"]["route"]["actors"],
        json!(["route", "should-not-reach"])
    );
}

async fn headers_and_metadata_reach_happy_end(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let id = node
        .submit_body(json!({
            "route": {"actors": ["echo", "upper", "echo"], "metadata": {"job_id": "j-7", "tags": [1, 2]}},
            "headers": {"traceparent": traceparent, "x-tenant": "acme"},
            "payload": {"text": "carry"},
        }))
        .await;
    let view = node.outcome(&id).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    let envelope = &view["ended"][0]["envelope"];
    assert_eq!(envelope["headers"]["traceparent"], traceparent);
    assert_eq!(envelope["headers"]["x-tenant"], "acme");
    assert_eq!(
        envelope["route"]["metadata"],
        json!({"job_id": "j-7", "tags": [1, 2]})
    );
}

async fn a_route_to_a_missing_actor_fails_with_its_name(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    let id = node.submit(&["echo", "nowhere"], json!(1)).await;
    let error = single_error(&node.outcome(&id).await).clone();
    assert_eq!(error["details"]["type"], "unknown_actor");
    assert!(
        error["details"]["message"]
            .as_str()
            .unwrap()
            .contains("nowhere")
    );
    let (status, body) = node
        .post_json(
            "/v1/envelopes",
            &json!({"route": ["nowhere"], "payload": 1}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
}

/// Publishes raw bytes to `echo` and returns the failure they produced.
async fn reject(node: &NodeProcess, raw: Vec<u8>, marker: &str) -> Value {
    assert_eq!(node.publish_raw("echo", raw).await, 202);
    let marker = marker.to_owned();
    node.failure_matching(move |view| view.to_string().contains(&marker))
        .await
}

async fn malformed_envelopes_go_to_error_end_with_a_reason(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "m-json",
            b"{\"id\": \"m-json\", not json".to_vec(),
            "invalid_json",
            "not valid JSON",
        ),
        (
            "m-noid",
            json!({"route": {"actors": ["echo"], "current": 0}, "payload": "m-noid"})
                .to_string()
                .into_bytes(),
            "missing_id",
            "no `id`",
        ),
        (
            "m-mismatch",
            json!({"id": "m-mismatch", "route": {"actors": ["upper"], "current": 0}, "payload": 1})
                .to_string()
                .into_bytes(),
            "route_mismatch",
            "`upper`",
        ),
        (
            "m-empty",
            json!({"id": "m-empty", "route": {"actors": [], "current": 0}, "payload": 1})
                .to_string()
                .into_bytes(),
            "empty_route",
            "empty",
        ),
        (
            "m-range",
            json!({"id": "m-range", "route": {"actors": ["echo"], "current": 5}, "payload": 1})
                .to_string()
                .into_bytes(),
            "current_out_of_range",
            "out of range",
        ),
    ];
    for (marker, raw, kind, reason) in cases {
        let view = reject(&node, raw, marker).await;
        let error = single_error(&view);
        assert_eq!(error["details"]["type"], kind, "{marker}: {view}");
        let message = error["details"]["message"].as_str().unwrap();
        assert!(
            message.contains(reason),
            "{marker}: `{message}` should name `{reason}`"
        );
        assert_eq!(view["ended"][0]["end"], "error-end");
    }
    // The node is still serving.
    let id = node.submit(&["echo"], json!("still up")).await;
    assert_eq!(node.outcome(&id).await["results"], json!(["still up"]));
}

async fn payloads_of_every_shape_pass_unchanged(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    let mut deep = json!("bottom");
    for level in 0..100 {
        deep = if level % 2 == 0 {
            json!([deep])
        } else {
            json!({"d": deep})
        };
    }
    let big = json!({"blob": "x".repeat(10 * 1024 * 1024)});
    let payloads = [
        json!({"text": "héllo wörld ✓ 漢字 🦀", "emoji": "👩‍👩‍👧"}),
        big,
        deep,
        Value::Null,
    ];
    for payload in payloads {
        let id = node.submit(&["echo", "echo"], payload.clone()).await;
        let view = node.outcome(&id).await;
        assert_eq!(view["status"], "succeeded");
        assert!(
            view["results"] == json!([payload]),
            "payload changed on the way"
        );
    }
}

async fn every_message_gets_a_fresh_instance(kind: Kind) {
    let node = NodeProcess::start_on(kind, &["--concurrency", "1"]);
    for _ in 0..5 {
        let id = node.submit(&["leak"], json!({})).await;
        let view = node.outcome(&id).await;
        assert_eq!(
            view["results"],
            json!([{"calls": 1}]),
            "state leaked: {view}"
        );
    }
}

async fn a_thousand_envelopes_through_three_hops_arrive_exactly_once(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    let submissions = (0..1000).map(|n| {
        let node = &node;
        async move {
            (
                n,
                node.submit(&["echo", "echo", "echo"], json!({"n": n}))
                    .await,
            )
        }
    });
    let ids = futures::future::join_all(submissions).await;
    for (n, id) in ids {
        let view = node.outcome(&id).await;
        assert_eq!(view["status"], "succeeded", "{view}");
        assert_eq!(view["results"], json!([{"n": n}]), "{id}");
        assert_eq!(
            view["ended"].as_array().unwrap().len(),
            1,
            "{id} ended more than once"
        );
    }
}

on_both_transports!(
    three_hop_pipeline,
    fan_out_names_children_after_the_parent,
    empty_result_sends_the_original_to_happy_end,
    actor_error_goes_to_error_end_with_the_original_payload,
    envelope_mode_adds_a_hop,
    envelope_mode_rejects_an_invalid_route_change,
    envelope_mode_current_past_the_end_is_a_happy_end,
    headers_and_metadata_reach_happy_end,
    a_route_to_a_missing_actor_fails_with_its_name,
    malformed_envelopes_go_to_error_end_with_a_reason,
    payloads_of_every_shape_pass_unchanged,
    every_message_gets_a_fresh_instance,
    a_thousand_envelopes_through_three_hops_arrive_exactly_once,
);
