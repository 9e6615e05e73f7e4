//! The embedded transport: in-process queues, no setup, one machine.
//!
//! Each queue is an unbounded channel guarded by a semaphore of `capacity` slots. A
//! sender takes a slot before it enqueues (waiting while the queue is full: that is the
//! backpressure), and the slot travels inside the message until the message is acked,
//! so capacity bounds queued *and* in-flight messages, and memory stays bounded. A
//! requeue puts the message back with its slot, so giving work back never waits and
//! never deadlocks. A delivery dropped without being settled is requeued, as a broker
//! does when a consumer's channel closes. A message delivered more than
//! `max_redeliveries` times moves to the dead-letter queue, as on RabbitMQ.
//!
//! A retired queue (its actor was removed) refuses new messages and keeps the ones it
//! holds, for a later deploy. A message the node cannot handle moves to the queue's
//! dead-letter queue, `{actor}-dlq`, as on a broker.
//!
//! With a [`Journal`] (the default of `wasya up`, in its data directory) the queues
//! are durable: a send returns once the message is on disk, a delivery is marked (so
//! one cut off by a crash counts as redelivered), and an ack removes it behind the
//! hop's outputs, which were on disk before the ack was asked. At start the queues
//! hold what the store kept. The channels still carry the bodies, so a delivery never
//! reads the disk. Without one (`--ephemeral`) the queues live in memory only, and
//! the node drains them before it stops.

use super::{AckHandle, Delivery, Message, Subscription, Transport, TransportError};
use crate::branch::Lineage;
use crate::data_dir::journal::{Journal, Op, StoredMessage};
use crate::queues::{dead_letter_queue, is_dead_letter_queue};
use bytes::Bytes;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Messages per actor, past its calls, that may wait for their hand-off to be
/// committed.
const DURABLE_HANDOFF: usize = 128;

struct Queued {
    body: Bytes,
    lineage: Option<Lineage>,
    redeliveries: u32,
    /// Its key in the journal, on a durable queue.
    key: Option<u64>,
    /// `None` for a message read back at start past the queue's capacity.
    _slot: Option<OwnedSemaphorePermit>,
}

struct Queue {
    name: Arc<str>,
    sender: async_channel::Sender<Queued>,
    receiver: async_channel::Receiver<Queued>,
    slots: Arc<Semaphore>,
    /// False once retired: sends are refused, what is queued stays.
    open: AtomicBool,
}

impl Queue {
    fn new(name: &str, capacity: usize, open: bool) -> Arc<Queue> {
        let (sender, receiver) = async_channel::unbounded();
        Arc::new(Queue {
            name: Arc::from(name),
            sender,
            receiver,
            slots: Arc::new(Semaphore::new(capacity)),
            open: AtomicBool::new(open),
        })
    }
}

/// In-process queues, one per actor.
pub struct EmbeddedTransport {
    queues: RwLock<HashMap<String, Arc<Queue>>>,
    capacity: usize,
    max_redeliveries: u32,
    journal: Option<Journal>,
    /// False while the node starts on queues read back: no delivery until every
    /// actor's queue is declared, or a hop could find its next actor missing.
    delivering: tokio::sync::watch::Sender<bool>,
}

impl EmbeddedTransport {
    /// Queues in memory only.
    pub fn new(capacity: usize) -> Self {
        EmbeddedTransport {
            queues: RwLock::new(HashMap::new()),
            capacity: capacity.max(1),
            max_redeliveries: crate::defaults::MAX_REDELIVERIES,
            journal: None,
            delivering: tokio::sync::watch::Sender::new(true),
        }
    }

    /// Queues kept in `journal`, holding at first the messages it kept (`recovered`,
    /// in the order they were accepted). A queue read back is closed to new messages
    /// until its actor is declared again.
    pub fn durable(capacity: usize, journal: Journal, recovered: Vec<StoredMessage>) -> Self {
        let mut transport = EmbeddedTransport::new(capacity);
        let mut queues = HashMap::new();
        for message in recovered {
            let queue = queues
                .entry(message.queue.to_string())
                .or_insert_with(|| Queue::new(&message.queue, transport.capacity, false));
            let state = if message.was_in_flight {
                "in_flight"
            } else {
                "queued"
            };
            crate::metrics::metrics()
                .store_recovered
                .with_label_values(&[state])
                .inc();
            let stored = Queued {
                body: message.body,
                lineage: message.lineage,
                redeliveries: message.redeliveries,
                key: Some(message.seq),
                _slot: queue.slots.clone().try_acquire_owned().ok(),
            };
            // The channel is unbounded and its receiver is held here: this succeeds.
            let _ = queue.sender.try_send(stored);
        }
        if !queues.is_empty() {
            transport.delivering.send_replace(false);
        }
        transport.queues = RwLock::new(queues);
        transport.journal = Some(journal);
        transport
    }

