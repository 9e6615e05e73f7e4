//! Where an envelope goes after its actor ran: a pure function of (envelope, outcome).
//!
//! No I/O and no clock here, so every rule of the mesh (next hop, fan-out ids, abort,
//! error-end, envelope-mode route checks, headers and metadata carried along) is unit
//! tested on plain values. The router only executes the [`Dispatch`]es this returns.

use crate::branch::Branch;
use crate::envelope::limits::{
    MESSAGE_CAP, REFUSED_HOSTS_CAP, TRACEBACK_CAP, TYPE_CAP, cap_end, cap_start,
};
use crate::envelope::{Envelope, EnvelopeError, Headers, Rejected, Route};
use crate::failure::{Code, Failure, Kind};
use crate::records::{ERROR_END, HAPPY_END};
use serde_json::{Map, Value, json};

/// One result of an actor call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Output {
    /// The payload of the envelope the result becomes.
    pub payload: Value,
    /// Envelope mode: the route as the actor changed it (it advanced `current`).
    pub route: Option<Route>,
    /// Envelope mode: headers that replace the incoming ones.
    pub headers: Option<Headers>,
    /// Envelope mode (socket runtimes): an id chosen by the actor.
    pub id: Option<String>,
    /// Envelope mode (socket runtimes): a parent id chosen by the actor.
    pub parent_id: Option<String>,
}

impl Output {
    /// A payload-mode result.
    pub fn payload(payload: Value) -> Output {
        Output {
            payload,
            ..Output::default()
        }
    }
}

/// What an actor call produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Zero (abort), one, or several (fan-out) results.
    Outputs(Vec<Output>),
    /// The call failed; the input goes to error-end.
    Failed(Failure),
}

/// An envelope to hand to the transport, addressed to an actor (or an end actor).
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatch {
    /// The actor whose queue the envelope goes to.
    pub actor: String,
    /// The envelope to send.
    pub envelope: Envelope,
}

/// Decides where the results of `input`'s call go.
pub fn route_outcome(actor: &str, input: &Envelope, outcome: Outcome) -> Vec<Dispatch> {
    let outputs = match outcome {
        Outcome::Failed(failure) => return vec![to_error_end(actor, input.clone(), failure)],
        Outcome::Outputs(outputs) => outputs,
    };
    if outputs.is_empty() {
        return vec![Dispatch {
            actor: HAPPY_END.into(),
            envelope: input.clone(),
        }];
    }
    for output in &outputs {
        if let Some(route) = &output.route
            && let Err(reason) = check_route_change(&input.route, route)
        {
            let failure = Failure::processing(Kind::InvalidRoute, reason);
            return vec![to_error_end(actor, input.clone(), failure)];
        }
    }
    let count = outputs.len();
    let branch = Branch::from_headers(&input.headers);
    outputs
        .into_iter()
        .enumerate()
        .map(|(index, output)| {
            let route = output.route.unwrap_or_else(|| Route {
                current: input.route.current + 1,
                ..input.route.clone()
            });
            let mut headers = output.headers.unwrap_or_else(|| input.headers.clone());
            let (id, parent_id) = if index == 0 {
                (input.id.clone(), input.parent_id.clone())
            } else {
                (format!("{}-{index}", input.id), Some(input.id.clone()))
            };
            if count > 1 {
                // Counts and indices are bounded by the number of outputs in memory.
                let (index, count) = (index as u32, count as u32);
                branch.child(&input.id, index, count).write_to(&mut headers);
            } else {
                branch.write_to(&mut headers);
            }
            let next = route.current_actor().unwrap_or(HAPPY_END).to_owned();
            Dispatch {
                actor: next,
                envelope: Envelope {
                    id: output.id.unwrap_or(id),
                    parent_id: output.parent_id.or(parent_id),
                    route,
                    headers,
                    payload: output.payload,
                },
            }
        })
        .collect()
}

/// Checks an envelope-mode route change against the route the actor received.
///
/// The actors already visited (`actors[0..=current]`) must stay as they were, and
/// `current` must move forward. A `current` at or past the end of the route finishes
/// it: the envelope goes to happy-end as returned, as Asya's sidecar sends it (its
/// `test_invalid_route_current`). Asya lets `current` stay or go back, which routes an
/// envelope to an actor it already passed, in a loop a handler's bug never leaves; here
/// that is an error of the actor (a difference the README names).
pub fn check_route_change(incoming: &Route, returned: &Route) -> Result<(), String> {
    let kept = incoming.current + 1;
    if returned.actors.len() < kept || returned.actors[..kept] != incoming.actors[..kept] {
        return Err(format!(
            "the returned route changed actors[0..={}] (was {:?}, returned {:?})",
            incoming.current, incoming.actors, returned.actors
        ));
    }
    if returned.current < kept {
        return Err(format!(
            "the returned route.current = {} does not move forward (it must be at least {kept})",
            returned.current,
        ));
    }
    Ok(())
}

