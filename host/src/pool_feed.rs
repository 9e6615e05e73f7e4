//! The background work of a node in a pool that shares a store: following the
//! changes other nodes announce, and expiring old outcomes.
//!
//! Three tasks, stopped together: the store's change feed (`LISTEN`), a watcher
//! that reconciles the actors named in it (all of them after a reconnect, and every
//! [`RESYNC_EVERY`] in case a notification was lost), and the retention sweep. None
//! of them stops the node when the store is down: they log, wait and go on.

use crate::deployments::Deployments;
use crate::store::postgres::PgStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A full reconcile at least this often, whatever the change feed says.
pub const RESYNC_EVERY: Duration = Duration::from_secs(30);

/// The running control-plane tasks of one node.
pub struct PoolFeed {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl PoolFeed {
    /// Follows `store` for `deployments`, and expires outcomes older than `retention`.
    pub fn start(
        store: Arc<PgStore>,
        deployments: Arc<Deployments>,
        retention: Duration,
    ) -> PoolFeed {
        let stop = CancellationToken::new();
        let listen = tokio::spawn(store.clone().listen(stop.clone()));
        let watch = tokio::spawn(watch(store.clone(), deployments, stop.clone()));
        let expire = tokio::spawn(expire(store, retention, stop.clone()));
        PoolFeed {
            stop,
            tasks: vec![listen, watch, expire],
        }
    }

    /// Stops the tasks.
    pub async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn watch(store: Arc<PgStore>, deployments: Arc<Deployments>, stop: CancellationToken) {
    loop {
        let names = tokio::select! {
            _ = stop.cancelled() => return,
            names = store.changes().next() => names,
            _ = tokio::time::sleep(RESYNC_EVERY) => None,
        };
        tracing::debug!(?names, "reconciling with the store");
        if let Err(error) = deployments.sync(names).await {
            tracing::warn!(%error, "cannot reconcile with the store now; will retry");
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            store.changes().everything();
        }
    }
}

async fn expire(store: Arc<PgStore>, retention: Duration, stop: CancellationToken) {
    let every = (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match store.expire_outcomes(retention).await {
            Ok(0) => {}
            Ok(rows) => tracing::debug!(rows, "expired outcomes"),
            Err(error) => tracing::debug!(%error, "cannot expire outcomes now"),
        }
    }
}