    /// Deliveries past `limit` redeliveries go to the dead-letter queue.
    pub fn with_max_redeliveries(mut self, limit: u32) -> Self {
        self.max_redeliveries = limit;
        self
    }

    fn queue(&self, actor: &str) -> Result<Arc<Queue>, TransportError> {
        let queues = self.queues.read().map_err(|_| TransportError::Closed)?;
        queues
            .get(actor)
            .cloned()
            .ok_or_else(|| TransportError::NoSuchQueue(actor.to_owned()))
    }

    /// The queue of `actor`, made when missing, and open.
    fn open(&self, actor: &str) -> Result<Arc<Queue>, TransportError> {
        let mut queues = self.queues.write().map_err(|_| TransportError::Closed)?;
        let queue = queues
            .entry(actor.to_owned())
            .or_insert_with(|| Queue::new(actor, self.capacity, true));
        queue.open.store(true, Ordering::SeqCst);
        Ok(queue.clone())
    }

    fn counted(&self, queue: &Queue) -> usize {
        queue
            .receiver
            .len()
            .max(self.capacity - queue.slots.available_permits())
    }

    async fn subscribe_queue(&self, actor: &str) -> Result<MemorySubscription, TransportError> {
        let queue = self.queue(actor)?;
        let dead = self.open(&dead_letter_queue(actor))?;
        Ok(MemorySubscription {
            receiver: queue.receiver.clone(),
            sender: queue.sender.clone(),
            settle: Settle {
                dead,
                journal: self.journal.clone(),
            },
            delivering: Some(self.delivering.subscribe()),
            max_redeliveries: if is_dead_letter_queue(actor) {
                u32::MAX
            } else {
                self.max_redeliveries
            },
        })
    }

    async fn send_message(&self, actor: &str, message: Message) -> Result<(), TransportError> {
        let Message { body, lineage } = message;
        let queue = self.queue(actor)?;
        if !queue.open.load(Ordering::SeqCst) {
            return Err(TransportError::NoSuchQueue(actor.to_owned()));
        }
        let slot = queue
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| TransportError::Closed)?;
        let key = match &self.journal {
            Some(journal) => {
                let seq = journal.next_seq();
                journal
                    .write(vec![Op::PutMessage {
                        seq,
                        queue: queue.name.clone(),
                        redeliveries: 0,
                        body: body.clone(),
                        lineage: lineage.clone(),
                    }])
                    .await?;
                Some(seq)
            }
            None => None,
        };
        let message = Queued {
            body,
            lineage,
            redeliveries: 0,
            key,
            _slot: Some(slot),
        };
        queue
            .sender
            .try_send(message)
            .map_err(|_| TransportError::Closed)
    }
}

impl Transport for EmbeddedTransport {
    fn name(&self) -> &'static str {
        "embedded"
    }

    fn declare<'a>(&'a self, actor: &'a str) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(async move { self.open(actor).map(drop) })
    }

    fn retire<'a>(&'a self, actor: &'a str) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(async move {
            if let Ok(queue) = self.queue(actor) {
                queue.open.store(false, Ordering::SeqCst);
            }
            Ok(())
        })
    }

    fn subscribe<'a>(
        &'a self,
        actor: &'a str,
        _prefetch: usize,
    ) -> BoxFuture<'a, Result<Box<dyn Subscription>, TransportError>> {
        Box::pin(async move {
            let subscription = self.subscribe_queue(actor).await?;
            Ok(Box::new(subscription) as Box<dyn Subscription>)
        })
    }

    fn send<'a>(
        &'a self,
        actor: &'a str,
        message: Message,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(self.send_message(actor, message))
    }

    fn depth(&self, actor: &str) -> Option<usize> {
        let queue = self.queue(actor).ok()?;
        Some(self.counted(&queue))
    }

    fn pending(&self) -> Option<usize> {
        let queues = self.queues.read().ok()?;
        Some(queues.values().map(|queue| self.counted(queue)).sum())
    }

    fn keeps_queued(&self) -> bool {
        self.journal.is_some()
    }

    /// On disk, a hand-off waits for a commit (a sync) that many hops share: many
    /// messages in flight per actor are what fill a commit. In memory, none.
    fn handoff_window(&self, concurrency: usize) -> usize {
        match self.journal {
            Some(_) => concurrency.saturating_add(DURABLE_HANDOFF),
            None => concurrency,
        }
    }

    fn start_delivering(&self) {
        self.delivering.send_replace(true);
    }

    fn unready(&self) -> Option<&'static str> {
        let failing = self
            .journal
            .as_ref()
            .is_some_and(|journal| !journal.is_healthy());
        failing.then_some("the data directory's store cannot write (is the disk full?)")
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(journal) = &self.journal {
                journal.close().await;
            }
        })
    }
}

