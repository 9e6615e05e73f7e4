//! The shared control plane of a pool of nodes, in PostgreSQL.
//!
//! RabbitMQ stays the data plane; this store holds what every node of a pool must
//! agree on: the deployed actors (the same [`ActorRecord`] a single node keeps in its
//! data directory), their components, the compiled forms of those components per
//! engine, and the outcomes of envelopes.
//!
//! - **Migrations** live in `host/migrations/` and are applied at start under an
//!   advisory lock, so nodes that start together apply each once.
//! - **Propagation**: a change to an actor is written and announced with `NOTIFY` in
//!   one transaction; every node `LISTEN`s and reconciles that actor. After the
//!   listening connection is re-established, a node reconciles everything, since it
//!   may have missed announcements.
//! - **Outages**: every query has a timeout; a failed connection is re-made on the
//!   next use, no more than once per [`RETRY_PAUSE`], so a store that is down costs
//!   callers a fast error, not a hang. The node keeps routing with what it runs, and
//!   [`PgStore::is_reachable`] feeds readiness.
//!
//! Connections are unencrypted (`NoTls`): run the store on a private network or behind
//! a TLS-terminating proxy.
//!
//! One file per concern: [`migrate`] the schema, [`changes`] the change feed,
//! [`records`] the deployments (the [`Store`] trait), [`artifacts`] compiled
//! components, [`outcomes`] envelope outcomes.

mod artifacts;
mod changes;
mod migrate;
mod outcomes;
mod records;

use super::StoreError;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

pub use changes::Changes;

/// Longest wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for one query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// After a failed connection, callers get an error at once for this long.
pub const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// How long a node keeps trying to reach the store at start.
const START_DEADLINE: Duration = Duration::from_secs(30);

struct Connection {
    client: Option<Arc<Client>>,
    failed_at: Option<Instant>,
}

/// A pool's control plane in one PostgreSQL schema.
pub struct PgStore {
    config: tokio_postgres::Config,
    schema: String,
    channel: String,
    connection: Mutex<Connection>,
    reachable: AtomicBool,
    changes: Changes,
}

/// A failure of `context`; the driver keeps the useful part (such as "connection
/// refused") in its error's causes, which the message at the edge tells.
fn store_error(context: &str, error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::failed(context, error)
}

/// Checks a schema name: it is spliced into SQL, so only `[a-z_][a-z0-9_]{0,62}`.
fn check_schema(schema: &str) -> Result<(), StoreError> {
    let bytes = schema.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::message(format!(
            "store schema `{schema}` is invalid: use [a-z_][a-z0-9_]*, at most 63 characters"
        )))
    }
}

impl PgStore {
    /// Connects (retrying for a while: the store may start after the node), applies
    /// the migrations, and returns the store.
    pub async fn connect(url: &str, schema: &str) -> Result<Arc<PgStore>, StoreError> {
        check_schema(schema)?;
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|error| store_error("the store URL is invalid", error))?;
        config
            .application_name(format!("wasya-{schema}"))
            .connect_timeout(CONNECT_TIMEOUT);
        let store = Arc::new(PgStore {
            config,
            schema: schema.to_owned(),
            channel: format!("{schema}_actors"),
            connection: Mutex::new(Connection {
                client: None,
                failed_at: None,
            }),
            reachable: AtomicBool::new(false),
            changes: Changes::default(),
        });
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            match store.migrate().await {
                Ok(()) => break,
                Err(error) if Instant::now() < deadline => {
                    tracing::warn!(%error, "the store is not reachable yet; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(error) => return Err(error),
            }
        }
        store.reachable.store(true, Ordering::SeqCst);
        Ok(store)
    }

    /// Whether the last attempt to use the store worked.
    pub fn is_reachable(&self) -> bool {
        self.reachable.load(Ordering::SeqCst)
    }

    /// Changes announced by other nodes.
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// A new connection, driven by a task of its own until the client is dropped.
    async fn new_connection(&self) -> Result<Client, StoreError> {
        let (client, connection) =
            tokio::time::timeout(CONNECT_TIMEOUT, self.config.connect(NoTls))
                .await
                .map_err(|_| StoreError::message("the store did not answer in time"))?
                .map_err(|error| store_error("cannot connect to the store", error))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "a store connection ended");
            }
        });
        Ok(client)
    }

    /// A new connection in the pool's schema.
    async fn open(&self) -> Result<Client, StoreError> {
        let client = self.new_connection().await?;
        client
            .batch_execute(&format!("SET search_path TO \"{}\"", self.schema))
            .await
            .map_err(|error| store_error("cannot select the store schema", error))?;
        Ok(client)
    }

    /// The shared connection, re-made when it broke (at most once per pause).
    async fn client(&self) -> Result<Arc<Client>, StoreError> {
        let mut connection = self.connection.lock().await;
        if let Some(client) = &connection.client
            && !client.is_closed()
        {
            return Ok(client.clone());
        }
        if let Some(failed_at) = connection.failed_at
            && failed_at.elapsed() < RETRY_PAUSE
        {
            return Err(StoreError::message("the store is unreachable"));
        }
        match self.open().await {
            Ok(client) => {
                let client = Arc::new(client);
                connection.client = Some(client.clone());
                connection.failed_at = None;
                if !self.reachable.swap(true, Ordering::SeqCst) {
                    tracing::info!("the store is reachable again");
                }
                Ok(client)
            }
            Err(error) => {
                connection.client = None;
                connection.failed_at = Some(Instant::now());
                if self.reachable.swap(false, Ordering::SeqCst) {
                    tracing::warn!(%error, "the store is unreachable");
                }
                Err(error)
            }
        }
    }

    /// Runs `work` on the shared connection with a timeout; a failure marks the store
    /// unreachable until a connection works again.
    async fn with_client<R, F>(&self, context: &str, work: F) -> Result<R, StoreError>
    where
        F: AsyncFnOnce(&Client) -> Result<R, tokio_postgres::Error>,
    {
        let client = self.client().await?;
        match tokio::time::timeout(QUERY_TIMEOUT, work(&client)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                if client.is_closed() {
                    self.reachable.store(false, Ordering::SeqCst);
                }
                Err(store_error(context, error))
            }
            Err(_) => {
                self.reachable.store(false, Ordering::SeqCst);
                self.connection.lock().await.client = None;
                Err(StoreError::message(format!(
                    "{context}: the store did not answer in time"
                )))
            }
        }
    }
}

/// Runs `work` in a transaction: committed when it succeeds, rolled back when not.
async fn transaction<R>(
    client: &Client,
    work: impl AsyncFnOnce(&Client) -> Result<R, tokio_postgres::Error>,
) -> Result<R, tokio_postgres::Error> {
    client.batch_execute("BEGIN").await?;
    match work(client).await {
        Ok(value) => {
            client.batch_execute("COMMIT").await?;
            Ok(value)
        }
        Err(error) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked_before_they_reach_sql() {
        for good in ["wasya", "wasya_test_1", "_x"] {
            assert!(check_schema(good).is_ok(), "{good}");
        }
        for bad in ["", "Wasya", "a-b", "x\"; DROP TABLE actors; --", "1abc"] {
            assert!(check_schema(bad).is_err(), "{bad}");
        }
    }
}