/// The error-end envelope of a failed call: the original envelope, route unchanged,
/// its payload wrapped as Asya does.
pub fn to_error_end(actor: &str, input: Envelope, failure: Failure) -> Dispatch {
    let payload = error_payload(actor, &failure, input.payload);
    Dispatch {
        actor: ERROR_END.into(),
        envelope: Envelope { payload, ..input },
    }
}

/// The error-end envelope of bytes that were not a valid envelope for `actor`.
/// `fallback_id` names it when no id could be read.
pub fn reject(actor: &str, rejected: Rejected, fallback_id: impl FnOnce() -> String) -> Dispatch {
    let failure = Failure {
        code: rejected.error.code(),
        kind: rejected.error.kind(),
        message: rejected.error.to_string(),
        traceback: None,
        refused_hosts: Vec::new(),
    };
    let route = rejected.route.unwrap_or_else(empty_route);
    Dispatch {
        actor: ERROR_END.into(),
        envelope: Envelope {
            id: rejected.id.unwrap_or_else(fallback_id),
            parent_id: rejected.parent_id,
            route,
            headers: rejected.headers,
            payload: error_payload(actor, &failure, rejected.original_payload),
        },
    }
}

/// The error-end envelope of an envelope routed to an actor that does not exist.
pub fn unknown_actor(from: &str, dispatch: Dispatch) -> Dispatch {
    let missing = dispatch.actor;
    let failure = Failure {
        code: Code::Route,
        kind: Kind::UnknownActor,
        message: format!("no actor named `{missing}` is served"),
        traceback: None,
        refused_hosts: Vec::new(),
    };
    to_error_end(from, dispatch.envelope, failure)
}

/// What an error-end payload says went wrong: its `details.message`, else its `error`
/// code (a payload an outside producer wrote may have only that).
pub fn error_message(payload: &Value) -> Option<&str> {
    payload["details"]["message"]
        .as_str()
        .or(payload["error"].as_str())
}

/// The actor an error-end payload says failed.
pub fn error_actor(payload: &Value) -> Option<&str> {
    payload["details"]["actor"].as_str()
}

/// The payload of an error-end envelope. What the node adds is cut to fit the room
/// kept for it (see [`crate::envelope::limits`]).
fn error_payload(actor: &str, failure: &Failure, original: Value) -> Value {
    let mut details = Map::new();
    details.insert(
        "message".into(),
        json!(cap_start(&failure.message, MESSAGE_CAP)),
    );
    details.insert(
        "type".into(),
        json!(cap_start(failure.kind.as_str(), TYPE_CAP)),
    );
    if let Some(traceback) = &failure.traceback {
        details.insert("traceback".into(), json!(cap_end(traceback, TRACEBACK_CAP)));
    }
    details.insert("actor".into(), json!(actor));
    if !failure.refused_hosts.is_empty() {
        let refused: Vec<String> = failure
            .refused_hosts
            .iter()
            .take(REFUSED_HOSTS_CAP)
            .map(|host| cap_start(host, TYPE_CAP))
            .collect();
        details.insert("refused_hosts".into(), json!(refused));
    }
    json!({
        "error": cap_start(failure.code.as_str(), TYPE_CAP),
        "details": details,
        "original_payload": original,
    })
}

/// The error-end envelope of an input too large to carry in a wrapper: the input
/// itself was moved whole to `kept_in`, and the wrapper says so instead.
pub fn oversized(actor: &str, bytes: &[u8], error: EnvelopeError, kept_in: &str) -> Dispatch {
    let failure = Failure {
        code: error.code(),
        kind: error.kind(),
        message: format!("{error}; the message was moved unchanged to `{kept_in}`"),
        traceback: None,
        refused_hosts: Vec::new(),
    };
    let (id, parent_id, route, headers) = match Envelope::parse(bytes) {
        Ok(envelope) => (
            Some(envelope.id),
            envelope.parent_id,
            envelope.route,
            envelope.headers,
        ),
        Err(rejected) => (
            rejected.id,
            rejected.parent_id,
            rejected.route.unwrap_or_else(empty_route),
            rejected.headers,
        ),
    };
    Dispatch {
        actor: ERROR_END.into(),
        envelope: Envelope {
            id: id.unwrap_or_else(unidentified),
            parent_id,
            route,
            headers,
            payload: error_payload(actor, &failure, Value::Null),
        },
    }
}

