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

use super::{ActorRecord, Store, StoreError, follows};
use crate::envelope::Envelope;
use crate::outcomes::shared::{Ended, SharedError, SharedOutcomes};
use crate::records::End;
use crate::runtime::wasm::artifacts::Artifacts;
use futures::FutureExt;
use futures::future::BoxFuture;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Notify};
use tokio_postgres::{AsyncMessage, Client, NoTls};
use tokio_util::sync::CancellationToken;

/// The migrations, in order: (version, SQL).
const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("../../migrations/0001_control_plane.sql"))];
/// Longest wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for one query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// After a failed connection, callers get an error at once for this long.
pub const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// How long a node keeps trying to reach the store at start.
const START_DEADLINE: Duration = Duration::from_secs(30);

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

    /// Creates the schema and applies what migrations it lacks, one node at a time.
    async fn migrate(&self) -> Result<(), StoreError> {
        let client = self.new_connection().await?;
        let sql = |error| store_error("migrating the store", error);
        client
            .execute("SELECT pg_advisory_lock(hashtext($1))", &[&self.schema])
            .await
            .map_err(sql)?;
        let applied = async {
            client
                .batch_execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS \"{0}\"; SET search_path TO \"{0}\";
                     CREATE TABLE IF NOT EXISTS wasya_migrations (
                         version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());",
                    self.schema
                ))
                .await?;
            for (version, migration) in MIGRATIONS {
                let done = client
                    .query_opt(
                        "SELECT 1 FROM wasya_migrations WHERE version = $1",
                        &[version],
                    )
                    .await?
                    .is_some();
                if done {
                    continue;
                }
                transaction(&client, async |client| {
                    client.batch_execute(migration).await?;
                    client
                        .execute(
                            "INSERT INTO wasya_migrations (version) VALUES ($1)",
                            &[version],
                        )
                        .await
                })
                .await?;
                tracing::info!(version, schema = %self.schema, "store migration applied");
            }
            Ok::<_, tokio_postgres::Error>(())
        }
        .await;
        let _ = client
            .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&self.schema])
            .await;
        applied.map_err(sql)
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

    /// Listens for changes until `stop`; after every (re)connection asks for a full
    /// reconcile, since announcements may have been missed.
    pub async fn listen(self: Arc<Self>, stop: CancellationToken) {
        let mut pause = Duration::from_millis(100);
        loop {
            let connected = tokio::time::timeout(CONNECT_TIMEOUT, self.config.connect(NoTls)).await;
            let (client, mut connection) = match connected {
                Ok(Ok(pair)) => pair,
                Ok(Err(error)) => {
                    tracing::debug!(%error, "cannot listen to the store yet");
                    self.reachable.store(false, Ordering::SeqCst);
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(2));
                    continue;
                }
                Err(_) => {
                    self.reachable.store(false, Ordering::SeqCst);
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
                continue;
            }
            pause = Duration::from_millis(100);
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

    /// Forgets outcomes older than `retention`; returns how many rows went.
    pub async fn expire_outcomes(&self, retention: Duration) -> Result<u64, StoreError> {
        let seconds = retention.as_secs_f64();
        self.with_client("expiring outcomes", async |client| {
            let ended = client
                .execute(
                    "DELETE FROM ended WHERE recorded_at < now() - make_interval(secs => $1)",
                    &[&seconds],
                )
                .await?;
            let submitted = client
                .execute(
                    "DELETE FROM submissions WHERE submitted_at < now() - make_interval(secs => $1)",
                    &[&seconds],
                )
                .await?;
            Ok(ended + submitted)
        })
        .await
    }
}

impl Store for PgStore {
    fn save(
        &self,
        record: ActorRecord,
        component: Option<(String, Arc<[u8]>)>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let json = serde_json::to_value(&record).map_err(|error| store_error("a record", error))?;
            let channel = self.channel.clone();
            let outcome = self
                .with_client("recording a deployment", async |client| {
                    transaction(client, async |client| {
                        // Serialises changes to one actor, including its first, when
                        // there is no row to lock yet.
                        client
                            .execute(
                                "SELECT pg_advisory_xact_lock(hashtext($1))",
                                &[&format!("{}/{}", self.schema, record.name)],
                            )
                            .await?;
                        let stored = client
                            .query_opt(
                                "SELECT record FROM actors WHERE name = $1 FOR UPDATE",
                                &[&record.name],
                            )
                            .await?
                            .and_then(|row| serde_json::from_value::<ActorRecord>(row.get(0)).ok())
                            .map(|stored| stored.versions)
                            .unwrap_or_default();
                        if !follows(&stored, &record.versions) {
                            // Nothing was written: committing only releases the locks.
                            return Ok(Some(stored));
                        }
                        if let Some((digest, bytes)) = &component {
                            client
                                .execute(
                                    "INSERT INTO components (digest, bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                                    &[digest, &bytes.as_ref()],
                                )
                                .await?;
                        }
                        client
                            .execute(
                                "INSERT INTO actors (name, record) VALUES ($1, $2)
                                 ON CONFLICT (name) DO UPDATE SET record = excluded.record, updated_at = now()",
                                &[&record.name, &json],
                            )
                            .await?;
                        client
                            .execute("SELECT pg_notify($1, $2)", &[&channel, &record.name])
                            .await?;
                        Ok(None)
                    })
                    .await
                })
                .await?;
            match outcome {
                None => Ok(()),
                Some(stored) => Err(StoreError::Conflict(format!(
                    "actor `{}` was changed on another node of the pool (now at version {}); retry",
                    record.name,
                    stored.last().map_or(0, |v| v.version)
                ))),
            }
        }
        .boxed()
    }

    fn delete(&self, name: String) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let channel = self.channel.clone();
            self.with_client("removing a deployment", async |client| {
                transaction(client, async |client| {
                    client
                        .execute("DELETE FROM actors WHERE name = $1", &[&name])
                        .await?;
                    client
                        .execute("SELECT pg_notify($1, $2)", &[&channel, &name])
                        .await
                })
                .await
            })
            .await
            .map(drop)
        }
        .boxed()
    }

    fn record(&self, name: String) -> BoxFuture<'_, Result<Option<ActorRecord>, StoreError>> {
        async move {
            let row = self
                .with_client("reading an actor", async |client| {
                    client
                        .query_opt("SELECT record FROM actors WHERE name = $1", &[&name])
                        .await
                })
                .await?;
            row.map(|row| {
                serde_json::from_value(row.get(0))
                    .map_err(|error| store_error("a stored record", error))
            })
            .transpose()
        }
        .boxed()
    }

    fn records(&self) -> BoxFuture<'_, Result<Vec<ActorRecord>, StoreError>> {
        async move {
            let rows = self
                .with_client("reading the actors", async |client| {
                    client
                        .query("SELECT record FROM actors ORDER BY name", &[])
                        .await
                })
                .await?;
            rows.into_iter()
                .map(|row| {
                    serde_json::from_value(row.get(0))
                        .map_err(|error| store_error("a stored record", error))
                })
                .collect()
        }
        .boxed()
    }

    fn component(&self, digest: String) -> BoxFuture<'_, Result<Arc<[u8]>, StoreError>> {
        async move {
            let row = self
                .with_client("reading a component", async |client| {
                    client
                        .query_opt("SELECT bytes FROM components WHERE digest = $1", &[&digest])
                        .await
                })
                .await?;
            let row = row.ok_or_else(|| {
                StoreError::message(format!("component {digest} is not in the store"))
            })?;
            let bytes: Vec<u8> = row.get(0);
            Ok(Arc::from(bytes))
        }
        .boxed()
    }
}

