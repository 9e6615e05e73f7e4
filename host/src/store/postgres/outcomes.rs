//! Envelope outcomes: every ended branch, readable by any node, expired after the
//! retention.

use super::{PgStore, Query, store_error};
use crate::envelope::Envelope;
use crate::outcomes::shared::{Ended, SharedError, SharedOutcomes};
use crate::progress::ProgressEvent;
use crate::records::End;
use crate::store::StoreError;
use futures::FutureExt;
use futures::future::BoxFuture;
use std::time::Duration;

impl PgStore {
    /// Forgets outcomes older than `retention`; returns how many rows went.
    pub async fn expire_outcomes(&self, retention: Duration) -> Result<u64, StoreError> {
        let seconds = retention.as_secs_f64();
        self.with_client(Query::Control, "expiring outcomes", async |client| {
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
            let progress = client
                .execute(
                    "DELETE FROM progress WHERE recorded_at < now() - make_interval(secs => $1)",
                    &[&seconds],
                )
                .await?;
            Ok(ended + submitted + progress)
        })
        .await
    }
}

impl SharedOutcomes for PgStore {
    fn progress(
        &self,
        events: Vec<(String, ProgressEvent)>,
    ) -> BoxFuture<'_, Result<(), SharedError>> {
        shared(async move {
            let mut roots = Vec::with_capacity(events.len());
            let mut json = Vec::with_capacity(events.len());
            for (root, event) in events {
                roots.push(root);
                json.push(
                    serde_json::to_value(&event)
                        .map_err(|error| store_error("a progress event", error))?,
                );
            }
            self.with_client(Query::Control, "recording progress", async |client| {
                client
                    .execute(
                        "INSERT INTO progress (root, event)
                         SELECT * FROM unnest($1::text[], $2::jsonb[])",
                        &[&roots, &json],
                    )
                    .await
            })
            .await
            .map(drop)
        })
    }

    fn events_after(
        &self,
        root: String,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<ProgressEvent>, SharedError>> {
        shared(async move {
            let after = i64::try_from(after).unwrap_or(i64::MAX);
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = self
                .with_client(Query::Control, "reading progress", async |client| {
                    client
                        .query(
                            "SELECT id, event FROM progress WHERE root = $1 AND id > $2
                             ORDER BY id LIMIT $3",
                            &[&root, &after, &limit],
                        )
                        .await
                })
                .await?;
            rows.into_iter()
                .map(|row| {
                    let id: i64 = row.get(0);
                    let mut event: ProgressEvent = serde_json::from_value(row.get(1))
                        .map_err(|error| store_error("a stored progress event", error))?;
                    event.seq = u64::try_from(id).unwrap_or_default();
                    Ok(event)
                })
                .collect()
        })
    }

    fn submitted(&self, id: String) -> BoxFuture<'_, Result<(), SharedError>> {
        shared(async move {
            self.with_client(Query::Control, "recording a submission", async |client| {
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
            self.with_client(Query::Control, "recording an outcome", async |client| {
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
                .with_client(Query::Control, "listing failures", async |client| {
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
                .with_client(Query::Control, "reading an outcome", async |client| {
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
    work.map(|result| result.map_err(|error| SharedError(crate::error_chain::cause(error))))
        .boxed()
}

/// One row of `ended` as the end actor and the envelope it took.
fn ended_row(end: String, json: serde_json::Value) -> Result<(End, Envelope), StoreError> {
    let bytes = serde_json::to_vec(&json).map_err(|error| store_error("an envelope", error))?;
    let envelope = Envelope::parse(&bytes)
        .map_err(|rejected| store_error("a stored envelope", rejected.error))?;
    Ok((End::from_actor_name(&end), envelope))
}