/// Deliveries from one embedded queue.
pub struct MemorySubscription {
    receiver: async_channel::Receiver<Queued>,
    sender: async_channel::Sender<Queued>,
    settle: Settle,
    max_redeliveries: u32,
    /// Until the node has started: the gate to wait at.
    delivering: Option<tokio::sync::watch::Receiver<bool>>,
}

/// Where a delivery of one queue goes when it is settled.
#[derive(Clone)]
struct Settle {
    dead: Arc<Queue>,
    journal: Option<Journal>,
}

impl Subscription for MemorySubscription {
    fn next(&mut self) -> BoxFuture<'_, Option<Delivery>> {
        Box::pin(self.next_delivery())
    }
}

impl MemorySubscription {
    async fn next_delivery(&mut self) -> Option<Delivery> {
        if let Some(gate) = &mut self.delivering {
            gate.wait_for(|open| *open).await.ok()?;
            self.delivering = None;
        }
        loop {
            let message = self.receiver.recv().await.ok()?;
            let ack = Box::new(MemoryAck {
                message: Some(message),
                sender: self.sender.clone(),
                settle: self.settle.clone(),
            });
            let redeliveries = ack.message.as_ref().map_or(0, |m| m.redeliveries);
            if redeliveries > self.max_redeliveries {
                let reason = format!(
                    "redelivered {redeliveries} times without being settled (limit {}): it crashes or stalls whatever consumes it",
                    self.max_redeliveries
                );
                tracing::warn!(queue = %self.settle.dead.name, "a message goes to the dead-letter queue: {reason}");
                if let Err(error) = ack.dead_letter(reason).await {
                    tracing::warn!(error = %crate::error_chain::chain(&error), "could not dead-letter a message");
                }
                continue;
            }
            let message = ack.message.as_ref()?;
            if let (Some(journal), Some(seq)) = (&self.settle.journal, message.key) {
                journal.write_behind(vec![Op::Delivery {
                    seq,
                    redeliveries,
                    in_flight: true,
                }]);
            }
            return Some(Delivery {
                body: message.body.clone(),
                lineage: message.lineage.clone(),
                redeliveries,
                ack,
            });
        }
    }
}

/// Settles one embedded delivery; requeues it if dropped unsettled.
pub struct MemoryAck {
    message: Option<Queued>,
    sender: async_channel::Sender<Queued>,
    settle: Settle,
}

impl MemoryAck {
    /// Puts the message back on its queue, its redeliveries raised by `counted`.
    fn put_back(&mut self, counted: u32) -> Result<(), TransportError> {
        let Some(mut message) = self.message.take() else {
            return Ok(());
        };
        message.redeliveries += counted;
        if let (Some(journal), Some(seq)) = (&self.settle.journal, message.key) {
            journal.write_behind(vec![Op::Delivery {
                seq,
                redeliveries: message.redeliveries,
                in_flight: false,
            }]);
        }
        self.sender
            .try_send(message)
            .map_err(|_| TransportError::Closed)
    }

