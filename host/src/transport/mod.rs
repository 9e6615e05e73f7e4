//! Moving envelope bytes between queues.
//!
//! The router sees only this trait, so the embedded queue and a broker are
//! interchangeable and the same behavioural tests run over both. Queues are named by
//! the actor that consumes them; each transport maps that to its own names (on a
//! broker, queue `asya-{actor}` bound with routing key `{actor}`). The contract is the
//! broker's: a delivery stays owned by the consumer until it is acked; a nack (or a
//! delivery dropped without either) puts it back for another try, with its attempt
//! count raised. `send` returns only once the transport has taken responsibility for
//! the message (a broker confirm), so acking the input after all sends is safe.
//!
//! The traits are object-safe (their futures boxed, a subscription and an ack handle
//! behind a `Box<dyn …>`), so that the router, the deployments and the API hold an
//! `Arc<dyn Transport>` and do not carry the transport's type: the concrete transport
//! is named only where the node builds it. That costs an allocation per delivery, ack
//! and send.

pub mod amqp;
pub mod embedded;

use crate::branch::Lineage;
use bytes::Bytes;
use futures::future::BoxFuture;

/// Why the transport could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The actor has no queue, or its queue is closed to new envelopes; holds the actor's name.
    #[error("no queue for actor `{0}`")]
    NoSuchQueue(String),
    /// The transport was closed.
    #[error("the transport is closed")]
    Closed,
    /// The broker failed; `context` says at what.
    #[error("{context}")]
    Broker {
        /// What the node was doing when the broker failed.
        context: String,
        /// The broker client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The embedded queue's store could not take the message (a full disk).
    #[error(transparent)]
    Store(#[from] crate::data_dir::journal::JournalError),
    /// Any other failure, described for people to read.
    #[error("{0}")]
    Other(String),
}

/// A message handed to a queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The envelope's bytes.
    pub body: Bytes,
    /// A fan-out child's bookkeeping, carried beside the body.
    pub lineage: Option<Lineage>,
}

impl From<Bytes> for Message {
    fn from(body: Bytes) -> Self {
        Message {
            body,
            lineage: None,
        }
    }
}

/// A message taken from a queue, owned until acked or nacked.
pub struct Delivery {
    /// The message's bytes.
    pub body: Bytes,
    /// The fan-out bookkeeping that came beside the body, if any.
    pub lineage: Option<Lineage>,
    /// How many times this message was delivered before (0 on the first delivery).
    pub redeliveries: u32,
    /// Settles the delivery: ack, requeue, release or dead-letter it.
    pub ack: Box<dyn AckHandle>,
}

impl Delivery {
    /// Puts the lineage that came beside the body back into the headers read from it
    /// (where none came, the headers stay as the body had them: an older node's
    /// message carried its lineage there).
    pub fn restore_lineage(&self, headers: &mut crate::envelope::Headers) {
        if let Some(lineage) = &self.lineage {
            lineage.restore_into(headers);
        }
    }
}

/// Settles one delivery.
pub trait AckHandle: Send + 'static {
    /// The message is done with: remove it from its queue.
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), TransportError>>;
    /// Give the message back to its queue for another try.
    fn requeue(self: Box<Self>) -> BoxFuture<'static, Result<(), TransportError>>;
    /// Give the message back without counting a redelivery: the node could not try
    /// it at all (its runtime or the pool's store is unavailable), which is no fault
    /// of the message and must not bring it nearer its dead-letter queue.
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), TransportError>> {
        self.requeue()
    }
    /// Move the message, unchanged, to its queue's dead-letter queue with `reason`: the
    /// node cannot handle it, and must not lose it.
    fn dead_letter(
        self: Box<Self>,
        reason: String,
    ) -> BoxFuture<'static, Result<(), TransportError>>;
}

/// A stream of deliveries from one queue.
pub trait Subscription: Send + 'static {
    /// The next delivery; `None` once the subscription or transport is closed.
    fn next(&mut self) -> BoxFuture<'_, Option<Delivery>>;
}

/// Queues that envelopes travel on.
pub trait Transport: Send + Sync + 'static {
    /// Short name for logs and metrics (`memory`, `amqp`).
    fn name(&self) -> &'static str;

    /// Makes sure the queue of `actor` exists and takes envelopes.
    fn declare<'a>(&'a self, actor: &'a str) -> BoxFuture<'a, Result<(), TransportError>>;

    /// Closes the queue of `actor` to new envelopes (a send answers
    /// [`TransportError::NoSuchQueue`]) while keeping what it holds; a later
    /// [`Transport::declare`] opens it again.
    fn retire<'a>(&'a self, actor: &'a str) -> BoxFuture<'a, Result<(), TransportError>>;

    /// Starts consuming the queue of `actor`, with at most `prefetch` deliveries
    /// unsettled at once.
    fn subscribe<'a>(
        &'a self,
        actor: &'a str,
        prefetch: usize,
    ) -> BoxFuture<'a, Result<Box<dyn Subscription>, TransportError>>;

    /// Hands `message` to the queue of `actor`; returns once it is safely queued.
    /// Waits while the queue is full (backpressure).
    fn send<'a>(
        &'a self,
        actor: &'a str,
        message: Message,
    ) -> BoxFuture<'a, Result<(), TransportError>>;

    /// Messages queued or in flight, where the transport can tell.
    fn pending(&self) -> Option<usize>;

    /// Whether what is queued outlives the process (a broker; the embedded queue
    /// with its store), so that a stop leaves it queued instead of draining it.
    fn keeps_queued(&self) -> bool {
        false
    }

    /// Messages queued or in flight for `actor`, where the transport can tell.
    fn depth(&self, _actor: &str) -> Option<usize> {
        None
    }

    /// Messages of one actor in flight at once, when it runs `concurrency` calls at
    /// once: the calls, and those whose results are being handed on (waiting for a
    /// broker's confirm or a disk's commit), so the next call need not wait for the
    /// previous hand-off. Where a hand-off is immediate, the calls alone.
    fn handoff_window(&self, concurrency: usize) -> usize {
        concurrency
    }

    /// Lets deliveries begin once the node has declared every actor's queue (the
    /// embedded queue holds back what it read back at start until then).
    fn start_delivering(&self) {}

    /// Why messages cannot move now (a broker unreachable, a store that cannot
    /// write), or `None` when they can.
    fn unready(&self) -> Option<&'static str> {
        None
    }

    /// Stops every subscription from taking new deliveries; deliveries already taken
    /// can still be settled.
    fn stop_consuming(&self) {}

    /// Releases the transport once everything taken is settled.
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
