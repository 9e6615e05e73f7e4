//! The routing loop: receive → run → route → ack, for every served actor.
//!
//! The router knows neither the broker nor wasmtime: it takes deliveries from a
//! [`Transport`], calls the actor's [`crate::runtime::ActorRuntime`], asks
//! [`crate::routing`] where the results go, sends them, and acks the input only after
//! every send returned (at-least-once). A send that fails for another reason than a
//! missing queue gives the input back to its queue instead.
//!
//! Concurrency is bounded per actor by a semaphore: a consumer takes a permit before it
//! takes a delivery, so at most `concurrency` messages of an actor are in flight and
//! the rest wait in the queue (backpressure).

use crate::actors::ActorSlot;
use crate::config::EndNames;
use crate::envelope::Envelope;
use crate::metrics::metrics;
use crate::outcomes::{End, Outcomes};
use crate::queues::QueueNames;
use crate::routing::{self, Dispatch, ERROR_END, HAPPY_END};
use crate::transport::{AckHandle, Delivery, Subscription, Transport, TransportError};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// How long a message whose actor is unavailable waits before it goes back.
const UNAVAILABLE_PAUSE: Duration = Duration::from_secs(1);

/// How many end-actor messages are recorded at once.
const END_CONCURRENCY: usize = 64;

type AckOf<T> = <<T as Transport>::Subscription as Subscription>::Ack;

/// The routing loop of one node.
pub struct Router<T: Transport> {
    transport: Arc<T>,
    outcomes: Arc<Outcomes>,
    ends: EndNames,
    queues: QueueNames,
    stop_consuming: CancellationToken,
    tasks: TaskTracker,
}

impl<T: Transport> Router<T> {
    pub fn new(transport: Arc<T>, outcomes: Arc<Outcomes>) -> Arc<Self> {
        Self::configured(
            transport,
            outcomes,
            EndNames::default(),
            QueueNames::default(),
        )
    }