    /// Moves the message to its queue's dead-letter queue; when that queue is full or
    /// the store cannot take it, back to its own queue.
    async fn move_to_dead_letters(
        mut self: Box<Self>,
        reason: String,
    ) -> Result<(), TransportError> {
        let Some(message) = self.message.take() else {
            return Ok(());
        };
        let dead = self.settle.dead.clone();
        let Ok(slot) = dead.slots.clone().try_acquire_owned() else {
            self.message = Some(message);
            self.put_back(1)?;
            return Err(TransportError::Other(
                "the dead-letter queue is full; the message went back to its queue".into(),
            ));
        };
        let key = match (&self.settle.journal, message.key) {
            (Some(journal), Some(seq)) => {
                let moved = journal.next_seq();
                let written = journal
                    .write(vec![
                        Op::PutMessage {
                            seq: moved,
                            queue: dead.name.clone(),
                            redeliveries: message.redeliveries,
                            body: message.body.clone(),
                            lineage: message.lineage.clone(),
                        },
                        Op::RemoveMessage { seq },
                    ])
                    .await;
                if let Err(error) = written {
                    self.message = Some(message);
                    self.put_back(0)?;
                    return Err(error.into());
                }
                Some(moved)
            }
            _ => None,
        };
        tracing::debug!(%reason, "moved to the dead-letter queue");
        let moved = Queued {
            body: message.body.clone(),
            lineage: message.lineage.clone(),
            redeliveries: message.redeliveries,
            key,
            _slot: Some(slot),
        };
        dead.sender
            .try_send(moved)
            .map_err(|_| TransportError::Closed)
    }
}

impl AckHandle for MemoryAck {
    fn ack(mut self: Box<Self>) -> BoxFuture<'static, Result<(), TransportError>> {
        Box::pin(async move {
            if let Some(message) = self.message.take()
                && let (Some(journal), Some(seq)) = (&self.settle.journal, message.key)
            {
                journal.write_behind(vec![Op::RemoveMessage { seq }]);
            }
            Ok(())
        })
    }

    fn requeue(mut self: Box<Self>) -> BoxFuture<'static, Result<(), TransportError>> {
        Box::pin(async move { self.put_back(1) })
    }

    fn release(mut self: Box<Self>) -> BoxFuture<'static, Result<(), TransportError>> {
        Box::pin(async move { self.put_back(0) })
    }

    fn dead_letter(
        self: Box<Self>,
        reason: String,
    ) -> BoxFuture<'static, Result<(), TransportError>> {
        Box::pin(self.move_to_dead_letters(reason))
    }
}

