//! One hop as named stages, each small enough to read at once: **take** (count the
//! delivery in; [`Taken`] keeps it counted as active until the hop is over, whichever
//! way it ends), **parse** (the bytes as an envelope, or a rejection routed to
//! error-end), **call** (wait for one of the actor's calls, or give the message back if
//! the actor stops first; what it emits on the way goes to the envelope's followers),
//! **route** (where the results go, with the hop's
//! `traceparent`), **hand on** (send every result, then ack:
//! [`super::dispatch`]) and **record** (the hop's counts and duration).
//!
//! [`Router::handle`] reads as that list; oversized messages (dead-lettered) and
//! actors that end routes ([`super::terminal`]) leave it before parsing.

use super::Router;
use crate::actors::ActorSlot;
use crate::envelope::Envelope;
use crate::metrics::metrics;
use crate::progress::Partials;
use crate::progress::event::Hop;
use crate::route_rules::{self, Dispatch};
use crate::runtime::ActorRuntime;
use crate::trace::TRACEPARENT;
use crate::trace::hop::HopEnd;
use crate::transport::{AckHandle, Delivery};
use prometheus::IntGauge;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::UNAVAILABLE_PAUSE;

/// A delivery counted in: received, its size, and active until dropped.
pub(super) struct Taken {
    queue: String,
    active: IntGauge,
    started: Instant,
}

impl Taken {
    /// Counts a delivery of `body_len` bytes from `queue` in.
    pub(super) fn new(queue: String, transport: &str, body_len: usize) -> Taken {
        let m = metrics();
        m.received
            .with_label_values(&[queue.as_str(), transport])
            .inc();
        m.envelope_size
            .with_label_values(&["received"])
            .observe(body_len as f64);
        let active = m.active.with_label_values(&[queue.as_str()]);
        active.inc();
        Taken {
            queue,
            active,
            started: Instant::now(),
        }
    }

    /// The hop handled the message (`failed`: it went to error-end or could not be
    /// handed on): its counts and duration.
    fn record(self, slot: &ActorSlot, failed: bool) {
        let elapsed = self.started.elapsed();
        slot.count(failed, elapsed);
        let m = metrics();
        let status = if failed { "error" } else { "success" };
        m.processed
            .with_label_values(&[self.queue.as_str(), status])
            .inc();
        m.processing_duration
            .with_label_values(&[self.queue.as_str()])
            .observe(elapsed.as_secs_f64());
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        self.active.dec();
    }
}

/// What parsing the delivery gave.
enum Parsed {
    /// An envelope for the actor.
    Envelope(Envelope, Box<dyn AckHandle>),
    /// Bytes that are no envelope, routed to error-end.
    Rejected(Dispatch, Box<dyn AckHandle>),
}

/// How waiting for a call and making it ended.
enum Called {
    /// The actor answered (a failure included).
    Answered(route_rules::Outcome),
    /// The actor stopped (removed, replaced, the node stopping) before a call was
    /// free: the message was never called.
    Stopped,
    /// The actor could not be run at all (its runtime is away).
    Unavailable,
}

/// Stamps the hop's own trace context on every result, so the next hop continues it.
pub(super) fn stamp_traceparent(dispatches: &mut [Dispatch], traceparent: &str) {
    for dispatch in dispatches {
        dispatch
            .envelope
            .headers
            .insert(TRACEPARENT.to_owned(), traceparent.to_owned());
    }
}

impl Router {
    /// One message of one actor, from delivery to ack; the call itself holds one of
    /// the actor's `calls`.
    pub(super) async fn handle(
        &self,
        slot: &ActorSlot,
        calls: &Semaphore,
        stop: &CancellationToken,
        delivery: Delivery,
    ) {
        let actor = slot.name();
        let taken = Taken::new(
            self.settings.queues.for_actor(actor),
            self.transport.name(),
            delivery.body.len(),
        );
        let failed = if let Err(error) = self.settings.size.check(delivery.body.len()) {
            self.dead_letter(actor, delivery, error).await
        } else if self.is_terminal(actor) {
            match self.end_route(slot, calls, stop, delivery).await {
                Some(failed) => failed,
                None => return,
            }
        } else {
            match self.parse(actor, delivery) {
                Parsed::Envelope(envelope, ack) => {
                    match self.run(slot, calls, stop, envelope, ack).await {
                        Some(failed) => failed,
                        None => return,
                    }
                }
                Parsed::Rejected(dispatch, ack) => {
                    self.dispatch_then_ack(actor, None, None, vec![dispatch], ack)
                        .await
                }
            }
        };
        taken.record(slot, failed);
    }

