//! Handing results on: check each output against the node's bounds, send them all,
//! then settle the input.
//!
//! An output the next hop could not take (too large for a queue, too deep to wrap)
//! fails the call instead, so the input (which fit) goes to error-end whole. A send
//! to an actor nobody serves becomes an `unknown_actor` failure; any other send
//! failure gives the input back to its queue, since then nothing was lost yet (when
//! the node's own store refused, uncounted and after a pause).

use super::Router;
use crate::branch::{Lineage, is_bookkeeping};
use crate::envelope::limits::check_depth;
use crate::envelope::{Envelope, EnvelopeError};
use crate::failure::{Failure, Kind};
use crate::metrics::metrics;
use crate::progress::event::{At, Hop};
use crate::records::{ERROR_END, HAPPY_END};
use crate::route_rules::{self, Dispatch};
use crate::transport::{AckHandle, Delivery, Message, TransportError};
use bytes::Bytes;
use std::sync::Arc;

/// A dispatch and its message, serialised once: the JSON body without the node's
/// fan-out bookkeeping, which travels beside it.
struct Outgoing {
    dispatch: Dispatch,
    message: Message,
}

impl Outgoing {
    fn new(dispatch: Dispatch) -> Self {
        let headers = &dispatch.envelope.headers;
        let message = Message {
            body: Bytes::from(dispatch.envelope.to_bytes_without(is_bookkeeping)),
            lineage: Lineage::of(headers),
        };
        Outgoing { dispatch, message }
    }
}