impl Drop for MemoryAck {
    fn drop(&mut self) {
        if self.message.is_some() && self.put_back(1).is_err() {
            tracing::warn!("an unsettled delivery could not be requeued: the queue is gone");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn transport(capacity: usize) -> EmbeddedTransport {
        let transport = EmbeddedTransport::new(capacity);
        transport.declare("q").await.unwrap();
        transport
    }

    #[tokio::test]
    async fn delivers_in_order_and_acks() {
        let transport = transport(10).await;
        let mut sub = transport.subscribe("q", 1).await.unwrap();
        transport.send("q", Bytes::from("a").into()).await.unwrap();
        transport.send("q", Bytes::from("b").into()).await.unwrap();
        assert_eq!(transport.pending(), Some(2));
        let first = sub.next().await.unwrap();
        assert_eq!(first.body, "a");
        first.ack.ack().await.unwrap();
        assert_eq!(transport.pending(), Some(1));
        assert_eq!(sub.next().await.unwrap().body, "b");
    }

    #[tokio::test]
    async fn requeue_and_drop_give_the_message_back() {
        let transport = transport(10).await;
        let mut sub = transport.subscribe("q", 1).await.unwrap();
        transport.send("q", Bytes::from("a").into()).await.unwrap();
        let delivery = sub.next().await.unwrap();
        delivery.ack.requeue().await.unwrap();
        let again = sub.next().await.unwrap();
        assert_eq!(again.redeliveries, 1);
        again.ack.release().await.unwrap();
        let again = sub.next().await.unwrap();
        assert_eq!(again.redeliveries, 1, "a release is not a redelivery");
        drop(again);
        let third = sub.next().await.unwrap();
        assert_eq!(
            (third.body.as_ref(), third.redeliveries),
            (b"a".as_ref(), 2)
        );
    }

    #[tokio::test]
    async fn a_full_queue_makes_senders_wait() {
        let transport = Arc::new(transport(1).await);
        transport.send("q", Bytes::from("a").into()).await.unwrap();
        let blocked = tokio::time::timeout(
            Duration::from_millis(50),
            transport.send("q", Bytes::from("b").into()),
        )
        .await;
        assert!(blocked.is_err(), "the second send must wait for room");
        let mut sub = transport.subscribe("q", 1).await.unwrap();
        let waiting = tokio::spawn({
            let transport = transport.clone();
            async move { transport.send("q", Bytes::from("b").into()).await }
        });
        sub.next().await.unwrap().ack.ack().await.unwrap();
        waiting.await.unwrap().unwrap();
        assert_eq!(sub.next().await.unwrap().body, "b");
    }

    #[tokio::test]
    async fn a_retired_queue_refuses_sends_and_keeps_its_messages() {
        let transport = transport(10).await;
        transport
            .send("q", Bytes::from("kept").into())
            .await
            .unwrap();
        transport.retire("q").await.unwrap();
        assert!(matches!(
            transport.send("q", Bytes::from("refused").into()).await,
            Err(TransportError::NoSuchQueue(_))
        ));
        transport.declare("q").await.unwrap();
        let mut sub = transport.subscribe("q", 1).await.unwrap();
        assert_eq!(sub.next().await.unwrap().body, "kept");
        transport
            .send("q", Bytes::from("again").into())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_dead_letter_moves_the_message_whole() {
        let transport = transport(10).await;
        let mut sub = transport.subscribe("q", 1).await.unwrap();
        transport
            .send("q", Bytes::from("poison").into())
            .await
            .unwrap();
        let delivery = sub.next().await.unwrap();
        delivery.ack.dead_letter("why".into()).await.unwrap();
        assert_eq!(transport.depth("q"), Some(0));
        let mut dead = transport.subscribe("q-dlq", 1).await.unwrap();
        assert_eq!(dead.next().await.unwrap().body, "poison");
    }

    #[tokio::test]
    async fn unknown_queues_are_an_error() {
        let transport = transport(1).await;
        assert!(matches!(
            transport.send("nope", Bytes::new().into()).await,
            Err(TransportError::NoSuchQueue(_))
        ));
    }

    #[tokio::test]
    async fn past_the_redelivery_limit_a_message_moves_to_the_dead_letter_queue() {
        let transport = transport(10).await.with_max_redeliveries(1);
        let mut sub = transport.subscribe("q", 1).await.unwrap();
        transport
            .send("q", Bytes::from("poison").into())
            .await
            .unwrap();
        for _ in 0..2 {
            sub.next().await.unwrap().ack.requeue().await.unwrap();
        }
        let next = tokio::time::timeout(Duration::from_millis(50), sub.next()).await;
        assert!(
            next.is_err(),
            "a third delivery past the limit of one redelivery"
        );
        assert_eq!(transport.depth("q-dlq"), Some(1));
        let mut dead = transport.subscribe("q-dlq", 1).await.unwrap();
        let moved = dead.next().await.unwrap();
        assert_eq!(
            (moved.body.as_ref(), moved.redeliveries),
            (b"poison".as_ref(), 2)
        );
    }

    #[tokio::test]
    async fn a_durable_queue_gives_back_after_a_crash_what_it_held() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path()).await.unwrap();
        let transport = EmbeddedTransport::durable(10, journal.clone(), Vec::new());
        transport.declare("q").await.unwrap();
        let mut sub = transport.subscribe("q", 2).await.unwrap();
        for body in ["a", "b", "c"] {
            transport.send("q", Bytes::from(body).into()).await.unwrap();
        }
        sub.next().await.unwrap().ack.ack().await.unwrap();
        let held = sub.next().await.unwrap();
        assert_eq!(held.body, "b");
        journal.close().await;
        // The process dies holding `b`: it is neither acked nor given back.
        std::mem::forget(held);

        let (journal, recovered) = Journal::open(dir.path()).await.unwrap();
        let transport = EmbeddedTransport::durable(10, journal.clone(), recovered.messages);
        assert!(
            matches!(
                transport.send("q", Bytes::from("x").into()).await,
                Err(TransportError::NoSuchQueue(_))
            ),
            "a queue read back takes nothing until its actor is declared"
        );
        transport.declare("q").await.unwrap();
        assert_eq!(transport.depth("q"), Some(2));
        let mut sub = transport.subscribe("q", 2).await.unwrap();
        let early = tokio::time::timeout(Duration::from_millis(50), sub.next()).await;
        assert!(
            early.is_err(),
            "nothing is delivered before the node has started"
        );
        transport.start_delivering();
        let again = sub.next().await.unwrap();
        assert_eq!(
            (again.body.as_ref(), again.redeliveries),
            (b"b".as_ref(), 1)
        );
        let next = sub.next().await.unwrap();
        assert_eq!((next.body.as_ref(), next.redeliveries), (b"c".as_ref(), 0));
        journal.close().await;
    }
}
