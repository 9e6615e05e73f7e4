//! The events of one hop, decided from plain values: the envelope taken, and the
//! dispatches its results became. No clock here; the caller passes the time.

use super::event::{ProgressEvent, Stage};
use crate::branch::Branch;
use crate::envelope::Envelope;
use crate::records::ERROR_END;
use crate::routing::Dispatch;

/// The submission an envelope belongs to, and the event of its hop at `stage`.
fn event(actor: &str, envelope: &Envelope, stage: Stage, at: &str) -> (String, ProgressEvent) {
    let branch = Branch::from_headers(&envelope.headers);
    let root = branch.root_id(&envelope.id).to_owned();
    let event = ProgressEvent {
        seq: 0,
        envelope_id: envelope.id.clone(),
        branch: branch.path_text(),
        actor: actor.to_owned(),
        index: envelope.route.current,
        route: envelope.route.actors.clone(),
        stage,
        next: Vec::new(),
        children: Vec::new(),
        message: None,
        at: at.to_owned(),
    };
    (root, event)
}

/// `received` and `processing`: the envelope was taken and handed to its actor.
pub fn started(actor: &str, envelope: &Envelope, at: &str) -> (String, [ProgressEvent; 2]) {
    let (root, received) = event(actor, envelope, Stage::Received, at);
    let processing = ProgressEvent {
        stage: Stage::Processing,
        ..received.clone()
    };
    (root, [received, processing])
}

/// `completed` (with where the results went) or `failed` (the envelope went to
/// error-end, with the failure's message).
pub fn finished(
    actor: &str,
    input: &Envelope,
    dispatches: &[&Dispatch],
    at: &str,
) -> (String, ProgressEvent) {
    let failed = dispatches
        .iter()
        .find(|dispatch| dispatch.actor == ERROR_END);
    match failed {
        Some(failed) => {
            let (root, mut event) = event(actor, input, Stage::Failed, at);
            let payload = &failed.envelope.payload;
            event.message = payload["details"]["message"]
                .as_str()
                .or(payload["error"].as_str())
                .map(str::to_owned);
            (root, event)
        }
        None => {
            let (root, mut event) = event(actor, input, Stage::Completed, at);
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
            // Envelope mode: the route the results carry on with.
            if let Some(first) = dispatches.first()
                && first.envelope.route.actors != input.route.actors
            {
                event.route = first.envelope.route.actors.clone();
            }
            (root, event)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Route;
    use crate::failure::{Failure, Kind};
    use crate::routing::{Outcome, Output, route_outcome};
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

    #[test]
    fn a_hop_starts_with_received_then_processing_at_its_index() {
        let input = envelope(&["a", "b"], 1);
        let (root, [received, processing]) = started("b", &input, "t");
        assert_eq!(root, "e1");
        assert_eq!(received.stage, Stage::Received);
        assert_eq!(processing.stage, Stage::Processing);
        assert_eq!(received.index, 1);
        assert_eq!(received.route, vec!["a", "b"]);
        assert_eq!(received.branch, "");
    }

    #[test]
    fn a_completed_hop_names_the_next_actors() {
        let input = envelope(&["a", "b"], 0);
        let dispatches = route_outcome(
            "a",
            &input,
            Outcome::Outputs(vec![Output::payload(json!(1)), Output::payload(json!(2))]),
        );
        let (root, event) = finished("a", &input, &dispatches.iter().collect::<Vec<_>>(), "t");
        assert_eq!(root, "e1");
        assert_eq!(event.stage, Stage::Completed);
        assert_eq!(event.next, vec!["b", "b"]);
        assert_eq!(event.children, vec!["e1", "e1-1"]);
        assert_eq!(event.message, None);
    }

    #[test]
    fn a_fan_out_child_reports_to_its_root_with_its_branch() {
        let input = envelope(&["a", "b"], 0);
        let dispatches = route_outcome(
            "a",
            &input,
            Outcome::Outputs(vec![Output::payload(json!(1)), Output::payload(json!(2))]),
        );
        let child = &dispatches[1].envelope;
        let (root, [received, _]) = started("b", child, "t");
        assert_eq!(root, "e1");
        assert_eq!(received.branch, "1/2");
        assert_ne!(received.envelope_id, "e1");
    }

    #[test]
    fn a_failed_hop_says_why() {
        let input = envelope(&["a"], 0);
        let failure = Failure::processing(Kind::InvalidRoute, "no such step".to_owned());
        let dispatches = route_outcome("a", &input, Outcome::Failed(failure));
        let (_, event) = finished("a", &input, &dispatches.iter().collect::<Vec<_>>(), "t");
        assert_eq!(event.stage, Stage::Failed);
        assert!(event.next.is_empty());
        assert!(event.message.is_some(), "{event:?}");
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
        let dispatches = route_outcome("a", &input, Outcome::Outputs(vec![changed]));
        let (_, event) = finished("a", &input, &dispatches.iter().collect::<Vec<_>>(), "t");
        assert_eq!(event.route, vec!["a", "b", "c"]);
    }

    #[test]
    fn the_last_hop_goes_to_happy_end() {
        let input = envelope(&["a"], 0);
        let dispatches = route_outcome(
            "a",
            &input,
            Outcome::Outputs(vec![Output::payload(json!(1))]),
        );
        let (_, event) = finished("a", &input, &dispatches.iter().collect::<Vec<_>>(), "t");
        assert_eq!(event.next, vec!["happy-end"]);
    }
}
