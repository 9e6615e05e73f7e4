//! Compiled components, shared per digest and engine between the nodes of a pool.

use super::{PgStore, Query};
use crate::runtime::wasm::artifacts::Artifacts;
use futures::FutureExt;
use futures::future::BoxFuture;

impl Artifacts for PgStore {
    fn fetch(&self, digest: String, engine: String) -> BoxFuture<'_, Option<Vec<u8>>> {
        async move {
            let row = self
                .with_client(Query::Bulk, "reading an artifact", async |client| {
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
            self.with_client(Query::Control, "looking for an artifact", async |client| {
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
                .with_client(Query::Bulk, "sharing an artifact", async |client| {
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
