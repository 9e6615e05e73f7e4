//! The embedded transport: in-process queues, no setup, one machine.
//!
//! Each queue is an unbounded channel guarded by a semaphore of `capacity` slots. A
//! sender takes a slot before it enqueues (waiting while the queue is full: that is the
//! backpressure), and the slot travels inside the message until the message is acked,
//! so capacity bounds queued *and* in-flight messages, and memory stays bounded. A
//! requeue puts the message back with its slot, so giving work back never waits and
//! never deadlocks. A delivery dropped without being settled is requeued, as a broker
//! does when a consumer's channel closes.
//!
//! A retired queue (its actor was removed) refuses new messages and keeps the ones it
//! holds, for a later deploy. A message the node cannot handle moves to the queue's
//! dead-letter queue, `{actor}-dlq`, as on a broker.
//!
//! What is queued here lives in memory only: a process that exits loses it. The node
//! drains these queues before it stops; for durability use a broker.

use super::{AckHandle, Delivery, Subscription, Transport, TransportError};
use crate::queues::dead_letter_queue;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

struct Message {
    body: Bytes,
    redeliveries: u32,
    _slot: OwnedSemaphorePermit,
}

struct Queue {
    sender: async_channel::Sender<Message>,
    receiver: async_channel::Receiver<Message>,
    slots: Arc<Semaphore>,
    /// False once retired: sends are refused, what is queued stays.
    open: AtomicBool,
}

/// In-process queues, one per actor.
pub struct MemoryTransport {
    queues: RwLock<HashMap<String, Arc<Queue>>>,
    capacity: usize,
}

impl MemoryTransport {
    pub fn new(capacity: usize) -> Self {
        MemoryTransport {
            queues: RwLock::new(HashMap::new()),
            capacity: capacity.max(1),
        }
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
        let queue = queues.entry(actor.to_owned()).or_insert_with(|| {
            let (sender, receiver) = async_channel::unbounded();
            Arc::new(Queue {
                sender,
                receiver,
                slots: Arc::new(Semaphore::new(self.capacity)),
                open: AtomicBool::new(true),
            })
        });
        queue.open.store(true, Ordering::SeqCst);
        Ok(queue.clone())
    }
}

impl Transport for MemoryTransport {
    type Subscription = MemorySubscription;

    fn name(&self) -> &'static str {
        "memory"
    }

    async fn declare(&self, actor: &str) -> Result<(), TransportError> {
        self.open(actor).map(drop)
    }

    async fn retire(&self, actor: &str) -> Result<(), TransportError> {
        if let Ok(queue) = self.queue(actor) {
            queue.open.store(false, Ordering::SeqCst);
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        actor: &str,
        _prefetch: usize,
    ) -> Result<MemorySubscription, TransportError> {
        let queue = self.queue(actor)?;
        let dead = self.open(&dead_letter_queue(actor))?;
        Ok(MemorySubscription {
            receiver: queue.receiver.clone(),
            sender: queue.sender.clone(),
            dead,
        })
    }

    async fn send(&self, actor: &str, body: Bytes) -> Result<(), TransportError> {
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
        let message = Message {
            body,
            redeliveries: 0,
            _slot: slot,
        };
        queue
            .sender
            .try_send(message)
            .map_err(|_| TransportError::Closed)
    }

    fn depth(&self, actor: &str) -> Option<usize> {
        let queue = self.queue(actor).ok()?;
        Some(self.capacity - queue.slots.available_permits())
    }

    fn pending(&self) -> Option<usize> {
        let queues = self.queues.read().ok()?;
        Some(
            queues
                .values()
                .map(|queue| self.capacity - queue.slots.available_permits())
                .sum(),
        )
    }
}

/// Deliveries from one embedded queue.
pub struct MemorySubscription {
    receiver: async_channel::Receiver<Message>,
    sender: async_channel::Sender<Message>,
    dead: Arc<Queue>,
}

impl Subscription for MemorySubscription {
    type Ack = MemoryAck;

    async fn next(&mut self) -> Option<Delivery<MemoryAck>> {
        let message = self.receiver.recv().await.ok()?;
        Some(Delivery {
            body: message.body.clone(),
            redeliveries: message.redeliveries,
            ack: MemoryAck {
                message: Some(message),
                sender: self.sender.clone(),
                dead: self.dead.clone(),
            },
        })
    }
}

