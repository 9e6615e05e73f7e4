//! Deployments: actor records and their components, written and announced in one
//! transaction under a per-actor lock.

use super::{PgStore, Query, store_error, transaction};
use crate::records::{ActorRecord, follows};
use crate::store::{Store, StoreError};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::sync::Arc;

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
                .with_client(Query::Bulk, "recording a deployment", async |client| {
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
            self.with_client(Query::Control, "removing a deployment", async |client| {
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
                .with_client(Query::Control, "reading an actor", async |client| {
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
                .with_client(Query::Control, "reading the actors", async |client| {
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

    fn prune(&self, digests: Vec<String>) -> BoxFuture<'_, Result<usize, StoreError>> {
        async move {
            // A digest some actor's record still names stays, whichever node wrote it.
            let unnamed = "NOT EXISTS (SELECT 1 FROM actors a, jsonb_array_elements(a.record->'versions') v WHERE v->>'digest' = digest)";
            let components = format!("DELETE FROM components WHERE digest = ANY($1) AND {unnamed}");
            let artifacts = format!("DELETE FROM artifacts WHERE digest = ANY($1) AND {unnamed}");
            self.with_client(Query::Bulk, "pruning components", async |client| {
                let pruned = client.execute(components.as_str(), &[&digests]).await?;
                client.execute(artifacts.as_str(), &[&digests]).await?;
                Ok(pruned)
            })
            .await
            .map(|pruned| usize::try_from(pruned).unwrap_or(usize::MAX))
        }
        .boxed()
    }

    fn component(&self, digest: String) -> BoxFuture<'_, Result<Arc<[u8]>, StoreError>> {
        async move {
            let row = self
                .with_client(Query::Bulk, "reading a component", async |client| {
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
