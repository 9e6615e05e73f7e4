//! The change feed: other nodes announce changed actors with `NOTIFY`; this node
//! `LISTEN`s on a connection of its own and queues the names to reconcile.

use super::{CONNECT_TIMEOUT, PgStore};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as SyncMutex};
use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

/// Actors changed elsewhere in the pool, waiting to be reconciled.
#[derive(Default)]
pub struct Changes {
    names: SyncMutex<HashSet<String>>,
    everything: AtomicBool,
    notify: Notify,
}

impl Changes {
    fn actor(&self, name: String) {
        self.names
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(name);
        self.notify.notify_one();
    }

    /// Asks for a full reconcile.
    pub fn everything(&self) {
        self.everything.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// Waits for changes: `None` means "reconcile everything".
    pub async fn next(&self) -> Option<Vec<String>> {
        loop {
            if self.everything.swap(false, Ordering::SeqCst) {
                self.names
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .clear();
                return None;
            }
            let names: Vec<String> = self
                .names
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .drain()
                .collect();
            if !names.is_empty() {
                return Some(names);
            }
            self.notify.notified().await;
        }
    }
}

impl PgStore {
    /// Listens for changes until `stop`; after every (re)connection asks for a full
    /// reconcile, since announcements may have been missed.
    pub async fn listen(self: Arc<Self>, stop: CancellationToken) {
        let mut backoff = crate::backoff::STORE.start();
        loop {
            let connected =
                tokio::time::timeout(CONNECT_TIMEOUT, self.config.connect(self.tls.clone())).await;
            let (client, mut connection) = match connected {
                Ok(Ok(pair)) => pair,
                failed => {
                    if let Ok(Err(error)) = failed {
                        tracing::debug!(%error, "cannot listen to the store yet");
                    }
                    self.reachable.store(false, Ordering::SeqCst);
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(backoff.next_pause()) => {}
                    }
                    continue;
                }
            };
            let (sender, mut messages) = tokio::sync::mpsc::channel(64);
            let pump = tokio::spawn(async move {
                let mut stream = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(message) = futures::StreamExt::next(&mut stream).await {
                    let Ok(message) = message else { break };
                    if sender.send(message).await.is_err() {
                        break;
                    }
                }
            });
            if let Err(error) = client
                .batch_execute(&format!("LISTEN \"{}\"", self.channel))
                .await
            {
                tracing::warn!(%error, "cannot listen to the store");
                pump.abort();
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff.next_pause()) => {}
                }
                continue;
            }
            backoff.reset();
            self.reachable.store(true, Ordering::SeqCst);
            self.changes.everything();
            loop {
                tokio::select! {
                    _ = stop.cancelled() => {
                        pump.abort();
                        return;
                    }
                    message = messages.recv() => match message {
                        Some(AsyncMessage::Notification(notification)) => {
                            self.changes.actor(notification.payload().to_owned());
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
            }
            tracing::warn!("lost the store's change feed; reconnecting");
            self.reachable.store(false, Ordering::SeqCst);
        }
    }
}
