//! Consuming one actor's queue across reconnects, counting redeliveries.
//!
//! A task per subscription consumes the queue on a channel of the current session with
//! `prefetch` = the actor's concurrency, and forwards deliveries through a channel of
//! the same bound, so backpressure is the broker's. When the connection dies the task
//! waits for the next session and consumes again; deliveries it had handed on are
//! redelivered by the broker (their acks fail harmlessly).
//!
//! Redeliveries are counted so a message that kills its consumer every time (a node
//! crash, a runtime that dies on it) cannot loop forever. A quorum queue counts for us
//! (`x-delivery-count`). On a classic queue the broker only says "redelivered", so the
//! node republishes such a message to the same queue with the count in the header
//! `x-wasya-redeliveries` and acks the old copy. Past `max_redeliveries` the message
//! goes to `{queue}-dlq` with the reason in `x-wasya-dead-reason`.
//!
//! A count is believed only where the node or the broker wrote it: the node's header
//! on a message that came the node's republish way (through the default exchange,
//! straight to this queue), the broker's on a redelivery. A producer publishing
//! through the mesh's exchange cannot send a message to the dead-letter queue by
//! setting a header.

use super::session::{Session, Sessions};
use super::{AmqpOptions, json_properties};
use crate::queues::dead_letter_queue;
use crate::transport::{AckHandle, Delivery, Subscription, TransportError};
use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use lapin::Acker;
use lapin::Channel;
use lapin::Confirmation;
use lapin::message::Delivery as LapinDelivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The header carrying the redelivery count on classic queues.
pub const REDELIVERIES_HEADER: &str = "x-wasya-redeliveries";
/// The header carrying why a message was dead-lettered.
pub const DEAD_REASON_HEADER: &str = "x-wasya-dead-reason";
const QUORUM_COUNT_HEADER: &str = "x-delivery-count";

/// Deliveries from one actor's queue.
pub struct AmqpSubscription {
    receiver: mpsc::Receiver<Delivery>,
}

impl Subscription for AmqpSubscription {
    fn next(&mut self) -> BoxFuture<'_, Option<Delivery>> {
        Box::pin(self.receiver.recv())
    }
}

/// Settles one RabbitMQ delivery; requeues it if dropped unsettled.
pub struct AmqpAck {
    acker: Option<Acker>,
    // Keeps the consumer's channel open until this delivery is settled.
    _channel: Channel,
    /// What a release republishes.
    copy: Option<Republish>,
}

/// A delivery as a release puts it back: same queue, body and headers, same count.
struct Republish {
    sessions: Arc<Sessions>,
    queue: String,
    body: Bytes,
    headers: FieldTable,
    redeliveries: u32,
}

/// How long a release waits for a connection before it falls back to a requeue.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl AmqpAck {
    fn settled(result: lapin::Result<bool>) -> Result<(), TransportError> {
        match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(TransportError::Other(
                "the delivery's channel is gone; the broker redelivers it".into(),
            )),
            Err(error) => Err(super::broker_error(error)),
        }
    }

    /// Republishes the message to `queue` with its count (and `reason`), then acks
    /// this delivery; when that cannot be done, a plain requeue.
    async fn move_to(
        mut self: Box<Self>,
        queue: Option<&str>,
        reason: Option<String>,
    ) -> Result<(), TransportError> {
        let (Some(acker), Some(copy)) = (self.acker.take(), self.copy.take()) else {
            return Ok(());
        };
        let Some(session) = copy.sessions.current(RELEASE_WAIT).await else {
            return Self::settled(acker.nack(requeue()).await);
        };
        let queue = queue.unwrap_or(&copy.queue);
        let (_, settled) = republish(
            &session,
            acker,
            queue,
            &copy.body,
            copy.headers,
            (copy.redeliveries, reason.as_deref()),
        )
        .await;
        Self::settled(settled)
    }
}