/// Where the outputs of a hop went, for its log line: `upper`, `happy-end`, or
/// `split x3` for a fan-out (names in the order first sent).
fn destinations(outgoing: &[Outgoing]) -> String {
    let mut counted: Vec<(&str, usize)> = Vec::new();
    for outgoing in outgoing {
        let actor = outgoing.dispatch.actor.as_str();
        match counted.iter_mut().find(|(name, _)| *name == actor) {
            Some((_, count)) => *count += 1,
            None => counted.push((actor, 1)),
        }
    }
    counted
        .iter()
        .map(|(name, count)| match count {
            1 => (*name).to_owned(),
            count => format!("{name} x{count}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Router {
    /// Sends every dispatch, then acks; on a transport failure gives the input back.
    /// Returns whether the message went to error-end.
    pub(super) async fn dispatch_then_ack(
        &self,
        actor: &str,
        input: Option<&Envelope>,
        hop: Option<&Arc<Hop>>,
        dispatches: Vec<Dispatch>,
        ack: Box<dyn AckHandle>,
    ) -> bool {
        let outgoing = self.prepare(actor, input, dispatches);
        if let (Some(input), Some(hop)) = (input, hop) {
            self.finished(input, hop, &outgoing);
        }
        let envelope_id = input
            .map(|input| input.id.clone())
            .or_else(|| outgoing.first().map(|o| o.dispatch.envelope.id.clone()))
            .unwrap_or_default();
        // The line names the destinations only where it is written.
        let sent_to = self.logs_handled().then(|| destinations(&outgoing));
        let sends = outgoing
            .into_iter()
            .map(|outgoing| self.dispatch(actor, outgoing));
        let mut failed = false;
        for result in futures::future::join_all(sends).await {
            match result {
                Ok(to_error_end) => failed |= to_error_end,
                Err(error @ TransportError::Store(_)) => {
                    // The node's own disk refused: no fault of the message, so it goes
                    // back uncounted, after a pause.
                    tracing::warn!(actor, error = %crate::error_chain::chain(&error), "could not hand on every result; the input goes back to its queue");
                    self.give_back(actor, ack).await;
                    self.log_handled(actor, &envelope_id, "requeued", failed);
                    return failed;
                }
                Err(error) => {
                    tracing::warn!(actor, error = %crate::error_chain::chain(&error), "could not hand on every result; the input goes back to its queue");
                    if let Err(error) = ack.requeue().await {
                        tracing::warn!(actor, error = %crate::error_chain::chain(&error), "requeue failed; the transport will redeliver");
                    }
                    self.log_handled(actor, &envelope_id, "requeued", failed);
                    return failed;
                }
            }
        }
        if let Err(error) = ack.ack().await {
            tracing::warn!(actor, error = %crate::error_chain::chain(&error), "ack failed; the message may be delivered again");
        }
        let sent_to = sent_to.unwrap_or_default();
        self.log_handled(actor, &envelope_id, &sent_to, failed);
        failed
    }

    /// Notes where the results of `input`'s hop went (recorded before they are sent,
    /// so a follower sees the hop end before the submission does).
    fn finished(&self, input: &Envelope, hop: &Arc<Hop>, outgoing: &[Outgoing]) {
        let dispatches: Vec<&Dispatch> =
            outgoing.iter().map(|outgoing| &outgoing.dispatch).collect();
        let event = crate::progress::hop::finished(hop, &dispatches, At::now());
        let root = crate::branch::root_of(&input.headers, &input.id);
        self.note_progress(root, [event]);
    }

    /// Serialises the dispatches, failing the call when an output is out of bounds.
    fn prepare(
        &self,
        actor: &str,
        input: Option<&Envelope>,
        dispatches: Vec<Dispatch>,
    ) -> Vec<Outgoing> {
        let mut prepared = Vec::with_capacity(dispatches.len());
        for dispatch in dispatches {
            let outgoing = Outgoing::new(dispatch);
            if outgoing.dispatch.actor != ERROR_END
                && let Some(input) = input
                && let Err(failure) = self.check_output(&outgoing)
            {
                tracing::info!(actor, envelope_id = %input.id, kind = %failure.kind, "an output is out of bounds: {}", failure.message);
                let failed = route_rules::to_error_end(actor, input.clone(), failure);
                return vec![Outgoing::new(failed)];
            }
            prepared.push(outgoing);
        }
        prepared
    }

    fn check_output(&self, outgoing: &Outgoing) -> Result<(), Failure> {
        let envelope = &outgoing.dispatch.envelope;
        let too_deep = |error: EnvelopeError| {
            Failure::processing(Kind::OutputTooDeep, format!("an output: {error}"))
        };
        check_depth("payload", &envelope.payload).map_err(too_deep)?;
        if let Some(metadata) = &envelope.route.metadata {
            check_depth("route.metadata", metadata).map_err(too_deep)?;
        }
        self.settings
            .size
            .check(outgoing.message.body.len())
            .map_err(|error| {
                Failure::processing(
                    Kind::OutputTooLarge,
                    format!("an output is too large for the next hop: {error}"),
                )
            })
    }

    /// Sends one dispatch; an envelope for an actor nobody serves goes to error-end.
    /// Returns whether what was sent went to error-end.
    async fn dispatch(&self, from: &str, outgoing: Outgoing) -> Result<bool, TransportError> {
        let Outgoing { dispatch, message } = outgoing;
        match self.send(&dispatch.actor, message).await {
            Err(TransportError::NoSuchQueue(_)) if dispatch.actor != ERROR_END => {
                let failed = Outgoing::new(route_rules::unknown_actor(from, dispatch));
                self.send(ERROR_END, failed.message).await.map(|()| true)
            }
            other => other.map(|()| dispatch.actor == ERROR_END),
        }
    }

    /// Hands one envelope to the transport, counting it.
    pub(super) async fn send(&self, actor: &str, message: Message) -> Result<(), TransportError> {
        let message_type = match actor {
            HAPPY_END => "happy_end",
            ERROR_END => "error_end",
            _ => "routing",
        };
        let queue = self.settings.queues.for_actor(self.queue_of(actor));
        let m = metrics();
        m.sent
            .with_label_values(&[queue.as_str(), message_type])
            .inc();
        m.envelope_size
            .with_label_values(&["sent"])
            .observe(message.body.len() as f64);
        self.transport.send(self.queue_of(actor), message).await
    }

    /// The actor whose queue takes envelopes for `actor` (end actors may be renamed).
    pub(super) fn queue_of<'a>(&'a self, actor: &'a str) -> &'a str {
        match actor {
            HAPPY_END => &self.settings.ends.happy,
            ERROR_END => &self.settings.ends.error,
            other => other,
        }
    }

    /// An input too large to wrap: its outcome goes to error-end saying where the
    /// message went, and the message itself moves whole to the dead-letter queue.
    pub(super) async fn dead_letter(
        &self,
        actor: &str,
        delivery: Delivery,
        error: EnvelopeError,
    ) -> bool {
        let queue = self.settings.queues.for_actor(actor);
        let kept_in = self.settings.queues.dead_letter(&queue);
        tracing::warn!(actor, dead_letter_queue = %kept_in, "{error}; moving the message to its dead-letter queue");
        metrics()
            .failed
            .with_label_values(&[queue.as_str(), error.kind().as_str()])
            .inc();
        let outcome = Outgoing::new(route_rules::oversized(
            actor,
            &delivery.body,
            error.clone(),
            &kept_in,
        ));
        if let Err(send_error) = self.send(ERROR_END, outcome.message).await {
            tracing::warn!(actor, error = %crate::error_chain::chain(&send_error), "could not record the outcome; the input goes back to its queue");
            if let Err(error) = delivery.ack.requeue().await {
                tracing::warn!(actor, error = %crate::error_chain::chain(&error), "requeue failed; the transport will redeliver");
            }
            return true;
        }
        if let Err(settle_error) = delivery.ack.dead_letter(error.to_string()).await {
            tracing::warn!(actor, error = %crate::error_chain::chain(&settle_error), "could not dead-letter the message; the transport will redeliver it");
        }
        true
    }
}
