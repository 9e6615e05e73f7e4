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
//! - **Connections** come from a pool (`deadpool-postgres`, `--store-connections`), so
//!   a 35 MB component on its way in or out holds one connection, not everyone's.
//!   Each kind of query has its own timeout ([`Query`]): control-plane reads and
//!   writes a few seconds, components and compiled artifacts minutes.
//! - **Outages**: a failed connection makes callers fail at once for a pause of the
//!   node's backoff policy ([`crate::backoff::STORE`], growing while the store stays
//!   away), so a store that is down costs callers a fast error, not a hang. The node
//!   keeps routing with what it runs, and [`PgStore::is_reachable`] feeds readiness.
//! - **TLS** follows libpq's `sslmode` in the URL ([`tls`]): `prefer` by default,
//!   `require`, `verify-ca`, `verify-full` with `sslrootcert`.
//!
//! One file per concern: [`migrate`] the schema, [`changes`] the change feed,
//! [`records`] the deployments (the [`Store`] trait), [`artifacts`] compiled
//! components, [`outcomes`] envelope outcomes, [`tls`] the connector.

mod artifacts;
mod changes;
mod migrate;
mod outcomes;
mod records;
mod tls;

use super::StoreError;
use crate::backoff::Backoff;
use crate::config::StoreSettings;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

pub use changes::Changes;
pub use tls::StoreUrl;

/// Longest wait for a new connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a node keeps trying to reach the store at start.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// The kinds of query, each with its own timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// Actor records, outcomes, progress, migrations: small rows.
    Control,
    /// Components and compiled artifacts: tens of megabytes each.
    Bulk,
}

impl Query {
    /// The longest this kind of query may take, waiting for a connection included.
    pub fn timeout(self) -> Duration {
        match self {
            Query::Control => Duration::from_secs(5),
            Query::Bulk => Duration::from_secs(120),
        }
    }
}

/// After a failed connection: callers get an error at once until `until`.
struct Breaker {
    backoff: Backoff,
    until: Option<Instant>,
}

/// A pool's control plane in one PostgreSQL schema.
pub struct PgStore {
    pool: Pool,
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    schema: String,
    channel: String,
    breaker: Mutex<Breaker>,
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
    pub async fn connect(settings: &StoreSettings) -> Result<Arc<PgStore>, StoreError> {
        let schema = settings.schema.as_str();
        check_schema(schema)?;
        let url = StoreUrl::parse(&settings.url)?;
        let tls = url.connector()?;
        let mut config = url.config;
        config
            .application_name(format!("wasya-{schema}"))
            .connect_timeout(CONNECT_TIMEOUT)
            // Every connection starts in the pool's schema (checked above: no quoting
            // needed); it need not exist yet, the migrations create it.
            .options(format!("-c search_path={schema}"));
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.connections.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|error| store_error("cannot set up the store's connections", error))?;
        let store = Arc::new(PgStore {
            pool,
            config,
            tls,
            schema: schema.to_owned(),
            channel: format!("{schema}_actors"),
            breaker: Mutex::new(Breaker {
                backoff: crate::backoff::STORE.start(),
                until: None,
            }),
            reachable: AtomicBool::new(false),
            changes: Changes::default(),
        });
        let deadline = Instant::now() + START_DEADLINE;
        let mut backoff = crate::backoff::STORE.start();
        loop {
            match store.migrate().await {
                Ok(()) => break,
                Err(error) if Instant::now() < deadline => {
                    tracing::warn!(
                        error = %crate::error_chain::chain(&error),
                        "the store is not reachable yet; retrying"
                    );
                    tokio::time::sleep(backoff.next_pause()).await;
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

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new connection outside the pool, driven by a task of its own until the
    /// client is dropped (migrations hold a session lock on it).
    async fn new_connection(&self) -> Result<Client, StoreError> {
        let (client, connection) =
            tokio::time::timeout(CONNECT_TIMEOUT, self.config.connect(self.tls.clone()))
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

    /// A connection from the pool; after a failed connection, an error at once until
    /// the backoff's pause is over.
    async fn client(&self) -> Result<Object, StoreError> {
        if let Some(until) = self.breaker().until
            && Instant::now() < until
        {
            return Err(StoreError::message("the store is unreachable"));
        }
        match self.pool.get().await {
            Ok(client) => {
                {
                    let mut breaker = self.breaker();
                    breaker.until = None;
                    breaker.backoff.reset();
                }
                if !self.reachable.swap(true, Ordering::SeqCst) {
                    tracing::info!("the store is reachable again");
                }
                Ok(client)
            }
            Err(PoolError::Timeout(deadpool_postgres::TimeoutType::Wait)) => Err(
                StoreError::message("every store connection is busy; try again"),
            ),
            Err(error) => {
                {
                    let mut breaker = self.breaker();
                    let pause = breaker.backoff.next_pause();
                    breaker.until = Some(Instant::now() + pause);
                }
                let error = store_error("cannot connect to the store", error);
                if self.reachable.swap(false, Ordering::SeqCst) {
                    tracing::warn!(error = %crate::error_chain::chain(&error), "the store is unreachable");
                }
                Err(error)
            }
        }
    }

    /// Runs `work` on a pooled connection within the timeout of its kind; a
    /// connection that broke or timed out is not reused, and marks the store
    /// unreachable until a connection works again.
    async fn with_client<R, F>(&self, kind: Query, context: &str, work: F) -> Result<R, StoreError>
    where
        F: AsyncFnOnce(&Client) -> Result<R, tokio_postgres::Error>,
    {
        let started = tokio::time::Instant::now();
        let deadline = started + kind.timeout();
        let client = tokio::time::timeout_at(deadline, self.client())
            .await
            .map_err(|_| {
                StoreError::message(format!("{context}: no store connection in time"))
            })??;
        match tokio::time::timeout_at(deadline, work(&client)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                if client.is_closed() {
                    self.reachable.store(false, Ordering::SeqCst);
                }
                Err(store_error(context, error))
            }
            Err(_) => {
                // The connection may be mid-query: take it out of the pool, so it closes.
                drop(Object::take(client));
                self.reachable.store(false, Ordering::SeqCst);
                Err(StoreError::message(format!(
                    "{context}: the store did not answer within {}",
                    humantime::format_duration(kind.timeout())
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
