//! Handler modes: whether an actor may change where its results go.
//!
//! Asya names two modes. In `envelope` mode a handler may return whole envelopes and
//! rewrite their route (extend it, finish it early); in `payload` mode it returns
//! payloads only and the route moves on as declared. The contract lets every actor
//! return either shape, so the mode is a permission the node enforces: an actor set
//! to `payload` that returns a route, headers or an id fails the message as
//! `handler_mode` instead of redirecting it.

use crate::envelope::Envelope;
use crate::failure::{Failure, Kind};
use crate::route_rules::Outcome;
use crate::runtime::{ActorRuntime, Unavailable};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::sync::Arc;

pub use crate::records::HandlerMode;

/// An actor held to payload mode.
pub struct PayloadOnly {
    inner: Arc<dyn ActorRuntime>,
}

impl PayloadOnly {
    /// Holds `inner` to payload mode: results that change the route, headers or id fail.
    pub fn new(inner: Arc<dyn ActorRuntime>) -> Self {
        PayloadOnly { inner }
    }
}

/// `runtime` as `mode` allows it to act.
pub fn with_mode(runtime: Arc<dyn ActorRuntime>, mode: HandlerMode) -> Arc<dyn ActorRuntime> {
    match mode {
        HandlerMode::Envelope => runtime,
        HandlerMode::Payload => Arc::new(PayloadOnly::new(runtime)),
    }
}

/// Turns an outcome that steps outside payload mode into a failure.
fn enforce_payload(outcome: Outcome) -> Outcome {
    let Outcome::Outputs(outputs) = &outcome else {
        return outcome;
    };
    let stepped_out = outputs
        .iter()
        .any(|output| output.route.is_some() || output.headers.is_some() || output.id.is_some());
    if stepped_out {
        return Outcome::Failed(Failure::processing(
            Kind::HandlerMode,
            "the actor runs in payload mode but returned an envelope (a route, headers or an id); \
             set its handler_mode to `envelope` to let it change routes",
        ));
    }
    outcome
}

impl ActorRuntime for PayloadOnly {
    fn call<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Result<Outcome, Unavailable>> {
        self.inner
            .call(envelope)
            .map(|called| called.map(enforce_payload))
            .boxed()
    }

    fn call_with<'a>(
        &'a self,
        envelope: &'a Envelope,
        partials: crate::progress::Partials,
    ) -> BoxFuture<'a, Result<Outcome, Unavailable>> {
        self.inner
            .call_with(envelope, partials)
            .map(|called| called.map(enforce_payload))
            .boxed()
    }

    fn emits_partials(&self) -> bool {
        self.inner.emits_partials()
    }

    fn not_ready(&self) -> Option<String> {
        self.inner.not_ready()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Route;
    use crate::route_rules::Output;
    use serde_json::json;

    #[test]
    fn payload_mode_refuses_a_route_change() {
        let output = Output {
            route: Some(Route {
                actors: vec!["a".into(), "b".into()],
                current: 1,
                metadata: None,
            }),
            ..Output::payload(json!({}))
        };
        match enforce_payload(Outcome::Outputs(vec![output])) {
            Outcome::Failed(failure) => assert_eq!(failure.kind, Kind::HandlerMode),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn payload_mode_passes_payloads_and_failures() {
        let outputs = Outcome::Outputs(vec![Output::payload(json!({"n": 1}))]);
        assert_eq!(enforce_payload(outputs.clone()), outputs);
        let failed = Outcome::Failed(Failure::processing(Kind::Trap, "boom"));
        assert_eq!(enforce_payload(failed.clone()), failed);
    }
}