/// Settles one embedded delivery; requeues it if dropped unsettled.
pub struct MemoryAck {
    message: Option<Message>,
    sender: async_channel::Sender<Message>,
    dead: Arc<Queue>,
}

impl MemoryAck {
    fn give_back(&mut self) -> Result<(), TransportError> {
        match self.message.take() {
            Some(mut message) => {
                message.redeliveries += 1;
                self.sender
                    .try_send(message)
                    .map_err(|_| TransportError::Closed)
            }
            None => Ok(()),
        }
    }
}

impl AckHandle for MemoryAck {
    async fn ack(mut self) -> Result<(), TransportError> {
        self.message = None;
        Ok(())
    }

    async fn requeue(mut self) -> Result<(), TransportError> {
        self.give_back()
    }

    async fn release(mut self) -> Result<(), TransportError> {
        match self.message.take() {
            Some(message) => self
                .sender
                .try_send(message)
                .map_err(|_| TransportError::Closed),
            None => Ok(()),
        }
    }

    async fn dead_letter(mut self, reason: String) -> Result<(), TransportError> {
        let Some(message) = self.message.take() else {
            return Ok(());
        };
        let Ok(slot) = self.dead.slots.clone().try_acquire_owned() else {
            self.message = Some(message);
            self.give_back()?;
            return Err(TransportError::Other(
                "the dead-letter queue is full; the message went back to its queue".into(),
            ));
        };
        tracing::debug!(%reason, "moved to the dead-letter queue");
        let dead = Message {
            body: message.body.clone(),
            redeliveries: message.redeliveries,
            _slot: slot,
        };
        self.dead
            .sender
            .try_send(dead)
            .map_err(|_| TransportError::Closed)
    }
}

impl Drop for MemoryAck {
    fn drop(&mut self) {
        if self.message.is_some() && self.give_back().is_err() {
            tracing::warn!("an unsettled delivery could not be requeued: the queue is gone");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn transport(capacity: usize) -> MemoryTransport {
        let transport = MemoryTransport::new(capacity);
        transport.declare("q").await.unwrap();
        transport
    }

    #[tokio::test]
    async fn delivers_in_order_and_acks() {
        let transport = transport(10).await;
        let mut sub = transport.subscribe("q", 1).await.unwrap();
        transport.send("q", Bytes::from("a")).await.unwrap();
        transport.send("q", Bytes::from("b")).await.unwrap();
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
        transport.send("q", Bytes::from("a")).await.unwrap();
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
        transport.send("q", Bytes::from("a")).await.unwrap();
        let blocked = tokio::time::timeout(
            Duration::from_millis(50),
            transport.send("q", Bytes::from("b")),
        )
        .await;
        assert!(blocked.is_err(), "the second send must wait for room");
        let mut sub = transport.subscribe("q", 1).await.unwrap();
        let waiting = tokio::spawn({
            let transport = transport.clone();
            async move { transport.send("q", Bytes::from("b")).await }
        });
        sub.next().await.unwrap().ack.ack().await.unwrap();
        waiting.await.unwrap().unwrap();
        assert_eq!(sub.next().await.unwrap().body, "b");
    }

    #[tokio::test]
    async fn a_retired_queue_refuses_sends_and_keeps_its_messages() {
        let transport = transport(10).await;
        transport.send("q", Bytes::from("kept")).await.unwrap();
        transport.retire("q").await.unwrap();
        assert!(matches!(
            transport.send("q", Bytes::from("refused")).await,
            Err(TransportError::NoSuchQueue(_))
        ));
        transport.declare("q").await.unwrap();
        let mut sub = transport.subscribe("q", 1).await.unwrap();
        assert_eq!(sub.next().await.unwrap().body, "kept");
        transport.send("q", Bytes::from("again")).await.unwrap();
    }

    #[tokio::test]
    async fn a_dead_letter_moves_the_message_whole() {
        let transport = transport(10).await;
        let mut sub = transport.subscribe("q", 1).await.unwrap();
        transport.send("q", Bytes::from("poison")).await.unwrap();
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
            transport.send("nope", Bytes::new()).await,
            Err(TransportError::NoSuchQueue(_))
        ));
    }
}
