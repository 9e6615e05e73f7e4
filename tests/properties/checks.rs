//! The properties the parsers that face the outside must hold, as plain functions of
//! their input. `tests/properties.rs` feeds them generated inputs on every `cargo
//! test`; the fuzz targets in `host/fuzz` feed them whatever a fuzzer finds. Each
//! panics when its property fails.

#![allow(dead_code)]

use serde_json::Value;
use wasya::envelope::Envelope;
use wasya::envelope::limits::{ERROR_ROOM, MAX_DEPTH, SizeLimit, depth};
use wasya::failure::{Code, Failure, Kind};
use wasya::records::ERROR_END;
use wasya::route_rules::{self, Outcome};
use wasya::runtime::socket::frame::{read_frame, write_frame};
use wasya::runtime::socket::response::parse_response;
use wasya::runtime::wasm::output::{GuestOutput, outcome_of};

/// The actor the checks deliver to.
pub const ACTOR: &str = "a";

/// Whatever bytes reach an actor, what the node sends on can be read again: an
/// accepted envelope's failure wrapper, or the rejection of one that is not.
pub fn envelope_bytes(bytes: &[u8]) {
    let limit = SizeLimit::new(4 << 20);
    let dispatch = match Envelope::parse_for(bytes, ACTOR) {
        Ok(envelope) => {
            assert!(depth(&envelope.payload) <= MAX_DEPTH);
            let failure = Failure::processing(Kind::Trap, "checked");
            let dispatches = route_rules::route_outcome(ACTOR, &envelope, Outcome::Failed(failure));
            assert_eq!(dispatches.len(), 1);
            let wrapped = &dispatches[0];
            assert_eq!(wrapped.envelope.id, envelope.id);
            assert!(
                wrapped.envelope.to_bytes().len() <= envelope.to_bytes().len() + ERROR_ROOM,
                "the wrapper outgrew its room"
            );
            wrapped.clone()
        }
        Err(rejected) => {
            let kept_id = rejected.id.clone();
            let dispatch = route_rules::reject(ACTOR, *rejected, route_rules::unidentified);
            if let Some(id) = kept_id {
                assert_eq!(dispatch.envelope.id, id);
            }
            dispatch
        }
    };
    assert_eq!(dispatch.actor, ERROR_END);
    let sent = dispatch.envelope.to_bytes();
    let read = Envelope::parse(&sent).expect("what the node sends to error-end reads again");
    assert_eq!(read.id, dispatch.envelope.id);
    // What fits the limit as input fits it wrapped.
    if limit.check(bytes.len()).is_ok() && Envelope::parse_for(bytes, ACTOR).is_ok() {
        assert!(sent.len() <= limit.max_message);
    }
}

/// A failure of any text fits the room kept for its wrapper.
pub fn failure_wrapper(code: &str, kind: &str, message: &str, traceback: Option<&str>) {
    let input = Envelope::parse_for(
        br#"{"id":"x","route":{"actors":["a"]},"payload":{"n":1}}"#,
        ACTOR,
    )
    .expect("a valid envelope");
    let failure = Failure {
        code: Code::Other(code.to_owned()),
        kind: Kind::Actor(kind.to_owned()),
        message: message.to_owned(),
        traceback: traceback.map(str::to_owned),
        refused_hosts: vec![message.to_owned(); 100],
    };
    let wrapped = route_rules::to_error_end(ACTOR, input.clone(), failure);
    let added = wrapped.envelope.to_bytes().len() - input.to_bytes().len();
    assert!(added <= ERROR_ROOM, "{added} bytes added");
    Envelope::parse(&wrapped.envelope.to_bytes()).expect("the wrapper reads again");
}

/// A frame reader never reads past its limit, and never fails on garbage with
/// anything but an error; what a runtime answers is always an outcome.
pub async fn socket_bytes(bytes: &[u8], limit: usize) {
    let mut reader = bytes;
    if let Ok(body) = read_frame(&mut reader, limit).await {
        assert!(body.len() <= limit);
        let _ = parse_response(&body);
    }
    let _ = parse_response(bytes);
}

/// A frame written is the frame read.
pub async fn socket_round_trip(body: &[u8]) {
    let mut written = Vec::new();
    write_frame(&mut written, body).await.expect("a frame");
    let mut reader = written.as_slice();
    let read = read_frame(&mut reader, body.len())
        .await
        .expect("the frame reads back");
    assert_eq!(read, body);
}

/// Whatever a guest returns becomes an outcome: its outputs when every payload is
/// JSON, else the actor's `invalid_output`.
pub fn guest_outputs(outputs: Vec<GuestOutput>) {
    let parses = outputs.iter().all(|output| {
        serde_json::from_str::<Value>(&output.payload).is_ok()
            && output.route.as_ref().is_none_or(|route| {
                route
                    .metadata
                    .as_ref()
                    .is_none_or(|text| serde_json::from_str::<Value>(text).is_ok())
            })
    });
    let count = outputs.len();
    match outcome_of(outputs) {
        Outcome::Outputs(converted) => {
            assert!(parses);
            assert_eq!(converted.len(), count);
        }
        Outcome::Failed(failure) => {
            assert!(!parses);
            assert_eq!(failure.kind, Kind::InvalidOutput);
        }
    }
}

/// Option texts as flags and the API take them: a value or an error, never a panic;
/// a size written back reads the same.
pub fn unit_texts(text: &str) {
    if let Ok(bytes) = wasya::units::parse_bytes(text) {
        assert_eq!(
            wasya::units::parse_bytes(&wasya::units::format_bytes(bytes)),
            Ok(bytes)
        );
    }
    let _ = wasya::units::parse_duration(text);
    let _ = wasya::units::parse_go_duration(text);
    if let Ok(spec) = serde_json::from_str::<wasya::deployments::options::ActorSpec>(text) {
        let _ = spec.clone().check(wasya::records::ActorKind::Wasm);
        let _ = spec.check(wasya::records::ActorKind::Socket);
    }
}
