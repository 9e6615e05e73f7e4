//! RabbitMQ through lapin, with the topology of the Asya mesh.
//!
//! - [`session`] keeps one connection up: it reconnects with backoff and jitter,
//!   redeclares the topology, and tells everyone when a new connection is ready;
//! - [`topology`] declares the exchange, the queues and their bindings, and uses a queue
//!   that exists with other arguments (as Asya's operator creates them) as it is;
//! - [`consumer`] turns a queue into a [`Subscription`] that survives reconnects, counts
//!   redeliveries and dead-letters messages past the limit;
//! - [`depth`] keeps the broker's count of each actor's queue for readers that cannot
//!   wait for it.
//!
//! Every message is published as Asya's sidecar publishes it (persistent JSON with a
//! `timestamp`), and a fan-out child's lineage travels in the AMQP headers
//! `wasya-root` and `wasya-branch`, not in the JSON body Asya's consumers read.
//!
//! Every output is published persistent, with publisher confirms, and `mandatory`, so a
//! message for an actor whose queue does not exist comes back as
//! [`TransportError::NoSuchQueue`] instead of vanishing. `send` returns only after the
//! broker confirmed, which is what lets the router ack the input afterwards.

pub mod consumer;
pub mod depth;
pub mod session;
pub mod topology;

use super::{Message, Subscription, Transport, TransportError};
use crate::branch::{BRANCH_HEADER, Lineage, ROOT_HEADER};
use crate::queues::QueueNames;
use futures::future::BoxFuture;
use lapin::Confirmation;
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Error as LapinError};
use session::Sessions;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a send waits for a connection before it fails (the input then goes back).
const SEND_WAIT: Duration = Duration::from_secs(30);

/// How a node uses RabbitMQ.
#[derive(Debug, Clone)]
pub struct AmqpOptions {
    /// `amqp://user:pass@host:port/vhost` (`%2f` for `/`).
    pub url: String,
    /// The topic exchange actors' queues are bound to (`asya`).
    pub exchange: String,
    /// How actor names map to queue names (the `asya-` prefix by default).
    pub names: QueueNames,
    /// Deliveries past this many redeliveries go to `{queue}-dlq`.
    pub max_redeliveries: u32,
    /// Channels publishes are spread over.
    pub publish_channels: usize,
    /// Shown in the broker's connection list.
    pub connection_name: String,
    /// How long the first connection may take before the node gives up starting.
    pub connect_timeout: Duration,
}