impl Artifacts for PgStore {
    fn fetch(&self, digest: String, engine: String) -> BoxFuture<'_, Option<Vec<u8>>> {
        async move {
            let row = self
                .with_client("reading an artifact", async |client| {
                    client
                        .query_opt(
                            "SELECT bytes FROM artifacts WHERE digest = $1 AND engine = $2",
                            &[&digest, &engine],
                        )
                        .await
                })
                .await;
            match row {
                Ok(row) => row.map(|row| row.get(0)),
                Err(error) => {
                    tracing::warn!(%error, "no shared artifact: compiling");
                    None
                }
            }
        }
        .boxed()
    }

    fn has(&self, digest: String, engine: String) -> BoxFuture<'_, bool> {
        async move {
            self.with_client("looking for an artifact", async |client| {
                client
                    .query_opt(
                        "SELECT 1 FROM artifacts WHERE digest = $1 AND engine = $2",
                        &[&digest, &engine],
                    )
                    .await
            })
            .await
            .map_or(true, |row| row.is_some())
        }
        .boxed()
    }

    fn share(&self, digest: String, engine: String, bytes: Vec<u8>) -> BoxFuture<'_, ()> {
        async move {
            let shared = self
                .with_client("sharing an artifact", async |client| {
                    client
                        .execute(
                            "INSERT INTO artifacts (digest, engine, bytes) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                            &[&digest, &engine, &bytes],
                        )
                        .await
                })
                .await;
            if let Err(error) = shared {
                tracing::warn!(%error, "could not share a compiled component");
            }
        }
        .boxed()
    }
}

