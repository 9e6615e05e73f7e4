//! The routing loop: receive → run → route → ack, for every served actor.
//!
//! The router knows neither the broker nor wasmtime: it takes deliveries from a
//! [`Transport`], calls the actor's [`crate::runtime::ActorRuntime`], asks
//! [`crate::route_rules`] where the results go, sends them ([`dispatch`]), and acks the
//! input only after every send returned (at-least-once); [`hop`] is one message's
//! way through, as named stages. End actors record outcomes
//! ([`ends`]); new envelopes come in through [`submit`]; [`stop`] is the graceful stop.
//!
//! Concurrency is bounded per actor by a semaphore: a consumer takes a permit before it
//! takes a delivery, so at most `concurrency` messages of an actor are in flight and
//! the rest wait in the queue (backpressure).

mod dispatch;
mod ends;
mod hop;
pub mod stop;
pub mod submit;
mod terminal;

use crate::actors::ActorSlot;
use crate::envelope::Envelope;
use crate::envelope::limits::SizeLimit;
use crate::outcomes::Outcomes;
use crate::progress::event::{At, Hop};
use crate::progress::{ProgressEvent, Reporter};
use crate::queues::QueueNames;
use crate::records::EndNames;
use crate::trace::hop::{HopEnd, HopFacts};
use crate::trace::{Exporter, HopSpan, TRACEPARENT};
use crate::transport::{Delivery, Subscription, Transport, TransportError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
            tracing::warn!(actor = name, error = %crate::error_chain::chain(&error), "could not close the queue to new envelopes");
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

    /// Whether [`Router::log_handled`] writes its line (so that what only the line
    /// names is not built per hop for nothing).
    pub(super) fn logs_handled(&self) -> bool {
        self.settings.log_each_message || tracing::enabled!(tracing::Level::DEBUG)
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
}
