//! The end actors: `happy-end` and `error-end` record each envelope they take as an
//! outcome, then ack it. An outcome that cannot be written (the pool's store is down)
//! keeps its message queued until it can.

use super::{Router, UNAVAILABLE_PAUSE};
use crate::envelope::Envelope;
use crate::records::End;
use crate::route_rules;
use crate::trace::hop::HopEnd;
use crate::transport::{Delivery, TransportError};
use std::sync::Arc;

/// How many end-actor messages are recorded at once.
const END_CONCURRENCY: usize = 64;

impl Router {
    /// Declares and consumes `happy-end` and `error-end`, recording outcomes.
    pub async fn serve_end_actors(self: &Arc<Self>) -> Result<(), TransportError> {
        for end in [End::Happy, End::Error] {
            let name = self.settings.ends.of(end).to_owned();
            self.transport.declare(&name).await?;
            let subscription = self.transport.subscribe(&name, END_CONCURRENCY).await?;
            self.consume(
                name,
                subscription,
                END_CONCURRENCY,
                self.stop_consuming.clone(),
                move |router, delivery| async move { router.record_end(end, delivery).await },
            );
        }
        Ok(())
    }

    /// Records `envelope` as ended at `end`; once the node's store keeps it, its copy
    /// for object storage is queued behind (never waited on).
    async fn keep_outcome(
        &self,
        end: End,
        envelope: Envelope,
        size: usize,
    ) -> Result<(), crate::outcomes::RecordError> {
        let copy = self
            .settings
            .archive
            .as_ref()
            .map(|archive| (archive, archive.copy_of(end, &envelope)));
        let recorded = self.outcomes.record(end, envelope, size).await;
        if let (Ok(()), Some((archive, copy))) = (&recorded, copy) {
            archive.queue(copy);
        }
        recorded
    }

    /// An end actor's work: record the outcome, then ack.
    async fn record_end(&self, end: End, delivery: Delivery) {
        let size = delivery.body.len();
        let recorded = match Envelope::parse(&delivery.body) {
            Ok(mut envelope) => {
                delivery.restore_lineage(&mut envelope.headers);
                let span = self.open_span("record", self.settings.ends.of(end), &mut envelope);
                let recorded = self.keep_outcome(end, envelope, size).await;
                if let Some(span) = span {
                    self.close_span(
                        span,
                        match &recorded {
                            Ok(()) => HopEnd::Recorded,
                            Err(_) => HopEnd::Requeued,
                        },
                    );
                }
                recorded
            }
            Err(mut rejected) => {
                delivery.restore_lineage(&mut rejected.headers);
                tracing::warn!(
                    ?end,
                    "an end actor took an unreadable envelope: {}",
                    rejected.error
                );
                let dispatch =
                    route_rules::reject(end.actor_name(), *rejected, route_rules::unidentified);
                self.keep_outcome(End::Error, dispatch.envelope, size).await
            }
        };
        if let Err(error) = recorded {
            // The outcome must reach the pool's store: keep the message until it can.
            tracing::warn!(error = %crate::error_chain::chain(&error), "cannot record an outcome; the message goes back to its queue");
            tokio::time::sleep(UNAVAILABLE_PAUSE).await;
            if let Err(error) = delivery.ack.release().await {
                tracing::warn!(error = %crate::error_chain::chain(&error), "requeue failed; the transport will redeliver");
            }
            return;
        }
        if let Err(error) = delivery.ack.ack().await {
            tracing::warn!(error = %crate::error_chain::chain(&error), "ack of an end message failed");
        }
    }
}