    /// Parse: the delivery's bytes as an envelope for `actor`, its lineage restored;
    /// or the rejection that goes to error-end, logged and counted.
    fn parse(&self, actor: &str, delivery: Delivery) -> Parsed {
        match Envelope::parse_for(&delivery.body, actor) {
            Ok(mut envelope) => {
                delivery.restore_lineage(&mut envelope.headers);
                Parsed::Envelope(envelope, delivery.ack)
            }
            Err(mut rejected) => {
                delivery.restore_lineage(&mut rejected.headers);
                tracing::warn!(
                    actor,
                    envelope_id = rejected.id.as_deref().unwrap_or("-"),
                    "rejected an envelope: {}",
                    route_rules::describe(&rejected.error)
                );
                let queue = self.settings.queues.for_actor(actor);
                metrics()
                    .failed
                    .with_label_values(&[queue.as_str(), rejected.error.kind().as_str()])
                    .inc();
                let dispatch = route_rules::reject(actor, *rejected, route_rules::unidentified);
                Parsed::Rejected(dispatch, delivery.ack)
            }
        }
    }

    /// Call, route and hand on one envelope; whether it failed, or `None` when the
    /// message went back to its queue uncalled.
    async fn run(
        &self,
        slot: &ActorSlot,
        calls: &Semaphore,
        stop: &CancellationToken,
        mut envelope: Envelope,
        ack: Box<dyn AckHandle>,
    ) -> Option<bool> {
        let actor = slot.name();
        let span = self.open_span("process", actor, &mut envelope);
        let hop = self.started(actor, &envelope);
        let called = self.call_when_free(slot, calls, stop, &envelope, hop.as_ref());
        let outcome = match called.await {
            Called::Answered(outcome) => outcome,
            Called::Stopped => {
                if let Some(span) = span {
                    self.close_span(span, HopEnd::Requeued);
                }
                if let Err(error) = ack.release().await {
                    tracing::warn!(actor, error = %crate::error_chain::chain(&error), "requeue failed; the transport will redeliver");
                }
                return None;
            }
            Called::Unavailable => {
                if let Some(span) = span {
                    self.close_span(span, HopEnd::Requeued);
                }
                self.give_back(actor, ack).await;
                return None;
            }
        };
        // Route: where the results go, carrying the hop's trace context on.
        let mut dispatches = route_rules::route_outcome(actor, &envelope, outcome);
        let end = span.as_ref().map(|span| {
            stamp_traceparent(&mut dispatches, &span.traceparent());
            crate::trace::hop::end_of(&dispatches)
        });
        // Hand on: every result sent, then the input acked.
        let failed = self
            .dispatch_then_ack(actor, Some(&envelope), hop.as_ref(), dispatches, ack)
            .await;
        if let (Some(span), Some(end)) = (span, end) {
            self.close_span(span, end.confirmed(failed));
        }
        Some(failed)
    }

    /// Call: waits for one of the actor's calls (unless it stops first), then calls it.
    async fn call_when_free(
        &self,
        slot: &ActorSlot,
        calls: &Semaphore,
        stop: &CancellationToken,
        envelope: &Envelope,
        hop: Option<&Arc<Hop>>,
    ) -> Called {
        tokio::select! {
            biased;
            _ = stop.cancelled() => Called::Stopped,
            call = calls.acquire() => match call {
                Ok(_call) => {
                    let _calling = slot.call_started();
                    match self.call(slot, envelope, hop).await {
                        Some(outcome) => Called::Answered(outcome),
                        None => Called::Unavailable,
                    }
                }
                Err(_) => Called::Unavailable,
            },
        }
    }

