//! The schema: created and migrated at start, one node at a time.

use super::{PgStore, store_error, transaction};
use crate::store::StoreError;

/// The migrations, in order: (version, SQL).
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        include_str!("../../../migrations/0001_control_plane.sql"),
    ),
    (2, include_str!("../../../migrations/0002_progress.sql")),
];

impl PgStore {
    /// Creates the schema and applies what migrations it lacks, one node at a time.
    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
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
}
