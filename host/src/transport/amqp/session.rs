//! One RabbitMQ connection, kept up.
//!
//! A supervisor task connects, opens the publisher channels (in confirm mode),
//! declares the topology, and publishes the new [`Session`] through a `watch` channel.
//! When the connection dies it publishes `None`, waits a pause of the node's one
//! backoff policy ([`crate::backoff::BROKER`], with jitter so a fleet of nodes does
//! not reconnect in lockstep) and starts over. Consumers and senders only ever wait for the next session: nobody else
//! reconnects, and nobody uses a dead connection.

use super::topology;
use super::{AmqpOptions, broker_error};
use crate::transport::TransportError;
use futures::StreamExt;
use lapin::options::ConfirmSelectOptions;
use lapin::{Channel, Connection, ConnectionProperties, Event};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A live connection and its publisher channels.
pub struct Session {
    /// The connection to the broker.
    pub connection: Connection,
    publishers: Vec<Channel>,
    next_publisher: AtomicUsize,
    /// Counts connections: a consumer knows when it is looking at a new one.
    pub generation: u64,
}

impl Session {
    /// A publisher channel, round-robin.
    pub fn publisher(&self) -> &Channel {
        let index = self.next_publisher.fetch_add(1, Ordering::Relaxed);
        &self.publishers[index % self.publishers.len()]
    }
}

/// The current session, and what every new one must declare.
pub struct Sessions {
    options: Arc<AmqpOptions>,
    current: watch::Sender<Option<Arc<Session>>>,
    declared: Mutex<Vec<String>>,
    last_error: Mutex<Option<String>>,
    stop: CancellationToken,
    supervisor: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

impl Sessions {
    /// Starts the supervisor.
    pub fn start(options: Arc<AmqpOptions>) -> Arc<Self> {
        let (current, _) = watch::channel(None);
        let sessions = Arc::new(Sessions {
            options,
            current,
            declared: Mutex::new(Vec::new()),
            last_error: Mutex::new(None),
            stop: CancellationToken::new(),
            supervisor: Mutex::new(None),
        });
        let handle = tokio::spawn(sessions.clone().supervise());
        *lock(&sessions.supervisor) = Some(handle);
        sessions
    }

    /// True while a connection to the broker is up.
    pub fn is_connected(&self) -> bool {
        self.current.borrow().is_some()
    }

    /// The last connection failure, for messages.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// The live session, waiting up to `wait` for one.
    pub async fn current(&self, wait: Duration) -> Option<Arc<Session>> {
        let mut receiver = self.current.subscribe();
        let found = tokio::time::timeout(wait, receiver.wait_for(Option::is_some)).await;
        match found {
            Ok(Ok(session)) => session.clone(),
            _ => None,
        }
    }

    /// A session newer than `generation`, or `None` once stopping.
    pub async fn next_after(
        &self,
        generation: u64,
        stop: &CancellationToken,
    ) -> Option<Arc<Session>> {
        let mut receiver = self.current.subscribe();
        let newer = receiver.wait_for(|session| {
            session
                .as_ref()
                .is_some_and(|session| session.generation > generation)
        });
        tokio::select! {
            _ = stop.cancelled() => None,
            _ = self.stop.cancelled() => None,
            session = newer => session.ok().and_then(|session| session.clone()),
        }
    }

    /// Declares the queue of `actor` now (when connected) and on every reconnect.
    pub async fn declare(&self, actor: &str) -> Result<(), TransportError> {
        {
            let mut declared = lock(&self.declared);
            if !declared.iter().any(|known| known == actor) {
                declared.push(actor.to_owned());
            }
        }
        let session = self
            .current(self.options.connect_timeout)
            .await
            .ok_or_else(|| TransportError::Other("not connected to RabbitMQ".into()))?;
        topology::declare_actor(&session.connection, &self.options, actor)
            .await
            .map_err(broker_error)
    }

    /// Stops declaring the queue of `actor` on reconnects.
    pub fn forget(&self, actor: &str) {
        lock(&self.declared).retain(|known| known != actor);
    }

    /// Stops reconnecting and closes the connection.
    pub async fn close(&self) {
        self.stop.cancel();
        let handle = lock(&self.supervisor).take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }

    async fn supervise(self: Arc<Self>) {
        let mut backoff = crate::backoff::BROKER.start();
        let mut generation = 0;
        while !self.stop.is_cancelled() {
            generation += 1;
            match self.open(generation).await {
                Ok(session) => {
                    backoff.reset();
                    *lock(&self.last_error) = None;
                    tracing::info!(generation, "connected to RabbitMQ");
                    let events = session.connection.events_listener();
                    self.current.send_replace(Some(session.clone()));
                    let stopped = self.wait_until_lost(&session, events).await;
                    self.current.send_replace(None);
                    if stopped {
                        close_session(&session).await;
                        break;
                    }
                    tracing::warn!(generation, "lost the RabbitMQ connection; reconnecting");
                }
                Err(error) => {
                    tracing::warn!(%error, url = %redact(&self.options.url), "cannot connect to RabbitMQ");
                    *lock(&self.last_error) = Some(error.to_string());
                }
            }
            let pause = backoff.next_pause();
            tokio::select! {
                _ = self.stop.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        self.current.send_replace(None);
    }

    async fn open(&self, generation: u64) -> lapin::Result<Arc<Session>> {
        let properties = ConnectionProperties::default()
            .with_connection_name(self.options.connection_name.as_str().into());
        let connection = Connection::connect(&self.options.url, properties).await?;
        let mut publishers = Vec::with_capacity(self.options.publish_channels.max(1));
        for _ in 0..self.options.publish_channels.max(1) {
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            publishers.push(channel);
        }
        topology::declare_exchange(&connection, &self.options).await?;
        let declared = lock(&self.declared).clone();
        for actor in declared {
            topology::declare_actor(&connection, &self.options, &actor).await?;
        }
        Ok(Arc::new(Session {
            connection,
            publishers,
            next_publisher: AtomicUsize::new(0),
            generation,
        }))
    }

    /// Waits until the connection dies (false) or the transport stops (true).
    async fn wait_until_lost(
        &self,
        session: &Session,
        events: impl futures::Stream<Item = Event> + Send,
    ) -> bool {
        let mut events = std::pin::pin!(events);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return true,
                event = events.next() => match event {
                    None => return false,
                    Some(Event::Error(error)) if !session.connection.status().connected() => {
                        tracing::warn!(%error, "RabbitMQ connection error");
                        return false;
                    }
                    Some(_) => {}
                },
            }
        }
    }
}

async fn close_session(session: &Session) {
    for channel in &session.publishers {
        let _ = channel.close(200, "node stopping".into()).await;
    }
    if let Err(error) = session.connection.close(200, "node stopping".into()).await {
        tracing::debug!(%error, "closing the RabbitMQ connection");
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("amqp://guest:secret@host:5672/%2f"),
            "amqp://guest:***@host:5672/%2f"
        );
        assert_eq!(super::redact("amqp://host"), "amqp://host");
    }
}
