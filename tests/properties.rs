//! Property tests of the parsers that face the outside, run on every `cargo test`
//! with a bounded number of generated cases each. The properties themselves live in
//! `properties/checks.rs`, which the fuzz targets (`host/fuzz`) run too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "properties/checks.rs"]
mod checks;

use proptest::prelude::*;
use serde_json::{Value, json};
use wasya::runtime::wasm::output::{GuestOutput, GuestRoute};

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |n| n.is_finite())
            .prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,6}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A value nested `depth` arrays deep, around and past the limits that matter.
fn nested_value() -> impl Strategy<Value = Value> {
    (0usize..140, json_value())
        .prop_map(|(depth, leaf)| (0..depth).fold(leaf, |inner, _| Value::Array(vec![inner])))
}

/// Envelope-like JSON: each field present or not, valid or not.
fn envelope_json() -> impl Strategy<Value = Value> {
    let id = prop_oneof![
        Just(None),
        Just(Some(json!(""))),
        "[a-z0-9-]{1,12}".prop_map(|id| Some(json!(id))),
        json_value().prop_map(Some),
    ];
    let actors = prop_oneof![
        Just(json!(["a"])),
        Just(json!(["b", "a"])),
        Just(json!([])),
        json_value(),
    ];
    let current = prop_oneof![
        Just(None),
        (0u64..4).prop_map(|n| Some(json!(n))),
        json_value().prop_map(Some)
    ];
    let metadata = prop_oneof![Just(None), nested_value().prop_map(Some)];
    let headers = prop_oneof![
        Just(None),
        prop::collection::btree_map("[a-z-]{1,8}", ".{0,8}", 0..4).prop_map(|map| Some(json!(map))),
        json_value().prop_map(Some),
    ];
    let payload = prop_oneof![json_value(), nested_value()];
    (id, actors, current, metadata, headers, payload).prop_map(
        |(id, actors, current, metadata, headers, payload)| {
            let mut route = serde_json::Map::new();
            route.insert("actors".into(), actors);
            if let Some(current) = current {
                route.insert("current".into(), current);
            }
            if let Some(metadata) = metadata {
                route.insert("metadata".into(), metadata);
            }
            let mut envelope = serde_json::Map::new();
            if let Some(id) = id {
                envelope.insert("id".into(), id);
            }
            envelope.insert("route".into(), Value::Object(route));
            if let Some(headers) = headers {
                envelope.insert("headers".into(), headers);
            }
            envelope.insert("payload".into(), payload);
            Value::Object(envelope)
        },
    )
}

fn guest_output() -> impl Strategy<Value = GuestOutput> {
    let text = prop_oneof![json_value().prop_map(|value| value.to_string()), ".{0,16}"];
    let route = prop_oneof![
        Just(None),
        (
            prop::collection::vec("[a-z]{1,4}", 0..4),
            0u32..6,
            prop_oneof![Just(None), text.clone().prop_map(Some)],
        )
            .prop_map(|(actors, current, metadata)| Some(GuestRoute {
                actors,
                current,
                metadata,
            })),
    ];
    let headers = prop_oneof![
        Just(None),
        prop::collection::vec(("[a-z-]{1,8}", ".{0,8}"), 0..3).prop_map(Some),
    ];
    (text, route, headers).prop_map(|(payload, route, headers)| GuestOutput {
        payload,
        route,
        headers,
    })
}

proptest! {
    // Failures are shrunk and reported, not written into the source tree.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn envelope_like_json_ends_somewhere_readable(envelope in envelope_json()) {
        checks::envelope_bytes(envelope.to_string().as_bytes());
    }

    #[test]
    fn any_bytes_end_somewhere_readable(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        checks::envelope_bytes(&bytes);
    }

    #[test]
    fn a_failure_fits_its_wrapper(
        code in ".{0,64}",
        kind in ".{0,600}",
        message in ".{0,6000}",
        traceback in prop::option::of(".{0,20000}"),
    ) {
        checks::failure_wrapper(&code, &kind, &message, traceback.as_deref());
    }

    #[test]
    fn socket_frames_are_bounded(bytes in prop::collection::vec(any::<u8>(), 0..512), limit in 0usize..1024) {
        tokio_block_on(checks::socket_bytes(&bytes, limit));
    }

    #[test]
    fn socket_frames_round_trip(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        tokio_block_on(checks::socket_round_trip(&body));
    }

    #[test]
    fn socket_answers_become_outcomes(items in prop::collection::vec(json_value(), 0..4)) {
        tokio_block_on(checks::socket_bytes(&frame(&Value::Array(items)), 1 << 20));
    }

    #[test]
    fn guest_outputs_become_outcomes(outputs in prop::collection::vec(guest_output(), 0..5)) {
        checks::guest_outputs(outputs);
    }

    #[test]
    fn unit_texts_read_or_fail_cleanly(text in prop_oneof![
        ".{0,24}",
        "[0-9]{1,22}(B|KB|KiB|MB|MiB|GB|GiB|XB)?",
        "([0-9]{1,6}(\\.[0-9]{1,3})?(ns|us|µs|ms|s|m|h)){1,4}",
    ]) {
        checks::unit_texts(&text);
    }

    #[test]
    fn option_bodies_read_or_fail_cleanly(body in json_value()) {
        checks::unit_texts(&body.to_string());
    }
}

fn frame(value: &Value) -> Vec<u8> {
    let body = value.to_string().into_bytes();
    let mut framed = u32::try_from(body.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes()
        .to_vec();
    framed.extend_from_slice(&body);
    framed
}

fn tokio_block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(future)
}

#[test]
fn a_payload_at_the_limit_is_carried_and_one_past_it_as_text() {
    let nested = |depth: usize| (0..depth).fold(json!(1), |inner, _| json!([inner]));
    for depth in [0, 99, 100, 101, 126] {
        let envelope = json!({"id": "e", "route": {"actors": ["a"]}, "payload": nested(depth)});
        checks::envelope_bytes(envelope.to_string().as_bytes());
    }
}