    /// A router whose end actors may go by other names (Asya's `ASYA_ACTOR_HAPPY_END`)
    /// and whose metrics name queues with `queues`.
    pub fn configured(
        transport: Arc<T>,
        outcomes: Arc<Outcomes>,
        ends: EndNames,
        queues: QueueNames,
    ) -> Arc<Self> {
        Arc::new(Router {
            transport,
            outcomes,
            ends,
            queues,
            stop_consuming: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }

    pub fn transport(&self) -> &Arc<T> {
        &self.transport
    }

    /// The queue an actor consumes, as metrics name it.
    pub fn queue_name(&self, actor: &str) -> String {
        self.queues.for_actor(actor)
    }

    pub fn outcomes(&self) -> &Arc<Outcomes> {
        &self.outcomes
    }

    /// Declares the actor's queue and starts consuming it.
    /// Cancelling the returned token stops consuming this actor's queue alone: its
    /// messages stay queued, calls in flight finish.
    pub async fn serve(
        self: &Arc<Self>,
        slot: Arc<ActorSlot>,
    ) -> Result<CancellationToken, TransportError> {
        self.transport.declare(slot.name()).await?;
        let subscription = self
            .transport
            .subscribe(slot.name(), slot.concurrency())
            .await?;
        let permits = Arc::new(Semaphore::new(slot.concurrency()));
        let stop = self.stop_consuming.child_token();
        let router = self.clone();
        self.tasks.spawn(router.consume(
            subscription,
            permits,
            stop.clone(),
            move |router, delivery| {
                let slot = slot.clone();
                async move { router.handle(&slot, delivery).await }
            },
        ));
        Ok(stop)
    }

    /// Declares and consumes `happy-end` and `error-end`, recording outcomes.
    pub async fn serve_end_actors(self: &Arc<Self>) -> Result<(), TransportError> {
        for (name, end) in [
            (self.ends.happy.as_str(), End::Happy),
            (self.ends.error.as_str(), End::Error),
        ] {
            self.transport.declare(name).await?;
            let subscription = self.transport.subscribe(name, END_CONCURRENCY).await?;
            let permits = Arc::new(Semaphore::new(END_CONCURRENCY));
            let router = self.clone();
            let stop = self.stop_consuming.clone();
            self.tasks.spawn(router.consume(
                subscription,
                permits,
                stop,
                move |router, delivery| async move { router.record_end(end, delivery).await },
            ));
        }
        Ok(())
    }

    /// Takes deliveries while permits allow, running `handle` on each in its own task.
    async fn consume<F, Fut>(
        self: Arc<Self>,
        mut subscription: T::Subscription,
        permits: Arc<Semaphore>,
        stop: CancellationToken,
        handle: F,
    ) where
        F: Fn(Arc<Self>, Delivery<AckOf<T>>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        loop {
            let permit = tokio::select! {
                _ = stop.cancelled() => break,
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let delivery = tokio::select! {
                _ = stop.cancelled() => break,
                delivery = subscription.next() => match delivery {
                    Some(delivery) => delivery,
                    None => break,
                },
            };
            let work = handle(self.clone(), delivery);
            self.tasks.spawn(async move {
                work.await;
                drop(permit);
            });
        }
    }

    /// One message of one actor, from delivery to ack.
    async fn handle(&self, slot: &ActorSlot, delivery: Delivery<AckOf<T>>) {
        let actor = slot.name();
        let queue = self.queues.for_actor(actor);
        let m = metrics();
        m.received
            .with_label_values(&[queue.as_str(), self.transport.name()])
            .inc();
        m.envelope_size
            .with_label_values(&["received"])
            .observe(delivery.body.len() as f64);
        let active = m.active.with_label_values(&[queue.as_str()]);
        active.inc();
        let started = std::time::Instant::now();
        let dispatches = match Envelope::parse_for(&delivery.body, actor) {
            Ok(envelope) => {
                let span = tracing::debug_span!("call", actor, envelope_id = %envelope.id);
                let call_started = std::time::Instant::now();
                let called = slot.current().call(&envelope).instrument(span).await;
                m.runtime_duration
                    .with_label_values(&[queue.as_str()])
                    .observe(call_started.elapsed().as_secs_f64());
                let outcome = match called {
                    Ok(outcome) => outcome,
                    Err(unavailable) => {
                        tracing::warn!(actor, envelope_id = %envelope.id, "{unavailable}; the message goes back to its queue (not counted as a redelivery)");
                        m.failed
                            .with_label_values(&[queue.as_str(), "unavailable"])
                            .inc();
                        active.dec();
                        tokio::time::sleep(UNAVAILABLE_PAUSE).await;
                        if let Err(error) = delivery.ack.release().await {
                            tracing::warn!(actor, %error, "requeue failed; the transport will redeliver");
                        }
                        return;
                    }
                };
                if let routing::Outcome::Failed(failure) = &outcome {
                    tracing::info!(
                        actor, envelope_id = %envelope.id, code = %failure.code,
                        kind = %failure.kind, "actor call failed: {}", failure.message
                    );
                    m.failed
                        .with_label_values(&[queue.as_str(), failure.kind.as_str()])
                        .inc();
                }
                routing::route_outcome(actor, &envelope, outcome)
            }
            Err(rejected) => {
                tracing::warn!(
                    actor,
                    envelope_id = rejected.id.as_deref().unwrap_or("-"),
                    "rejected an envelope: {}",
                    routing::describe(&rejected.error)
                );
                m.failed
                    .with_label_values(&[queue.as_str(), rejected.error.kind()])
                    .inc();
                vec![routing::reject(actor, *rejected, || {
                    format!("unidentified-{}", uuid::Uuid::new_v4())
                })]
            }
        };
        let status = if dispatches.iter().any(|d| d.actor == ERROR_END) {
            "error"
        } else {
            "success"
        };
        self.dispatch_then_ack(actor, dispatches, delivery.ack)
            .await;
        m.processed
            .with_label_values(&[queue.as_str(), status])
            .inc();
        m.processing_duration
            .with_label_values(&[queue.as_str()])
            .observe(started.elapsed().as_secs_f64());
        active.dec();
    }

    /// Sends every dispatch, then acks; on a transport failure gives the input back.
    async fn dispatch_then_ack(&self, actor: &str, dispatches: Vec<Dispatch>, ack: AckOf<T>) {
        let sends = dispatches
            .into_iter()
            .map(|dispatch| self.dispatch(actor, dispatch));
        let results = futures::future::join_all(sends).await;
        if let Some(error) = results.into_iter().find_map(Result::err) {
            tracing::warn!(actor, %error, "could not hand on every result; the input goes back to its queue");
            if let Err(error) = ack.requeue().await {
                tracing::warn!(actor, %error, "requeue failed; the transport will redeliver");
            }
            return;
        }
        if let Err(error) = ack.ack().await {
            tracing::warn!(actor, %error, "ack failed; the message may be delivered again");
        }
    }

    /// Sends one dispatch; an envelope for an actor nobody serves goes to error-end.
    async fn dispatch(&self, from: &str, dispatch: Dispatch) -> Result<(), TransportError> {
        match self.send(&dispatch).await {
            Err(TransportError::NoSuchQueue(_)) if dispatch.actor != ERROR_END => {
                self.send(&routing::unknown_actor(from, dispatch)).await
            }
            other => other,
        }
    }

    /// Hands one envelope to the transport, counting it.
    async fn send(&self, dispatch: &Dispatch) -> Result<(), TransportError> {
        let body = Bytes::from(dispatch.envelope.to_bytes());
        self.count_sent(&dispatch.actor, body.len());
        self.transport
            .send(self.queue_of(&dispatch.actor), body)
            .await
    }

    fn count_sent(&self, actor: &str, size: usize) {
        let message_type = match actor {
            HAPPY_END => "happy_end",
            ERROR_END => "error_end",
            _ => "routing",
        };
        let queue = self.queues.for_actor(self.queue_of(actor));
        let m = metrics();
        m.sent
            .with_label_values(&[queue.as_str(), message_type])
            .inc();
        m.envelope_size
            .with_label_values(&["sent"])
            .observe(size as f64);
    }

    /// The actor whose queue takes envelopes for `actor` (end actors may be renamed).
    fn queue_of<'a>(&'a self, actor: &'a str) -> &'a str {
        match actor {
            HAPPY_END => &self.ends.happy,
            ERROR_END => &self.ends.error,
            other => other,
        }
    }

    /// An end actor's work: record the outcome, then ack.
    async fn record_end(&self, end: End, delivery: Delivery<AckOf<T>>) {
        let recorded = match Envelope::parse(&delivery.body) {
            Ok(envelope) => self.outcomes.record(end, envelope).await,
            Err(rejected) => {
                tracing::warn!(
                    ?end,
                    "an end actor took an unreadable envelope: {}",
                    rejected.error
                );
                let dispatch = routing::reject(HAPPY_END, *rejected, || {
                    format!("unidentified-{}", uuid::Uuid::new_v4())
                });
                self.outcomes.record(End::Error, dispatch.envelope).await
            }
        };
        if let Err(error) = recorded {
            // The outcome must reach the pool's store: keep the message until it can.
            tracing::warn!(%error, "cannot record an outcome; the message goes back to its queue");
            tokio::time::sleep(UNAVAILABLE_PAUSE).await;
            if let Err(error) = delivery.ack.release().await {
                tracing::warn!(%error, "requeue failed; the transport will redeliver");
            }
            return;
        }
        if let Err(error) = delivery.ack.ack().await {
            tracing::warn!(%error, "ack of an end message failed");
        }
    }

    /// Puts a new envelope on the queue of its first actor.
    pub async fn submit(&self, envelope: &Envelope) -> Result<(), TransportError> {
        let actor = envelope
            .route
            .current_actor()
            .unwrap_or(HAPPY_END)
            .to_owned();
        self.outcomes.submitted(&envelope.id).await;
        self.transport
            .send(self.queue_of(&actor), Bytes::from(envelope.to_bytes()))
            .await
    }

    /// Puts raw bytes on an actor's queue, as an outside producer would.
    pub async fn publish_raw(&self, actor: &str, body: Bytes) -> Result<(), TransportError> {
        self.transport.send(actor, body).await
    }

    /// Stops the node's routing within `grace`: lets the embedded queues drain, stops
    /// consuming, and waits for in-flight messages. Returns how many tasks were still
    /// running when the grace period ran out.
    pub async fn shutdown(&self, grace: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + grace;
        while self.transport.pending().is_some_and(|pending| pending > 0)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.stop_consuming.cancel();
        self.tasks.close();
        if tokio::time::timeout_at(deadline, self.tasks.wait())
            .await
            .is_err()
        {
            return self.tasks.len();
        }
        0
    }
}
