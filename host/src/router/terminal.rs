//! Actors that end routes: an external runtime in the place of an end actor, as
//! Asya's `ASYA_IS_END_ACTOR` sidecar runs its crew (`happy-end` / `error-end`
//! handlers that persist results).
//!
//! Such an actor takes every envelope of its queue whatever its route says (an end
//! receives finished routes, and error-end wrappers of any shape), is called with it,
//! and its results go nowhere: the input is acked once the call returned, and the end
//! is reported to the Asya gateway where one is set. Nothing can be sent onward, so
//! what fails stays on the queue instead of being dropped: a failed call goes back
//! counted (a poison message reaches the dead-letter queue at `--max-redeliveries`),
//! and bytes that are no envelope go to the dead-letter queue at once.

use super::Router;
use crate::actors::ActorSlot;
use crate::envelope::Envelope;
use crate::metrics::metrics;
use crate::progress::EndStatus;
use crate::route_rules::{self, Outcome};
use crate::transport::Delivery;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

impl Router {
    /// Whether `actor` ends routes (its results are not routed).
    pub(super) fn is_terminal(&self, actor: &str) -> bool {
        self.settings.terminal.iter().any(|name| name == actor)
    }

    /// One message of an actor that ends routes; whether it failed, or `None` when it
    /// went back to its queue uncalled.
    pub(super) async fn end_route(
        &self,
        slot: &ActorSlot,
        calls: &Semaphore,
        stop: &CancellationToken,
        delivery: Delivery,
    ) -> Option<bool> {
        let actor = slot.name();
        let queue = self.settings.queues.for_actor(actor);
        let envelope = match Envelope::parse(&delivery.body) {
            Ok(mut envelope) => {
                delivery.restore_lineage(&mut envelope.headers);
                envelope
            }
            Err(rejected) => {
                let reason = format!(
                    "not an envelope an end actor can take: {}",
                    route_rules::describe(&rejected.error)
                );
                tracing::warn!(
                    actor,
                    envelope_id = rejected.id.as_deref().unwrap_or("-"),
                    "{reason}; moving the message to its dead-letter queue"
                );
                metrics()
                    .failed
                    .with_label_values(&[queue.as_str(), rejected.error.kind().as_str()])
                    .inc();
                if let Err(error) = delivery.ack.dead_letter(reason).await {
                    tracing::warn!(actor, error = %crate::error_chain::chain(&error), "could not dead-letter the message; the transport will redeliver it");
                }
                return Some(true);
            }
        };
        let called = tokio::select! {
            biased;
            _ = stop.cancelled() => None,
            call = calls.acquire() => match call {
                Ok(_call) => {
                    let _calling = slot.call_started();
                    self.call(slot, &envelope, None).await
                }
                Err(_) => None,
            },
        };
        match called {
            None if stop.is_cancelled() => {
                if let Err(error) = delivery.ack.release().await {
                    tracing::warn!(actor, error = %crate::error_chain::chain(&error), "requeue failed; the transport will redeliver");
                }
                None
            }
            None => {
                self.give_back(actor, delivery.ack).await;
                None
            }
            Some(Outcome::Failed(failure)) => {
                tracing::warn!(
                    actor, envelope_id = %envelope.id, kind = %failure.kind,
                    "the end actor failed ({}); the message goes back to its queue, counted as a redelivery",
                    failure.message
                );
                if let Err(error) = delivery.ack.requeue().await {
                    tracing::warn!(actor, error = %crate::error_chain::chain(&error), "requeue failed; the transport will redeliver");
                }
                self.log_handled(actor, &envelope.id, "requeued", false);
                Some(true)
            }
            Some(Outcome::Outputs(outputs)) => {
                self.report_end(
                    actor,
                    &envelope,
                    outputs.into_iter().next().map(|o| o.payload),
                );
                if let Err(error) = delivery.ack.ack().await {
                    tracing::warn!(actor, error = %crate::error_chain::chain(&error), "ack failed; the message may be delivered again");
                }
                self.log_handled(actor, &envelope.id, "ended", false);
                Some(false)
            }
        }
    }

    /// Tells the gateway that `envelope` ended at `actor` (only the configured
    /// happy-end and error-end names are ends the gateway knows). The result is the
    /// first payload the actor returned, else the envelope's own, as Asya's sidecar
    /// reports it.
    fn report_end(&self, actor: &str, envelope: &Envelope, returned: Option<Value>) {
        let Some(reporter) = &self.settings.reporter else {
            return;
        };
        let end = if actor == self.settings.ends.happy {
            EndStatus::Succeeded
        } else if actor == self.settings.ends.error {
            EndStatus::Failed
        } else {
            tracing::debug!(
                actor,
                "an actor that ends routes but is neither end: no final status reported"
            );
            return;
        };
        let result = returned
            .filter(|payload| !payload.is_null())
            .unwrap_or_else(|| envelope.payload.clone());
        reporter.0.ended(envelope, end, &result);
    }
}