impl AmqpOptions {
    /// Options for the broker at `url`, everything else at its default.
    pub fn new(url: impl Into<String>) -> Self {
        AmqpOptions {
            url: url.into(),
            exchange: crate::defaults::EXCHANGE.into(),
            names: QueueNames::default(),
            max_redeliveries: crate::defaults::MAX_REDELIVERIES,
            publish_channels: 4,
            connection_name: format!("wasya-{}", std::process::id()),
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// The RabbitMQ transport.
pub struct AmqpTransport {
    sessions: Arc<Sessions>,
    options: Arc<AmqpOptions>,
    depths: Arc<depth::Depths>,
    stop_consumers: CancellationToken,
    consumers: TaskTracker,
}

/// Shorthand for a broker failure.
pub(crate) fn broker_error(error: LapinError) -> TransportError {
    TransportError::Broker {
        context: "RabbitMQ".into(),
        source: Box::new(error),
    }
}

/// How long a retire waits for the queue's last consumers to go (its own, and those
/// of pool nodes told of the removal) before it leaves the binding alone.
const RETIRE_WAIT: Duration = Duration::from_secs(3);

/// The properties of every message wasya publishes: persistent JSON, stamped with
/// the time it was published (seconds since the epoch), as Asya's sidecar stamps its.
pub(crate) fn json_properties() -> BasicProperties {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_timestamp(now)
}

/// The AMQP headers a message's lineage travels in.
pub(crate) fn lineage_headers(lineage: &Lineage) -> FieldTable {
    let mut headers = FieldTable::default();
    headers.insert(
        ROOT_HEADER.into(),
        AMQPValue::LongString(lineage.root.as_str().into()),
    );
    headers.insert(
        BRANCH_HEADER.into(),
        AMQPValue::LongString(lineage.path.as_str().into()),
    );
    headers
}

/// The lineage in a delivery's AMQP headers, where both are there as text.
pub(crate) fn lineage_of(headers: &FieldTable) -> Option<Lineage> {
    let text = |name: &str| match headers.inner().get(name)? {
        AMQPValue::LongString(text) => Some(text.to_string()),
        AMQPValue::ShortString(text) => Some(text.as_str().to_owned()),
        _ => None,
    };
    Some(Lineage {
        root: text(ROOT_HEADER)?,
        path: text(BRANCH_HEADER)?,
    })
}

impl AmqpTransport {
    /// Connects (waiting up to `connect_timeout` for the first connection) and keeps
    /// the connection up from then on.
    pub async fn connect(options: AmqpOptions) -> Result<Self, TransportError> {
        let options = Arc::new(options);
        let sessions = Sessions::start(options.clone());
        if sessions.current(options.connect_timeout).await.is_none() {
            let reason = sessions.last_error().unwrap_or_else(|| "no answer".into());
            sessions.close().await;
            return Err(TransportError::Other(format!(
                "cannot reach RabbitMQ at {} within {:?}: {reason}",
                session::redact(&options.url),
                options.connect_timeout
            )));
        }
        Ok(AmqpTransport {
            sessions,
            options,
            depths: Arc::default(),
            stop_consumers: CancellationToken::new(),
            consumers: TaskTracker::new(),
        })
    }

    /// What [`Transport::retire`] does: stops redeclaring the actor's queue on reconnects,
    /// and unbinds it once nobody consumes it.
    async fn unbind_when_unconsumed(&self, actor: &str) -> Result<(), TransportError> {
        self.sessions.forget(actor);
        let session = self
            .sessions
            .current(SEND_WAIT)
            .await
            .ok_or_else(|| TransportError::Other("not connected to RabbitMQ".into()))?;
        let queue = self.options.names.for_actor(actor);
        let deadline = tokio::time::Instant::now() + RETIRE_WAIT;
        loop {
            let consumers = topology::consumer_count(&session.connection, &queue)
                .await
                .map_err(broker_error)?;
            if consumers == 0 {
                return topology::unbind_actor(&session.connection, &self.options, actor)
                    .await
                    .map_err(broker_error);
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::info!(
                    queue,
                    consumers,
                    "others still consume the queue; it stays bound"
                );
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Publishes `message` to the actor's routing key and waits for the broker's confirm.
    async fn publish(&self, actor: &str, message: Message) -> Result<(), TransportError> {
        let Message { body, lineage } = message;
        let mut properties = json_properties();
        if let Some(lineage) = &lineage {
            properties = properties.with_headers(lineage_headers(lineage));
        }
        let session = self
            .sessions
            .current(SEND_WAIT)
            .await
            .ok_or_else(|| TransportError::Other("not connected to RabbitMQ".into()))?;
        let confirm = session
            .publisher()
            .basic_publish(
                self.options.exchange.as_str().into(),
                actor.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &body,
                properties,
            )
            .await
            .map_err(broker_error)?
            .await
            .map_err(broker_error)?;
        match confirm {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_returned)) => {
                Err(TransportError::NoSuchQueue(actor.to_owned()))
            }
            Confirmation::Nack(_) => Err(TransportError::Other(format!(
                "the broker refused a message for `{actor}`"
            ))),
            Confirmation::NotRequested => Err(TransportError::Other(
                "publisher confirms are not enabled on the channel".into(),
            )),
        }
    }

    /// What [`Transport::close`] does: stops the consumers, waits for them, then closes
    /// the connection.
    async fn shut_down(&self) {
        self.stop_consumers.cancel();
        self.consumers.close();
        self.consumers.wait().await;
        self.sessions.close().await;
    }
}

impl Transport for AmqpTransport {
    fn name(&self) -> &'static str {
        "amqp"
    }

    fn declare<'a>(&'a self, actor: &'a str) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(self.sessions.declare(actor))
    }

    /// Unbinds the actor's queue from the exchange once nobody consumes it, so that
    /// publishing to the actor fails as unroutable; its messages stay in the queue.
    /// While other consumers remain (nodes of a pool without a shared store that
    /// still serve it) the binding stays.
    fn retire<'a>(&'a self, actor: &'a str) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(self.unbind_when_unconsumed(actor))
    }

    fn subscribe<'a>(
        &'a self,
        actor: &'a str,
        prefetch: usize,
    ) -> BoxFuture<'a, Result<Box<dyn Subscription>, TransportError>> {
        Box::pin(async move {
            let subscription = consumer::spawn(
                self.sessions.clone(),
                self.options.clone(),
                actor.to_owned(),
                prefetch,
                self.stop_consumers.clone(),
                &self.consumers,
            );
            Ok(Box::new(subscription) as Box<dyn Subscription>)
        })
    }

    fn send<'a>(
        &'a self,
        actor: &'a str,
        message: Message,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(self.publish(actor, message))
    }

    fn pending(&self) -> Option<usize> {
        None
    }

    /// The messages ready in the actor's queue, as the broker last counted them (at
    /// most a second or two ago).
    fn depth(&self, actor: &str) -> Option<usize> {
        self.depths
            .read(&self.options.names.for_actor(actor), &self.sessions)
    }

    fn keeps_queued(&self) -> bool {
        true
    }

    /// Four times the calls: a persistent message's confirm waits for the broker's
    /// disk, so while outputs wait for theirs, the next messages are called. The
    /// broker may hand this node that many messages (at prefetch 1, four).
    fn handoff_window(&self, concurrency: usize) -> usize {
        concurrency.saturating_mul(4)
    }

    fn unready(&self) -> Option<&'static str> {
        (!self.sessions.is_connected()).then_some("transport disconnected")
    }

    fn stop_consuming(&self) {
        self.stop_consumers.cancel();
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.shut_down())
    }
}
