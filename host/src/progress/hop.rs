//! The events of one hop, decided from plain values: the envelope taken, and the
//! dispatches its results became. No clock here; the caller passes the time.

use super::event::{At, Hop, ProgressEvent, Stage};
use crate::branch::BRANCH_HEADER;
use crate::envelope::Envelope;
use crate::records::ERROR_END;
use crate::route_rules::Dispatch;
use std::sync::Arc;

/// Who and where, for the events of `envelope`'s hop at `actor`.
pub fn hop_of(actor: &str, envelope: &Envelope) -> Arc<Hop> {
    Arc::new(Hop {
        envelope_id: envelope.id.clone(),
        branch: envelope
            .headers
            .get(BRANCH_HEADER)
            .cloned()
            .unwrap_or_default(),
        actor: actor.to_owned(),
        index: envelope.route.current,
        route: envelope.route.actors.clone(),
    })
}

/// `received` and `processing`: the envelope was taken and handed to its actor.
pub fn started(hop: &Arc<Hop>, at: At) -> [ProgressEvent; 2] {
    [
        ProgressEvent::new(hop.clone(), Stage::Received, at),
        ProgressEvent::new(hop.clone(), Stage::Processing, at),
    ]
}

/// `completed` (with where the results went) or `failed` (the envelope went to
/// error-end, with the failure's message).
pub fn finished(hop: &Arc<Hop>, dispatches: &[&Dispatch], at: At) -> ProgressEvent {
    if let Some(failed) = dispatches
        .iter()
        .find(|dispatch| dispatch.actor == ERROR_END)
    {
        let mut event = ProgressEvent::new(hop.clone(), Stage::Failed, at);
        event.message =
            crate::route_rules::error_message(&failed.envelope.payload).map(str::to_owned);
        return event;
    }
    // Envelope mode: the route the results carry on with.
    let hop = match dispatches.first() {
        Some(first) if first.envelope.route.actors != hop.route => Arc::new(Hop {
            route: first.envelope.route.actors.clone(),
            ..Hop::clone(hop)
        }),
        _ => hop.clone(),
    };
    let mut event = ProgressEvent::new(hop, Stage::Completed, at);
    event.next = dispatches
        .iter()
        .map(|dispatch| dispatch.actor.clone())
        .collect();
    if dispatches.len() > 1 {
        event.children = dispatches
            .iter()
            .map(|dispatch| dispatch.envelope.id.clone())
            .collect();
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Route;
    use crate::failure::{Failure, Kind};
    use crate::route_rules::{Outcome, Output, route_outcome};
    use serde_json::json;

    fn envelope(actors: &[&str], current: usize) -> Envelope {
        Envelope {
            id: "e1".into(),
            parent_id: None,
            route: Route {
                actors: actors.iter().map(|actor| (*actor).to_owned()).collect(),
                current,
                metadata: None,
            },
            headers: Default::default(),
            payload: json!({"n": 1}),
        }
    }

    fn finish(actor: &str, input: &Envelope, outcome: Outcome) -> ProgressEvent {
        let dispatches = route_outcome(actor, input, outcome);
        let refs: Vec<&Dispatch> = dispatches.iter().collect();
        finished(&hop_of(actor, input), &refs, At::now())
    }

    #[test]
    fn a_hop_starts_with_received_then_processing_at_its_index() {
        let input = envelope(&["a", "b"], 1);
        let [received, processing] = started(&hop_of("b", &input), At::now());
        assert_eq!(received.stage, Stage::Received);
        assert_eq!(processing.stage, Stage::Processing);
        assert_eq!(received.hop.index, 1);
        assert_eq!(received.hop.route, vec!["a", "b"]);
        assert_eq!(received.hop.branch, "");
        assert!(
            Arc::ptr_eq(&received.hop, &processing.hop),
            "one hop, shared"
        );
    }

    #[test]
    fn a_completed_hop_names_the_next_actors_and_the_children() {
        let input = envelope(&["a", "b"], 0);
        let event = finish(
            "a",
            &input,
            Outcome::Outputs(vec![Output::payload(json!(1)), Output::payload(json!(2))]),
        );
        assert_eq!(event.stage, Stage::Completed);
        assert_eq!(event.next, vec!["b", "b"]);
        assert_eq!(event.children, vec!["e1", "e1-1"]);
        assert_eq!(event.message, None);
    }

    #[test]
    fn a_fan_out_child_carries_its_branch() {
        let input = envelope(&["a", "b"], 0);
        let dispatches = route_outcome(
            "a",
            &input,
            Outcome::Outputs(vec![Output::payload(json!(1)), Output::payload(json!(2))]),
        );
        let child = &dispatches[1].envelope;
        let [received, _] = started(&hop_of("b", child), At::now());
        assert_eq!(received.hop.branch, "1/2");
        assert_ne!(received.hop.envelope_id, "e1");
    }

    #[test]
    fn a_failed_hop_says_why() {
        let input = envelope(&["a"], 0);
        let failure = Failure::processing(Kind::InvalidRoute, "no such step".to_owned());
        let event = finish("a", &input, Outcome::Failed(failure));
        assert_eq!(event.stage, Stage::Failed);
        assert!(event.next.is_empty());
        assert_eq!(event.message.as_deref(), Some("no such step"));
    }

    #[test]
    fn an_envelope_mode_route_change_is_reported() {
        let input = envelope(&["a", "b"], 0);
        let changed = Output {
            route: Some(Route {
                actors: vec!["a".into(), "b".into(), "c".into()],
                current: 1,
                metadata: None,
            }),
            ..Output::payload(json!(1))
        };
        let event = finish("a", &input, Outcome::Outputs(vec![changed]));
        assert_eq!(event.hop.route, vec!["a", "b", "c"]);
    }

    #[test]
    fn the_last_hop_goes_to_happy_end() {
        let input = envelope(&["a"], 0);
        let event = finish(
            "a",
            &input,
            Outcome::Outputs(vec![Output::payload(json!(1))]),
        );
        assert_eq!(event.next, vec!["happy-end"]);
    }
}