    /// Calls the actor (what it emits on the way goes to `hop`'s followers); `None`
    /// when it could not be run at all (its runtime is away).
    pub(super) async fn call(
        &self,
        slot: &ActorSlot,
        envelope: &Envelope,
        hop: Option<&Arc<Hop>>,
    ) -> Option<route_rules::Outcome> {
        let actor = slot.name();
        let queue = self.settings.queues.for_actor(actor);
        let m = metrics();
        let span = tracing::debug_span!("call", actor, envelope_id = %envelope.id);
        let call_started = std::time::Instant::now();
        let runtime = slot.current();
        let partials = self.partials_for(&*runtime, envelope, hop);
        let called = runtime.call_with(envelope, partials).instrument(span).await;
        m.runtime_duration
            .with_label_values(&[queue.as_str()])
            .observe(call_started.elapsed().as_secs_f64());
        match called {
            Ok(outcome) => {
                if let route_rules::Outcome::Failed(failure) = &outcome {
                    tracing::info!(
                        actor, envelope_id = %envelope.id, code = %failure.code,
                        kind = %failure.kind, "actor call failed: {}", failure.message
                    );
                    // The kind may be a type the guest chose: bounded per queue.
                    let reason = crate::metrics::bounded("failed", &queue, failure.kind.as_str());
                    m.failed
                        .with_label_values(&[queue.as_str(), reason.as_str()])
                        .inc();
                }
                Some(outcome)
            }
            Err(unavailable) => {
                tracing::warn!(actor, envelope_id = %envelope.id, "{unavailable}; the message goes back to its queue (not counted as a redelivery)");
                m.failed
                    .with_label_values(&[queue.as_str(), "unavailable"])
                    .inc();
                None
            }
        }
    }

    /// Where the call's partial output goes: the followers of its submission, where
    /// its progress is kept and its runtime can emit any; else nowhere.
    fn partials_for(
        &self,
        runtime: &dyn ActorRuntime,
        envelope: &Envelope,
        hop: Option<&Arc<Hop>>,
    ) -> Partials {
        match hop {
            Some(hop) if self.settings.keep_progress && runtime.emits_partials() => {
                let root = crate::branch::root_of(&envelope.headers, &envelope.id);
                Partials::to(self.outcomes.clone(), root.to_owned(), hop.clone())
            }
            _ => Partials::none(),
        }
    }

    /// Gives a message its actor could not take back to its queue, uncounted, after a
    /// pause (none once the node is stopping).
    pub(super) async fn give_back(&self, actor: &str, ack: Box<dyn AckHandle>) {
        tokio::select! {
            _ = self.stop_consuming.cancelled() => {}
            _ = tokio::time::sleep(UNAVAILABLE_PAUSE) => {}
        }
        if let Err(error) = ack.release().await {
            tracing::warn!(actor, error = %crate::error_chain::chain(&error), "requeue failed; the transport will redeliver");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Route;
    use serde_json::json;

    fn dispatch(actor: &str) -> Dispatch {
        Dispatch {
            actor: actor.to_owned(),
            envelope: Envelope {
                id: "e".into(),
                parent_id: None,
                route: Route {
                    actors: vec![actor.to_owned()],
                    current: 0,
                    metadata: None,
                },
                headers: Default::default(),
                payload: json!({}),
            },
        }
    }

    #[test]
    fn every_result_carries_the_hops_trace_context() {
        let mut dispatches = vec![dispatch("a"), dispatch("b")];
        dispatches[1]
            .envelope
            .headers
            .insert(TRACEPARENT.to_owned(), "00-old-old-01".into());
        stamp_traceparent(&mut dispatches, "00-new-new-01");
        for dispatch in &dispatches {
            assert_eq!(dispatch.envelope.headers[TRACEPARENT], "00-new-new-01");
        }
    }

    #[test]
    fn a_hop_that_ends_early_is_active_no_longer() {
        let queue = "asya-hop-test-early";
        let active = || metrics().active.with_label_values(&[queue]).get();
        let taken = Taken::new(queue.to_owned(), "embedded", 10);
        assert_eq!(active(), 1);
        drop(taken);
        assert_eq!(active(), 0);
    }
}