impl AckHandle for AmqpAck {
    fn ack(mut self: Box<Self>) -> BoxFuture<'static, Result<(), TransportError>> {
        Box::pin(async move {
            match self.acker.take() {
                Some(acker) => Self::settled(acker.ack(BasicAckOptions::default()).await),
                None => Ok(()),
            }
        })
    }

    fn requeue(mut self: Box<Self>) -> BoxFuture<'static, Result<(), TransportError>> {
        Box::pin(async move {
            match self.acker.take() {
                Some(acker) => Self::settled(acker.nack(requeue()).await),
                None => Ok(()),
            }
        })
    }

    /// Republishes the message to the back of its queue with its count unchanged, then
    /// acks this delivery (a nack would make the broker count a redelivery); when that
    /// cannot be done, a plain requeue.
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), TransportError>> {
        Box::pin(async move { self.move_to(None, None).await })
    }

    /// Moves the message whole to `{queue}-dlq`, with the reason in its headers.
    fn dead_letter(
        self: Box<Self>,
        reason: String,
    ) -> BoxFuture<'static, Result<(), TransportError>> {
        Box::pin(async move {
            let Some(queue) = self
                .copy
                .as_ref()
                .map(|copy| dead_letter_queue(&copy.queue))
            else {
                return Ok(());
            };
            tracing::warn!(dead_letter_queue = %queue, "{reason}");
            self.move_to(Some(&queue), Some(reason)).await
        })
    }
}

impl Drop for AmqpAck {
    fn drop(&mut self) {
        if let Some(acker) = self.acker.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = acker.nack(requeue()).await;
            });
        }
    }
}

fn requeue() -> BasicNackOptions {
    BasicNackOptions {
        requeue: true,
        multiple: false,
    }
}

/// Starts consuming `actor`'s queue.
pub fn spawn(
    sessions: Arc<Sessions>,
    options: Arc<AmqpOptions>,
    actor: String,
    prefetch: usize,
    stop: CancellationToken,
    tasks: &TaskTracker,
) -> AmqpSubscription {
    let prefetch = prefetch.clamp(1, usize::from(u16::MAX));
    let (sender, receiver) = mpsc::channel(prefetch);
    let consumer = Consumer {
        sessions,
        options: options.clone(),
        queue: options.names.for_actor(&actor),
        prefetch,
        sender,
        stop,
    };
    tasks.spawn(consumer.run());
    AmqpSubscription { receiver }
}

struct Consumer {
    sessions: Arc<Sessions>,
    options: Arc<AmqpOptions>,
    queue: String,
    prefetch: usize,
    sender: mpsc::Sender<Delivery>,
    stop: CancellationToken,
}

enum Ended {
    Stopped,
    Lost,
}

impl Consumer {
    async fn run(self) {
        let mut generation = 0;
        while let Some(session) = self.sessions.next_after(generation, &self.stop).await {
            generation = session.generation;
            match self.consume(&session).await {
                Ok(Ended::Stopped) => return,
                Ok(Ended::Lost) => {
                    tracing::warn!(queue = %self.queue, "consumer ended; resuming on the next connection");
                }
                Err(error) => {
                    tracing::warn!(queue = %self.queue, %error, "consumer failed; resuming on the next connection");
                }
            }
        }
    }

