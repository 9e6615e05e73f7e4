//! The routing loop: receive → run → route → ack, for every served actor.
//!
//! The router knows neither the broker nor wasmtime: it takes deliveries from a
//! [`Transport`], calls the actor's [`crate::runtime::ActorRuntime`], asks
//! [`crate::routing`] where the results go, sends them ([`dispatch`]), and acks the
//! input only after every send returned (at-least-once). End actors record outcomes
//! ([`ends`]); new envelopes come in through [`submit`]; [`stop`] is the graceful stop.
//!
//! Concurrency is bounded per actor by a semaphore: a consumer takes a permit before it
//! takes a delivery, so at most `concurrency` messages of an actor are in flight and
//! the rest wait in the queue (backpressure).

mod dispatch;
mod ends;
pub mod stop;
pub mod submit;
mod terminal;

use crate::actors::ActorSlot;
use crate::envelope::Envelope;
use crate::envelope::limits::SizeLimit;
use crate::metrics::metrics;
use crate::outcomes::Outcomes;
use crate::progress::event::{At, Hop};
use crate::progress::{ProgressEvent, Reporter};
use crate::queues::QueueNames;
use crate::records::EndNames;
use crate::routing;
use crate::trace::hop::{HopEnd, HopFacts};
use crate::trace::{Exporter, HopSpan, TRACEPARENT};
use crate::transport::{AckHandle, Delivery, Subscription, Transport, TransportError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// How long a message whose actor is unavailable waits before it goes back.
const UNAVAILABLE_PAUSE: Duration = Duration::from_secs(1);

/// How a router names and bounds what it moves.
#[derive(Debug, Clone)]
pub struct RouterSettings {
    /// The names of the end actors (Asya's `ASYA_ACTOR_HAPPY_END`).
    pub ends: EndNames,
    /// Queue names, for metrics and dead-letter queues.
    pub queues: QueueNames,
    /// How large an envelope may be.
    pub size: SizeLimit,
    /// Where progress events go besides the node's own record.
    pub reporter: Option<Reporter>,
    /// Object storage the end actors copy ended envelopes to.
    pub archive: Option<Arc<crate::archive::Archive>>,
    /// Whether progress events are kept with the outcomes.
    pub keep_progress: bool,
    /// Where hop spans go, when traces are exported.
    pub tracer: Option<Exporter>,
    /// Actors that end routes: taken whatever their route, results not routed
    /// ([`terminal`]).
    pub terminal: Vec<String>,
    /// One `info` line per message handled (else at `debug`).
    pub log_each_message: bool,
}

impl Default for RouterSettings {
    fn default() -> Self {
        RouterSettings {
            ends: EndNames::default(),
            queues: QueueNames::default(),
            size: SizeLimit::new(crate::defaults::MAX_ENVELOPE),
            reporter: None,
            archive: None,
            keep_progress: true,
            tracer: None,
            terminal: Vec::new(),
            log_each_message: false,
        }
    }
}

/// The routing loop of one node.
pub struct Router {
    transport: Arc<dyn Transport>,
    outcomes: Arc<Outcomes>,
    settings: RouterSettings,
    /// Cancelled first when the node stops: no new envelope is taken in.
    stopping: CancellationToken,
    /// Cancelled when consumers must stop taking deliveries (the parent of each
    /// consumer's own token).
    stop_consuming: CancellationToken,
    consumers: TaskTracker,
    /// One task per message in flight.
    messages: TaskTracker,
    /// The queues being consumed, with how many consumers each has.
    consumed: Mutex<HashMap<String, usize>>,
}

impl Router {
    /// A router over `transport`, recording ends in `outcomes`, with default settings.
    pub fn new(transport: Arc<dyn Transport>, outcomes: Arc<Outcomes>) -> Arc<Self> {
        Self::configured(transport, outcomes, RouterSettings::default())
    }

    /// A router over `transport`, recording ends in `outcomes`, with `settings`.
    pub fn configured(
        transport: Arc<dyn Transport>,
        outcomes: Arc<Outcomes>,
        settings: RouterSettings,
    ) -> Arc<Self> {
        Arc::new(Router {
            transport,
            outcomes,
            settings,
            stopping: CancellationToken::new(),
            stop_consuming: CancellationToken::new(),
            consumers: TaskTracker::new(),
            messages: TaskTracker::new(),
            consumed: Mutex::new(HashMap::new()),
        })
    }

    /// The transport messages come from and go to.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// Where ended envelopes are recorded.
    pub fn outcomes(&self) -> &Arc<Outcomes> {
        &self.outcomes
    }

    /// Cancelled once the node began to stop.
    pub fn stopping(&self) -> &CancellationToken {
        &self.stopping
    }

    /// A token that stops one consumer (and is cancelled when all stop).
    pub fn consumer_token(&self) -> CancellationToken {
        self.stop_consuming.child_token()
    }

    /// Declares the actor's queue and consumes it until the returned token is
    /// cancelled: its messages then stay queued, calls in flight finish.
    pub async fn serve(
        self: &Arc<Self>,
        slot: Arc<ActorSlot>,
    ) -> Result<CancellationToken, TransportError> {
        let stop = self.consumer_token();
        self.serve_until(slot, stop.clone()).await?;
        Ok(stop)
    }

    /// Declares the actor's queue and consumes it until `stop` is cancelled.
    pub async fn serve_until(
        self: &Arc<Self>,
        slot: Arc<ActorSlot>,
        stop: CancellationToken,
    ) -> Result<(), TransportError> {
        self.transport.declare(slot.name()).await?;
        let window = self.transport.handoff_window(slot.concurrency());
        let subscription = self.transport.subscribe(slot.name(), window).await?;
        let name = slot.name().to_owned();
        // The actor runs `concurrency` calls at once; the messages whose results are
        // on their way (sends waiting for the broker's confirm or the disk's commit,
        // then the ack) hold a place in the wider window only, so the next call does
        // not wait for the previous one's hand-off.
        let calls = Arc::new(Semaphore::new(slot.concurrency()));
        let stopped = stop.clone();
        self.consume(name, subscription, window, stop, move |router, delivery| {
            let (slot, calls, stopped) = (slot.clone(), calls.clone(), stopped.clone());
            async move { router.handle(&slot, &calls, &stopped, delivery).await }
        });
        Ok(())
    }

    /// Drops the metric series of an actor no longer served here.
    pub fn forget_metrics(&self, name: &str) {
        crate::metrics::forget_actor(name, &self.settings.queues.for_actor(name));
    }

    /// Closes actor `name`'s queue to new envelopes (it is no longer deployed); its
    /// messages stay for a later deploy.
    pub async fn retire(&self, name: &str) {
        if let Err(error) = self.transport.retire(name).await {
            tracing::warn!(actor = name, error = %crate::report::chain(&error), "could not close the queue to new envelopes");
        }
    }

    /// Takes deliveries while permits allow, running `handle` on each in its own task.
    fn consume<F, Fut>(
        self: &Arc<Self>,
        queue: String,
        mut subscription: Box<dyn Subscription>,
        concurrency: usize,
        stop: CancellationToken,
        handle: F,
    ) where
        F: Fn(Arc<Self>, Delivery) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let router = self.clone();
        let permits = Arc::new(Semaphore::new(concurrency));
        self.count_consumer(&queue, true);
        self.consumers.spawn(async move {
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
                let work = handle(router.clone(), delivery);
                router.messages.spawn(async move {
                    work.await;
                    drop(permit);
                });
            }
            router.count_consumer(&queue, false);
        });
    }

    fn count_consumer(&self, queue: &str, started: bool) {
        let mut consumed = self
            .consumed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = consumed.entry(queue.to_owned()).or_default();
        if started {
            *count += 1;
        } else {
            *count = count.saturating_sub(1);
            if *count == 0 {
                consumed.remove(queue);
            }
        }
    }

    /// The queues someone consumes now.
    fn consumed_queues(&self) -> Vec<String> {
        self.consumed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// One message of one actor, from delivery to ack; the call itself holds one of
    /// the actor's `calls`.
    async fn handle(
        &self,
        slot: &ActorSlot,
        calls: &Semaphore,
        stop: &CancellationToken,
        delivery: Delivery,
    ) {
        let actor = slot.name();
        let queue = self.settings.queues.for_actor(actor);
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
        let failed = match self.settings.size.check(delivery.body.len()) {
            Err(error) => self.dead_letter(actor, delivery, error).await,
            Ok(()) if self.is_terminal(actor) => {
                match self.end_route(slot, calls, stop, delivery).await {
                    Some(failed) => failed,
                    None => {
                        active.dec();
                        return;
                    }
                }
            }
            Ok(()) => match Envelope::parse_for(&delivery.body, actor) {
                Ok(mut envelope) => {
                    delivery.restore_lineage(&mut envelope.headers);
                    let span = self.open_span("process", actor, &mut envelope);
                    let hop = self.started(actor, &envelope);
                    // A message taken into the window whose actor stopped (removed,
                    // replaced, the node stopping) before a call was free goes back
                    // untouched: it was never called.
                    let called = tokio::select! {
                        biased;
                        _ = stop.cancelled() => {
                            if let Some(span) = span {
                                self.close_span(span, HopEnd::Requeued);
                            }
                            active.dec();
                            if let Err(error) = delivery.ack.release().await {
                                tracing::warn!(actor, error = %crate::report::chain(&error), "requeue failed; the transport will redeliver");
                            }
                            return;
                        }
                        call = calls.acquire() => match call {
                            Ok(_call) => {
                                let _calling = slot.call_started();
                                self.call(slot, &envelope).await
                            }
                            Err(_) => None,
                        },
                    };
                    match called {
                        Some(outcome) => {
                            let mut dispatches = routing::route_outcome(actor, &envelope, outcome);
                            let end = span.as_ref().map(|span| {
                                let traceparent = span.traceparent();
                                for dispatch in &mut dispatches {
                                    dispatch
                                        .envelope
                                        .headers
                                        .insert(TRACEPARENT.to_owned(), traceparent.clone());
                                }
                                crate::trace::hop::end_of(&dispatches)
                            });
                            let failed = self
                                .dispatch_then_ack(
                                    actor,
                                    Some(&envelope),
                                    hop.as_ref(),
                                    dispatches,
                                    delivery.ack,
                                )
                                .await;
                            if let (Some(span), Some(end)) = (span, end) {
                                self.close_span(span, end.confirmed(failed));
                            }
                            failed
                        }
                        None => {
                            if let Some(span) = span {
                                self.close_span(span, HopEnd::Requeued);
                            }
                            active.dec();
                            self.give_back(actor, delivery.ack).await;
                            return;
                        }
                    }
                }
                Err(mut rejected) => {
                    delivery.restore_lineage(&mut rejected.headers);
                    tracing::warn!(
                        actor,
                        envelope_id = rejected.id.as_deref().unwrap_or("-"),
                        "rejected an envelope: {}",
                        routing::describe(&rejected.error)
                    );
                    m.failed
                        .with_label_values(&[queue.as_str(), rejected.error.kind().as_str()])
                        .inc();
                    let dispatch = routing::reject(actor, *rejected, routing::unidentified);
                    self.dispatch_then_ack(actor, None, None, vec![dispatch], delivery.ack)
                        .await
                }
            },
        };
        slot.count(failed, started.elapsed());
        let status = if failed { "error" } else { "success" };
        m.processed
            .with_label_values(&[queue.as_str(), status])
            .inc();
        m.processing_duration
            .with_label_values(&[queue.as_str()])
            .observe(started.elapsed().as_secs_f64());
        active.dec();
    }

    /// Opens the span of a hop when traces are exported, and hands the hop's own
    /// context on in the envelope's `traceparent`.
    /// `verb` names what the hop does (`process`, `record`); nothing is built
    /// without an exporter.
    pub(super) fn open_span(
        &self,
        verb: &str,
        actor: &str,
        envelope: &mut Envelope,
    ) -> Option<HopSpan> {
        let tracer = self.settings.tracer.as_ref()?;
        let (trace, span) = Exporter::new_ids();
        let facts = HopFacts {
            name: format!("{verb} {actor}"),
            actor: actor.to_owned(),
            queue: self.settings.queues.for_actor(actor),
            envelope_id: envelope.id.clone(),
            route_index: envelope.route.current,
            transport: self.transport.name(),
        };
        let incoming = envelope.headers.get(TRACEPARENT).map(String::as_str);
        let mut hop = HopSpan::begin(incoming, facts, trace, span, std::time::SystemTime::now());
        tracer.sample(&mut hop);
        envelope
            .headers
            .insert(TRACEPARENT.to_owned(), hop.traceparent());
        Some(hop)
    }

    pub(super) fn close_span(&self, span: HopSpan, end: HopEnd) {
        if let Some(tracer) = &self.settings.tracer {
            tracer.end(span, end);
        }
    }

    /// Notes that `envelope` was taken and handed to its actor; the hop, for the
    /// note of its end (none when progress goes nowhere).
    fn started(&self, actor: &str, envelope: &Envelope) -> Option<Arc<Hop>> {
        if !self.settings.keep_progress && self.settings.reporter.is_none() {
            return None;
        }
        let hop = crate::progress::hop::hop_of(actor, envelope);
        let root = crate::branch::root_of(&envelope.headers, &envelope.id);
        self.note_progress(root, crate::progress::hop::started(&hop, At::now()));
        Some(hop)
    }

    /// Records progress events, and hands them to the reporter where there is one.
    fn note_progress(&self, root: &str, events: impl IntoIterator<Item = ProgressEvent>) {
        match (&self.settings.reporter, self.settings.keep_progress) {
            (None, true) => self.outcomes.progress(root, events),
            (None, false) => {}
            (Some(reporter), keep) => {
                let events: Vec<ProgressEvent> = events.into_iter().collect();
                for event in &events {
                    reporter.0.report(event);
                }
                if keep {
                    self.outcomes.progress(root, events);
                }
            }
        }
    }

    /// Calls the actor; `None` when it could not be run at all (its runtime is away).
    async fn call(&self, slot: &ActorSlot, envelope: &Envelope) -> Option<routing::Outcome> {
        let actor = slot.name();
        let queue = self.settings.queues.for_actor(actor);
        let m = metrics();
        let span = tracing::debug_span!("call", actor, envelope_id = %envelope.id);
        let call_started = std::time::Instant::now();
        let called = slot.current().call(envelope).instrument(span).await;
        m.runtime_duration
            .with_label_values(&[queue.as_str()])
            .observe(call_started.elapsed().as_secs_f64());
        match called {
            Ok(outcome) => {
                if let routing::Outcome::Failed(failure) = &outcome {
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

    /// The log line of one message handled: `info` where each message is logged (the
    /// sidecar, as Asya's logs each), else `debug`. `outcome` says where it went.
    pub(super) fn log_handled(&self, actor: &str, envelope_id: &str, outcome: &str, failed: bool) {
        if self.settings.log_each_message {
            tracing::info!(actor, envelope_id, outcome, failed, "message handled");
        } else {
            tracing::debug!(actor, envelope_id, outcome, failed, "message handled");
        }
    }

    /// Gives a message its actor could not take back to its queue, uncounted, after a
    /// pause (none once the node is stopping).
    async fn give_back(&self, actor: &str, ack: Box<dyn AckHandle>) {
        tokio::select! {
            _ = self.stop_consuming.cancelled() => {}
            _ = tokio::time::sleep(UNAVAILABLE_PAUSE) => {}
        }
        if let Err(error) = ack.release().await {
            tracing::warn!(actor, error = %crate::report::chain(&error), "requeue failed; the transport will redeliver");
        }
    }
}