impl SharedOutcomes for PgStore {
    fn submitted(&self, id: String) -> BoxFuture<'_, Result<(), SharedError>> {
        shared(async move {
            self.with_client("recording a submission", async |client| {
                client
                    .execute(
                        "INSERT INTO submissions (id) VALUES ($1) ON CONFLICT DO NOTHING",
                        &[&id],
                    )
                    .await
            })
            .await
            .map(drop)
        })
    }

    fn ended(
        &self,
        root: String,
        branch: String,
        end: End,
        envelope: &Envelope,
    ) -> BoxFuture<'_, Result<(), SharedError>> {
        let json = serde_json::to_value(envelope);
        shared(async move {
            let json = json.map_err(|error| store_error("an envelope", error))?;
            let end = end.actor_name();
            self.with_client("recording an outcome", async |client| {
                client
                    .execute(
                        "INSERT INTO ended (root, branch, end_actor, envelope) VALUES ($1, $2, $3, $4)
                         ON CONFLICT DO NOTHING",
                        &[&root, &branch, &end, &json],
                    )
                    .await
            })
            .await
            .map(drop)
        })
    }

    fn recent_failures(
        &self,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<(String, Ended)>, SharedError>> {
        shared(async move {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = self
                .with_client("listing failures", async |client| {
                    client
                        .query(
                            "WITH failed AS (
                                 SELECT root, max(recorded_at) AS last FROM ended
                                 WHERE end_actor = $1 GROUP BY root ORDER BY last DESC LIMIT $2)
                             SELECT e.root, e.end_actor, e.envelope FROM ended e
                             JOIN failed f ON f.root = e.root ORDER BY f.last DESC, e.root",
                            &[&End::Error.actor_name(), &limit],
                        )
                        .await
                })
                .await?;
            let mut failures: Vec<(String, Ended)> = Vec::new();
            for row in rows {
                let root: String = row.get(0);
                let ended = ended_row(row.get(1), row.get(2))?;
                match failures.last_mut() {
                    Some((last, branches)) if *last == root => branches.push(ended),
                    _ => failures.push((root, vec![ended])),
                }
            }
            Ok(failures)
        })
    }

    fn outcome(&self, id: String) -> BoxFuture<'_, Result<Option<Ended>, SharedError>> {
        shared(async move {
            let (submitted, rows) = self
                .with_client("reading an outcome", async |client| {
                    // Both queries go out at once on the connection (pipelined).
                    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&id];
                    let (submitted, rows) = futures::try_join!(
                        client.query_opt("SELECT 1 FROM submissions WHERE id = $1", &params),
                        client.query(
                            "SELECT end_actor, envelope FROM ended WHERE root = $1",
                            &params,
                        ),
                    )?;
                    let submitted = submitted.is_some();
                    Ok((submitted, rows))
                })
                .await?;
            if !submitted && rows.is_empty() {
                return Ok(None);
            }
            let ended = rows
                .into_iter()
                .map(|row| ended_row(row.get(0), row.get(1)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(ended))
        })
    }
}

/// A store call as the outcome store's: the failure becomes its cause.
fn shared<'a, R: Send + 'a>(
    work: impl std::future::Future<Output = Result<R, StoreError>> + Send + 'a,
) -> BoxFuture<'a, Result<R, SharedError>> {
    work.map(|result| result.map_err(|error| SharedError(crate::report::cause(error))))
        .boxed()
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

/// One row of `ended` as the end actor and the envelope it took.
fn ended_row(end: String, json: serde_json::Value) -> Result<(End, Envelope), StoreError> {
    let bytes = serde_json::to_vec(&json).map_err(|error| store_error("an envelope", error))?;
    let envelope = Envelope::parse(&bytes)
        .map_err(|rejected| store_error("a stored envelope", rejected.error))?;
    Ok((End::from_actor_name(&end), envelope))
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