    async fn consume(&self, session: &Session) -> lapin::Result<Ended> {
        let channel = session.connection.create_channel().await?;
        let prefetch = u16::try_from(self.prefetch).unwrap_or(u16::MAX);
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        let mut consumer = channel
            .basic_consume(
                self.queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::debug!(queue = %self.queue, "consuming");
        loop {
            let item = tokio::select! {
                _ = self.stop.cancelled() => {
                    let _ = channel.basic_cancel(consumer.tag(), BasicCancelOptions::default()).await;
                    return Ok(Ended::Stopped);
                }
                // The router stopped listening (the actor was removed or replaced): stop
                // consuming now, not at the next delivery.
                _ = self.sender.closed() => {
                    let _ = channel.basic_cancel(consumer.tag(), BasicCancelOptions::default()).await;
                    return Ok(Ended::Stopped);
                }
                item = consumer.next() => item,
            };
            let delivery = match item {
                None => return Ok(Ended::Lost),
                Some(Err(error)) => return Err(error),
                Some(Ok(delivery)) => delivery,
            };
            if let Some(delivery) = self.admit(session, &channel, delivery).await
                && self.sender.send(delivery).await.is_err()
            {
                // The router stopped listening: what it did not take goes back.
                let _ = channel
                    .basic_cancel(consumer.tag(), BasicCancelOptions::default())
                    .await;
                return Ok(Ended::Stopped);
            }
        }
    }

    /// Counts the redeliveries of a message: hands it on, republishes it with its
    /// count, or dead-letters it.
    async fn admit(
        &self,
        session: &Session,
        channel: &Channel,
        delivery: LapinDelivery,
    ) -> Option<Delivery> {
        let headers = delivery.properties.headers().clone().unwrap_or_default();
        // Counts only from those who keep them: the broker on a redelivery, this
        // node on a message that came its republish way.
        let republished =
            delivery.exchange.as_str().is_empty() && delivery.routing_key.as_str() == self.queue;
        let quorum_count = delivery
            .redelivered
            .then(|| header_count(&headers, QUORUM_COUNT_HEADER))
            .flatten();
        let counted = republished
            .then(|| header_count(&headers, REDELIVERIES_HEADER))
            .flatten()
            .unwrap_or(0);
        let redeliveries = match quorum_count {
            Some(count) => count.max(counted),
            None => counted + u32::from(delivery.redelivered),
        };
        if redeliveries > self.options.max_redeliveries {
            let reason = format!(
                "redelivered {redeliveries} times without being settled (limit {}): it crashes or stalls whatever consumes it",
                self.options.max_redeliveries
            );
            self.move_to(
                session,
                delivery,
                &dead_letter_queue(&self.queue),
                headers,
                redeliveries,
                Some(reason),
            )
            .await;
            return None;
        }
        if quorum_count.is_none() && delivery.redelivered {
            // Classic queue: carry the count in the message itself.
            let queue = self.queue.clone();
            self.move_to(session, delivery, &queue, headers, redeliveries, None)
                .await;
            return None;
        }
        let LapinDelivery { data, acker, .. } = delivery;
        let body = Bytes::from(data);
        Some(Delivery {
            body: body.clone(),
            lineage: super::lineage_of(&headers),
            redeliveries,
            ack: Box::new(AmqpAck {
                acker: Some(acker),
                _channel: channel.clone(),
                copy: Some(Republish {
                    sessions: self.sessions.clone(),
                    queue: self.queue.clone(),
                    body,
                    headers,
                    redeliveries,
                }),
            }),
        })
    }

    /// Publishes a copy of `delivery` to `queue` with its count (and reason), then acks
    /// the original; on failure the original goes back to its queue.
    async fn move_to(
        &self,
        session: &Session,
        delivery: LapinDelivery,
        queue: &str,
        headers: FieldTable,
        redeliveries: u32,
        reason: Option<String>,
    ) {
        if let Some(reason) = &reason {
            tracing::warn!(queue = %self.queue, dead_letter_queue = queue, "{reason}");
        }
        let LapinDelivery { data, acker, .. } = delivery;
        let written = (redeliveries, reason.as_deref());
        let (moved, _) = republish(session, acker, queue, &data, headers, written).await;
        if !moved {
            tracing::warn!(
                queue,
                "could not move a redelivered message; it goes back to its queue"
            );
        }
    }
}

/// Publishes a copy of a message to `queue` with its redelivery count (and the reason
/// it moves, if any) written in, then
/// acks the original; when the broker does not confirm the copy, the original goes back
/// to its queue instead. Returns whether the copy was confirmed, and how the original
/// was settled.
async fn republish(
    session: &Session,
    acker: Acker,
    queue: &str,
    body: &[u8],
    mut headers: FieldTable,
    (redeliveries, reason): (u32, Option<&str>),
) -> (bool, lapin::Result<bool>) {
    headers.insert(
        REDELIVERIES_HEADER.into(),
        AMQPValue::LongInt(i32::try_from(redeliveries).unwrap_or(i32::MAX)),
    );
    if let Some(reason) = reason {
        headers.insert(
            DEAD_REASON_HEADER.into(),
            AMQPValue::LongString(reason.into()),
        );
    }
    let published = async {
        session
            .publisher()
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                body,
                json_properties().with_headers(headers),
            )
            .await?
            .await
    }
    .await;
    match published {
        Ok(Confirmation::Ack(_)) => (true, acker.ack(BasicAckOptions::default()).await),
        _ => (false, acker.nack(requeue()).await),
    }
}

fn header_count(headers: &FieldTable, name: &str) -> Option<u32> {
    let value = headers.inner().get(name)?;
    let count = match value {
        AMQPValue::LongLongInt(n) => *n,
        AMQPValue::LongInt(n) => i64::from(*n),
        AMQPValue::ShortInt(n) => i64::from(*n),
        AMQPValue::LongUInt(n) => i64::from(*n),
        _ => return None,
    };
    u32::try_from(count.max(0)).ok()
}