/// An id for an envelope whose own could not be read.
pub fn unidentified() -> String {
    format!("unidentified-{}", uuid::Uuid::new_v4())
}

fn empty_route() -> Route {
    Route {
        actors: Vec::new(),
        current: 0,
        metadata: None,
    }
}

/// The reason an envelope was rejected, as a one-line string for logs.
pub fn describe(error: &EnvelopeError) -> String {
    format!("{}: {error}", error.code())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::branch::{BRANCH_HEADER, ROOT_HEADER};
    use crate::envelope::limits::ERROR_ROOM;

    fn envelope(actors: &[&str], current: usize) -> Envelope {
        let mut headers = Headers::new();
        headers.insert("traceparent".into(), "00-abc-01".into());
        Envelope {
            id: "e1".into(),
            parent_id: None,
            route: Route {
                actors: actors.iter().map(|a| a.to_string()).collect(),
                current,
                metadata: Some(json!({"job": 1})),
            },
            headers,
            payload: json!({"n": 1}),
        }
    }

    #[test]
    fn one_result_goes_to_the_next_actor_with_headers_and_metadata() {
        let input = envelope(&["a", "b"], 0);
        let out = route_outcome(
            "a",
            &input,
            Outcome::Outputs(vec![Output::payload(json!(2))]),
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].actor, "b");
        assert_eq!(out[0].envelope.id, "e1");
        assert_eq!(out[0].envelope.route.current, 1);
        assert_eq!(out[0].envelope.route.metadata, Some(json!({"job": 1})));
        assert_eq!(out[0].envelope.headers["traceparent"], "00-abc-01");
        assert_eq!(out[0].envelope.payload, json!(2));
    }

    #[test]
    fn the_last_actor_sends_to_happy_end() {
        let input = envelope(&["a", "b"], 1);
        let out = route_outcome(
            "b",
            &input,
            Outcome::Outputs(vec![Output::payload(json!(3))]),
        );
        assert_eq!(out[0].actor, HAPPY_END);
        assert_eq!(out[0].envelope.route.current, 2);
    }

    #[test]
    fn fan_out_names_children_and_marks_branches() {
        let input = envelope(&["a", "b"], 0);
        let outputs = (0..3).map(|i| Output::payload(json!(i))).collect();
        let out = route_outcome("a", &input, Outcome::Outputs(outputs));
        let ids: Vec<_> = out.iter().map(|d| d.envelope.id.as_str()).collect();
        assert_eq!(ids, ["e1", "e1-1", "e1-2"]);
        assert_eq!(out[0].envelope.parent_id, None);
        assert_eq!(out[1].envelope.parent_id.as_deref(), Some("e1"));
        assert_eq!(out[2].envelope.parent_id.as_deref(), Some("e1"));
        assert_eq!(out[2].envelope.headers[BRANCH_HEADER], "2/3");
        assert_eq!(out[2].envelope.headers[ROOT_HEADER], "e1");
        assert!(out.iter().all(|d| d.actor == "b"));
    }

    #[test]
    fn no_result_sends_the_original_to_happy_end() {
        let input = envelope(&["a", "b"], 0);
        let out = route_outcome("a", &input, Outcome::Outputs(vec![]));
        assert_eq!(
            out,
            vec![Dispatch {
                actor: HAPPY_END.into(),
                envelope: input
            }]
        );
    }

    #[test]
    fn failure_sends_the_original_to_error_end() {
        let input = envelope(&["a", "b"], 0);
        let failure = Failure::processing(Kind::Actor("ValueError".into()), "bad");
        let out = route_outcome("a", &input, Outcome::Failed(failure));
        assert_eq!(out[0].actor, ERROR_END);
        assert_eq!(out[0].envelope.route, input.route);
        let payload = &out[0].envelope.payload;
        assert_eq!(payload["error"], "processing_error");
        assert_eq!(payload["details"]["type"], "ValueError");
        assert_eq!(payload["details"]["message"], "bad");
        assert_eq!(payload["original_payload"], json!({"n": 1}));
    }

    #[test]
    fn envelope_mode_may_extend_the_route() {
        let input = envelope(&["a", "b"], 0);
        let route = Route {
            actors: vec!["a".into(), "b".into(), "c".into()],
            current: 1,
            metadata: None,
        };
        let output = Output {
            route: Some(route.clone()),
            ..Output::payload(json!(1))
        };
        let out = route_outcome("a", &input, Outcome::Outputs(vec![output]));
        assert_eq!(out[0].actor, "b");
        assert_eq!(out[0].envelope.route, route);
    }

    #[test]
    fn envelope_mode_may_finish_the_route() {
        let input = envelope(&["a", "b"], 0);
        let route = Route {
            actors: vec!["a".into(), "b".into()],
            current: 2,
            metadata: None,
        };
        let output = Output {
            route: Some(route),
            ..Output::payload(json!(1))
        };
        let out = route_outcome("a", &input, Outcome::Outputs(vec![output]));
        assert_eq!(out[0].actor, HAPPY_END);
    }

    #[test]
    fn a_current_past_the_end_goes_to_happy_end_as_returned() {
        // Asya's test_invalid_route_current: a two-actor route, current = 7.
        let input = envelope(&["a", "b"], 0);
        let route = Route {
            actors: vec!["a".into(), "b".into()],
            current: 7,
            metadata: None,
        };
        let output = Output {
            route: Some(route.clone()),
            ..Output::payload(input.payload.clone())
        };
        let out = route_outcome("a", &input, Outcome::Outputs(vec![output]));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].actor, HAPPY_END);
        assert_eq!(
            out[0].envelope.route, route,
            "the route as the actor returned it"
        );
        assert_eq!(out[0].envelope.payload, input.payload);
        assert_eq!(out[0].envelope.id, input.id);
    }

    #[test]
    fn envelope_mode_route_changes_are_checked() {
        let incoming = envelope(&["a", "b", "c"], 1).route;
        let route = |actors: &[&str], current| Route {
            actors: actors.iter().map(|a| a.to_string()).collect(),
            current,
            metadata: None,
        };
        assert!(check_route_change(&incoming, &route(&["a", "b", "x"], 2)).is_ok());
        assert!(check_route_change(&incoming, &route(&["a", "b"], 2)).is_ok());
        assert!(check_route_change(&incoming, &route(&["z", "b", "c"], 2)).is_err());
        assert!(check_route_change(&incoming, &route(&["a"], 1)).is_err());
        assert!(check_route_change(&incoming, &route(&["a", "b", "c"], 1)).is_err());
        assert!(check_route_change(&incoming, &route(&["a", "b", "c"], 1)).is_err());
        assert!(check_route_change(&incoming, &route(&["a", "b", "c"], 0)).is_err());
        assert!(check_route_change(&incoming, &route(&["a", "b", "c"], 4)).is_ok());

        let input = envelope(&["a", "b"], 0);
        let output = Output {
            route: Some(route(&["hijack", "b"], 1)),
            ..Output::payload(json!(1))
        };
        let out = route_outcome("a", &input, Outcome::Outputs(vec![output]));
        assert_eq!(out[0].actor, ERROR_END);
        assert_eq!(out[0].envelope.payload["details"]["type"], "invalid_route");
    }

    #[test]
    fn rejected_bytes_go_to_error_end_with_their_reason() {
        let rejected = Envelope::parse(b"{oops").unwrap_err();
        let out = reject("a", *rejected, || "generated".into());
        assert_eq!(out.actor, ERROR_END);
        assert_eq!(out.envelope.id, "generated");
        assert_eq!(out.envelope.payload["error"], "msg_parsing_error");
        assert_eq!(out.envelope.payload["details"]["type"], "invalid_json");
        assert_eq!(out.envelope.payload["original_payload"], "{oops");
    }

    #[test]
    fn a_wrapper_adds_no_more_than_the_room_kept_for_it() {
        let input = envelope(&["a"], 0);
        let size = input.to_bytes().len();
        let worst = "\u{1}".repeat(100_000);
        let failure = Failure {
            code: Code::Other(worst.clone()),
            kind: Kind::Actor(worst.clone()),
            message: worst.clone(),
            traceback: Some(worst),
            refused_hosts: Vec::new(),
        };
        let out = route_outcome("a", &input, Outcome::Failed(failure));
        let wrapped = out[0].envelope.to_bytes().len();
        assert!(
            wrapped - size <= ERROR_ROOM,
            "{} bytes added",
            wrapped - size
        );
    }

    #[test]
    fn routing_to_a_missing_actor_fails_the_envelope() {
        let input = envelope(&["a", "nope"], 0);
        let out = route_outcome(
            "a",
            &input,
            Outcome::Outputs(vec![Output::payload(json!(1))]),
        );
        let failed = unknown_actor("a", out.into_iter().next().unwrap());
        assert_eq!(failed.actor, ERROR_END);
        assert_eq!(failed.envelope.payload["details"]["type"], "unknown_actor");
        assert_eq!(failed.envelope.payload["original_payload"], json!(1));
    }
}
