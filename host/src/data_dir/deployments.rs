//! The record of deployments as files in the data directory, each written through a temporary file
//! and a rename so a crash leaves the old or the new file, never half of one:
//! `deployments/components/{sha256}.wasm` and `deployments/actors/{name}.json`.
//! File I/O runs on the blocking pool.

use crate::files::write_atomically;
use crate::records::ActorRecord;
use crate::records::validate_name;
use crate::store::{Store, StoreError};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Deployments kept under one directory.
pub struct FileStore {
    dir: PathBuf,
    /// The records the last read could not use, and why (left as they are on disk).
    unreadable: Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl FileStore {
    /// The record kept under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileStore {
            dir: dir.into(),
            unreadable: Arc::default(),
        }
    }
}

async fn blocking<R: Send + 'static>(
    work: impl FnOnce() -> Result<R, StoreError> + Send + 'static,
) -> Result<R, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| StoreError::failed("the store task", error))?
}

impl Store for FileStore {
    fn save(
        &self,
        record: ActorRecord,
        component: Option<(String, Arc<[u8]>)>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let dir = self.dir.clone();
        blocking(move || {
            let text = serde_json::to_vec_pretty(&record)
                .map_err(|error| StoreError::failed("encoding a record", error))?;
            std::fs::create_dir_all(dir.join("components"))?;
            std::fs::create_dir_all(dir.join("actors"))?;
            if let Some((digest, bytes)) = component {
                let path = component_path(&dir, &digest);
                if !path.exists() {
                    write_atomically(&path, &bytes)?;
                }
            }
            write_atomically(&record_path(&dir, &record.name), &text)?;
            Ok(())
        })
        .boxed()
    }

    fn delete(&self, name: String) -> BoxFuture<'_, Result<(), StoreError>> {
        let dir = self.dir.clone();
        blocking(
            move || match std::fs::remove_file(record_path(&dir, &name)) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
                _ => Ok(()),
            },
        )
        .boxed()
    }

    fn record(&self, name: String) -> BoxFuture<'_, Result<Option<ActorRecord>, StoreError>> {
        let dir = self.dir.clone();
        blocking(move || {
            let path = record_path(&dir, &name);
            match std::fs::read(&path) {
                Ok(text) => serde_json::from_slice(&text)
                    .map(Some)
                    .map_err(|error| StoreError::failed(path.display().to_string(), error)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(error.into()),
            }
        })
        .boxed()
    }

    fn records(&self) -> BoxFuture<'_, Result<Vec<ActorRecord>, StoreError>> {
        let dir = self.dir.clone();
        let unreadable = self.unreadable.clone();
        blocking(move || {
            let (records, broken) = read_records(&dir)?;
            for (path, reason) in &broken {
                tracing::warn!(record = %path, "a deployment record cannot be read and is left as it is: {reason}");
            }
            *unreadable
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = broken;
            Ok(records)
        })
        .boxed()
    }

    fn unreadable(&self) -> Vec<(String, String)> {
        self.unreadable
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn prune(&self, digests: Vec<String>) -> BoxFuture<'_, Result<usize, StoreError>> {
        let dir = self.dir.clone();
        blocking(move || prune_files(&dir, &digests)).boxed()
    }

    fn component(&self, digest: String) -> BoxFuture<'_, Result<Arc<[u8]>, StoreError>> {
        let dir = self.dir.clone();
        blocking(move || {
            let path = component_path(&dir, &digest);
            std::fs::read(&path)
                .map(Arc::from)
                .map_err(|error| StoreError::failed(path.display().to_string(), error))
        })
        .boxed()
    }
}

/// The components of `digests` no record names (read from the records themselves, so
/// a component another actor uses stays).
fn prune_files(dir: &Path, digests: &[String]) -> Result<usize, StoreError> {
    let (records, broken) = read_records(dir)?;
    if !broken.is_empty() {
        // A record that cannot be read may name any component: keep them all.
        return Ok(0);
    }
    let named: std::collections::HashSet<String> = records
        .into_iter()
        .flat_map(|record| record.versions.into_iter().map(|version| version.digest))
        .collect();
    let mut pruned = 0;
    for digest in digests.iter().filter(|digest| !named.contains(*digest)) {
        match std::fs::remove_file(component_path(dir, digest)) {
            Ok(()) => pruned += 1,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(pruned)
}

fn record_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("actors").join(format!("{name}.json"))
}

fn component_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join("components").join(format!("{digest}.wasm"))
}

/// The records that read, and the files that did not with why.
type ReadRecords = (Vec<ActorRecord>, Vec<(String, String)>);

fn read_records(dir: &Path) -> Result<ReadRecords, StoreError> {
    let actors = dir.join("actors");
    if !actors.is_dir() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut records = Vec::new();
    let mut broken = Vec::new();
    for entry in std::fs::read_dir(&actors)? {
        let path = entry?.path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let read = std::fs::read(&path)
            .map_err(|error| error.to_string())
            .and_then(|text| {
                serde_json::from_slice::<ActorRecord>(&text).map_err(|error| error.to_string())
            })
            .and_then(|record| {
                validate_name(&record.name)
                    .map(|()| record)
                    .map_err(|error| error.to_string())
            });
        match read {
            Ok(record) => records.push(record),
            Err(reason) => broken.push((path.display().to_string(), reason)),
        }
    }
    records.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((records, broken))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Version;

    #[tokio::test]
    async fn records_and_components_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        let record = ActorRecord {
            name: "a".into(),
            kind: Default::default(),
            versions: vec![Version {
                version: 1,
                digest: "d1".into(),
            }],
            options: Default::default(),
        };
        store
            .save(
                record.clone(),
                Some(("d1".into(), Arc::from(&b"bytes"[..]))),
            )
            .await
            .unwrap();
        assert_eq!(store.records().await.unwrap(), vec![record]);
        assert_eq!(&*store.component("d1".into()).await.unwrap(), b"bytes");
        store.delete("a".into()).await.unwrap();
        assert!(store.records().await.unwrap().is_empty());
        store.delete("a".into()).await.unwrap();
    }

    #[tokio::test]
    async fn a_record_without_kind_or_options_reads_as_wasm() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("actors")).unwrap();
        std::fs::write(
            dir.path().join("actors/old.json"),
            r#"{"name":"old","versions":[{"version":1,"digest":"x"}]}"#,
        )
        .unwrap();
        let records = FileStore::new(dir.path()).records().await.unwrap();
        assert_eq!(records[0].kind, crate::records::ActorKind::Wasm);
    }
}
