//! The mesh's topology on RabbitMQ, as Asya lays it out: a durable topic exchange
//! (`asya`), and for each actor a durable queue `asya-{actor}` bound with routing key
//! `{actor}`, plus `asya-{actor}-dlq` for messages that would loop forever.
//!
//! A queue that already exists with other arguments (a quorum queue, a max length set
//! by an operator) makes the broker refuse our declaration with PRECONDITION_FAILED and
//! close the channel; we then check that it exists on a fresh channel and use it as it
//! is. Each declaration runs on a short-lived channel of its own for that reason.

use super::AmqpOptions;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::FieldTable;
use lapin::{Connection, ErrorKind, ExchangeKind};

pub use crate::queues::dead_letter_queue;

fn is_precondition_failed(error: &lapin::Error) -> bool {
    matches!(error.kind(), ErrorKind::ProtocolError(amqp)
        if *amqp.kind() == AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED))
}

/// Declares the exchange.
pub async fn declare_exchange(connection: &Connection, options: &AmqpOptions) -> lapin::Result<()> {
    let channel = connection.create_channel().await?;
    let declared = channel
        .exchange_declare(
            options.exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await;
    match declared {
        Err(error) if is_precondition_failed(&error) => {
            tracing::info!(exchange = %options.exchange, "exchange exists with other settings; using it as it is");
            Ok(())
        }
        other => {
            let _ = channel.close(200, "declared".into()).await;
            other
        }
    }
}

/// Declares a durable queue, or accepts the one that exists with other arguments.
async fn declare_queue(connection: &Connection, queue: &str) -> lapin::Result<()> {
    let channel = connection.create_channel().await?;
    let declared = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await;
    match declared {
        Ok(_) => {
            let _ = channel.close(200, "declared".into()).await;
            Ok(())
        }
        Err(error) if is_precondition_failed(&error) => {
            tracing::info!(
                queue,
                "queue exists with other arguments; using it as it is"
            );
            passive_declare(connection, queue).await.map(drop)
        }
        Err(error) => Err(error),
    }
}

/// Declares `queue` passively: it must exist; the broker answers its counts.
async fn passive_declare(connection: &Connection, queue: &str) -> lapin::Result<lapin::Queue> {
    let channel = connection.create_channel().await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let declared = channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await?;
    let _ = channel.close(200, "declared".into()).await;
    Ok(declared)
}

/// Declares the queue of `actor`, binds it, and declares its dead-letter queue.
pub async fn declare_actor(
    connection: &Connection,
    options: &AmqpOptions,
    actor: &str,
) -> lapin::Result<()> {
    let queue = options.names.for_actor(actor);
    declare_queue(connection, &queue).await?;
    declare_queue(connection, &dead_letter_queue(&queue)).await?;
    let channel = connection.create_channel().await?;
    channel
        .queue_bind(
            queue.as_str().into(),
            options.exchange.as_str().into(),
            actor.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let _ = channel.close(200, "declared".into()).await;
    Ok(())
}

/// How many consumers `queue` has (0 when it does not exist).
pub async fn consumer_count(connection: &Connection, queue: &str) -> lapin::Result<u32> {
    match passive_declare(connection, queue).await {
        Ok(queue) => Ok(queue.consumer_count()),
        Err(error)
            if matches!(error.kind(), ErrorKind::ProtocolError(amqp)
            if *amqp.kind() == AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)) =>
        {
            Ok(0)
        }
        Err(error) => Err(error),
    }
}

/// How many messages `queue` holds ready for delivery (`None` when it does not exist).
pub async fn message_count(connection: &Connection, queue: &str) -> lapin::Result<Option<u32>> {
    match passive_declare(connection, queue).await {
        Ok(queue) => Ok(Some(queue.message_count())),
        Err(error)
            if matches!(error.kind(), ErrorKind::ProtocolError(amqp)
            if *amqp.kind() == AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)) =>
        {
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// Removes the binding of `actor`'s queue: publishing to the actor becomes unroutable
/// (a mandatory publish comes back), while the queue keeps its messages.
pub async fn unbind_actor(
    connection: &Connection,
    options: &AmqpOptions,
    actor: &str,
) -> lapin::Result<()> {
    let queue = options.names.for_actor(actor);
    let channel = connection.create_channel().await?;
    channel
        .queue_unbind(
            queue.as_str().into(),
            options.exchange.as_str().into(),
            actor.into(),
            FieldTable::default(),
        )
        .await?;
    let _ = channel.close(200, "unbound".into()).await;
    Ok(())
}
