//! Actors deployed while the node runs, and the node's record of them.
//!
//! `PUT /v1/actors/{name}` lands here: the component is checked and compiled off the
//! async runtime, its bytes are stored by digest, and then either a new actor starts
//! consuming its queue or the existing one is hot-swapped: new calls go to the new
//! version while calls in flight finish on the old one ([`ActorSlot::replace`]), so a
//! swap loses and fails nothing. The same bytes again make no new version. A removal
//! stops consuming; the messages stay in the queue.
//!
//! The record is files in the data directory, written through a temporary file and a
//! rename: `deployments/components/{sha256}.wasm` and `deployments/actors/{name}.json`
//! (the versions). A restart redeploys every recorded actor; the compile cache makes
//! that a deserialisation, not a compile. Deploys are serialised by one lock: they are
//! rare, and it keeps the record and the served actors in step.

use crate::actors::{ActorSlot, validate_name};
use crate::api::ServedActor;
use crate::config::NodeConfig;
use crate::router::Router;
use crate::runtime::ActorRuntime;
use crate::runtime::wasm::cache::{digest, write_atomically};
use crate::runtime::wasm::{WasmEngine, WasmError};
use crate::transport::{Transport, TransportError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// Why a deploy or removal did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Name(#[from] crate::actors::NameError),
    #[error(transparent)]
    Component(#[from] WasmError),
    #[error("no actor named `{0}` is deployed")]
    NotFound(String),
    #[error("actor `{0}` is served by an external runtime; upload a component under another name")]
    NotWasm(String),
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    #[error("cannot record the deployment: {0}")]
    Store(String),
}

/// One version of a deployed actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    pub version: u32,
    pub digest: String,
}

/// What a deploy did.
#[derive(Debug, Clone, Serialize)]
pub struct Deployment {
    pub name: String,
    pub digest: String,
    pub version: u32,
    /// False when the same bytes were already the current version.
    #[serde(skip)]
    pub changed: bool,
}

/// A served actor as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ActorView {
    #[serde(flatten)]
    pub actor: ServedActor,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<Version>,
}

struct Deployed {
    slot: Arc<ActorSlot>,
    stop: CancellationToken,
    view: ActorView,
}

#[derive(Serialize, Deserialize)]
struct Record {
    name: String,
    versions: Vec<Version>,
}

/// The actors this node serves.
pub struct Deployments<T: Transport> {
    router: Arc<Router<T>>,
    engine: WasmEngine,
    config: NodeConfig,
    dir: Option<PathBuf>,
    actors: Mutex<BTreeMap<String, Deployed>>,
}

impl<T: Transport> Deployments<T> {
    pub fn new(router: Arc<Router<T>>, engine: WasmEngine, config: NodeConfig) -> Self {
        let dir = config.data_dir.as_ref().map(|dir| dir.join("deployments"));
        Deployments {
            router,
            engine,
            config,
            dir,
            actors: Mutex::new(BTreeMap::new()),
        }
    }

    /// Serves an actor loaded at start.
    pub async fn add(
        &self,
        runtime: Arc<dyn ActorRuntime>,
        actor: ServedActor,
    ) -> Result<(), DeployError> {
        let versions = actor
            .digest
            .iter()
            .map(|digest| Version {
                version: 1,
                digest: digest.clone(),
            })
            .collect();
        let mut actors = self.actors.lock().await;
        self.start(&mut actors, runtime, actor, versions).await
    }

    /// Starts consuming a new actor's queue and enters it in `actors`.
    async fn start(
        &self,
        actors: &mut BTreeMap<String, Deployed>,
        runtime: Arc<dyn ActorRuntime>,
        actor: ServedActor,
        versions: Vec<Version>,
    ) -> Result<(), DeployError> {
        let slot = Arc::new(ActorSlot::new(
            actor.name.clone(),
            runtime,
            actor.concurrency,
        ));
        let stop = self.router.serve(slot.clone()).await?;
        self.set_concurrency_metric(&actor);
        actors.insert(
            actor.name.clone(),
            Deployed {
                slot,
                stop,
                view: ActorView { actor, versions },
            },
        );
        Ok(())
    }

    fn set_concurrency_metric(&self, actor: &ServedActor) {
        crate::metrics::metrics()
            .concurrency_limit
            .with_label_values(&[actor.name.as_str()])
            .set(actor.concurrency as i64);
    }

    /// Deploys (or hot-swaps) a wasm actor and records it.
    pub async fn deploy(&self, name: &str, bytes: Arc<[u8]>) -> Result<Deployment, DeployError> {
        validate_name(name)?;
        let mut actors = self.actors.lock().await;
        let current = actors.get(name);
        if let Some(current) = current
            && current.view.actor.kind != "wasm"
        {
            return Err(DeployError::NotWasm(name.to_owned()));
        }
        let digest = digest(&bytes);
        let last = current.and_then(|deployed| deployed.view.versions.last().cloned());
        if let Some(last) = &last
            && last.digest == digest
        {
            return Ok(Deployment {
                name: name.to_owned(),
                digest,
                version: last.version,
                changed: false,
            });
        }
        let limits = self.config.limits_for(name);
        let (actor, report) = self.engine.load(name, bytes.clone(), limits).await?;
        let version = Version {
            version: last.map_or(1, |last| last.version + 1),
            digest: report.digest.clone(),
        };
        let mut versions = current.map(|d| d.view.versions.clone()).unwrap_or_default();
        versions.push(version.clone());
        self.record(name, &versions, Some((&report.digest, bytes)))
            .await?;
        match actors.get_mut(name) {
            Some(deployed) => {
                deployed.slot.replace(Arc::new(actor));
                deployed.view.actor.digest = Some(report.digest.clone());
                deployed.view.versions = versions;
            }
            None => {
                let view = ServedActor::wasm(name, &actor, self.config.concurrency_for(name));
                self.start(&mut actors, Arc::new(actor), view, versions)
                    .await?;
            }
        }
        tracing::info!(actor = name, digest = %report.digest, version = version.version, source = ?report.source, "deployed");
        Ok(Deployment {
            name: name.to_owned(),
            digest: report.digest,
            version: version.version,
            changed: true,
        })
    }

    /// Stops serving an actor; its messages stay in its queue.
    pub async fn remove(&self, name: &str) -> Result<(), DeployError> {
        let mut actors = self.actors.lock().await;
        let deployed = actors
            .remove(name)
            .ok_or_else(|| DeployError::NotFound(name.to_owned()))?;
        deployed.stop.cancel();
        if let Some(file) = self.record_file(name) {
            let removed = tokio::task::spawn_blocking(move || match std::fs::remove_file(&file) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
                _ => Ok(()),
            })
            .await;
            match removed {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(DeployError::Store(error.to_string())),
                Err(error) => return Err(DeployError::Store(error.to_string())),
            }
        }
        tracing::info!(actor = name, "removed");
        Ok(())
    }

    /// Redeploys every actor recorded in the data directory.
    pub async fn restore(&self) -> Result<usize, DeployError> {
        let Some(dir) = self.dir.clone() else {
            return Ok(0);
        };
        let records = tokio::task::spawn_blocking(move || read_records(&dir))
            .await
            .map_err(|error| DeployError::Store(error.to_string()))??;
        let count = records.len();
        for (record, bytes) in records {
            let limits = self.config.limits_for(&record.name);
            let (actor, report) = self
                .engine
                .load(&record.name, bytes, limits.clone())
                .await?;
            let view = ServedActor::wasm(
                &record.name,
                &actor,
                self.config.concurrency_for(&record.name),
            );
            tracing::info!(actor = %record.name, source = ?report.source, "restored a deployed actor");
            let mut actors = self.actors.lock().await;
            match actors.get_mut(&record.name) {
                // An upload under the name of a bundled actor replaces it.
                Some(deployed) => {
                    deployed.slot.replace(Arc::new(actor));
                    deployed.view = ActorView {
                        actor: view,
                        versions: record.versions,
                    };
                }
                None => {
                    self.start(&mut actors, Arc::new(actor), view, record.versions)
                        .await?
                }
            }
        }
        Ok(count)
    }

    /// Every served actor.
    pub async fn list(&self) -> Vec<ActorView> {
        self.actors
            .lock()
            .await
            .values()
            .map(|d| d.view.clone())
            .collect()
    }

    /// One served actor.
    pub async fn get(&self, name: &str) -> Option<ActorView> {
        self.actors.lock().await.get(name).map(|d| d.view.clone())
    }

    /// The first reason an actor cannot serve now.
    pub async fn not_ready(&self) -> Option<String> {
        let slots: Vec<Arc<ActorSlot>> = self
            .actors
            .lock()
            .await
            .values()
            .map(|d| d.slot.clone())
            .collect();
        slots.iter().find_map(|slot| slot.current().not_ready())
    }

    fn record_file(&self, name: &str) -> Option<PathBuf> {
        Some(
            self.dir
                .as_ref()?
                .join("actors")
                .join(format!("{name}.json")),
        )
    }

    /// Writes the component (if new) and the actor's versions, atomically each.
    async fn record(
        &self,
        name: &str,
        versions: &[Version],
        component: Option<(&str, Arc<[u8]>)>,
    ) -> Result<(), DeployError> {
        let Some(dir) = self.dir.clone() else {
            tracing::warn!(
                actor = name,
                "no data directory: this deployment is not kept across restarts"
            );
            return Ok(());
        };
        let record = serde_json::to_vec_pretty(&Record {
            name: name.to_owned(),
            versions: versions.to_vec(),
        })
        .map_err(|error| DeployError::Store(error.to_string()))?;
        let component = component.map(|(digest, bytes)| (digest.to_owned(), bytes));
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(dir.join("components"))?;
            std::fs::create_dir_all(dir.join("actors"))?;
            if let Some((digest, bytes)) = component {
                let path = dir.join("components").join(format!("{digest}.wasm"));
                if !path.exists() {
                    write_atomically(&path, &bytes)?;
                }
            }
            write_atomically(&dir.join("actors").join(format!("{name}.json")), &record)
        })
        .await
        .map_err(|error| DeployError::Store(error.to_string()))?
        .map_err(|error| DeployError::Store(error.to_string()))
    }
}

/// A recorded actor with the bytes of its current version.
type Recorded = (Record, Arc<[u8]>);

/// The recorded actors and the bytes of their current versions.
fn read_records(dir: &std::path::Path) -> Result<Vec<Recorded>, DeployError> {
    let store = |error: std::io::Error| DeployError::Store(error.to_string());
    let actors = dir.join("actors");
    if !actors.is_dir() {
        return Ok(Vec::new());
    }
    let mut records = Vec::new();
    for entry in std::fs::read_dir(&actors).map_err(store)? {
        let path = entry.map_err(store)?.path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let text = std::fs::read(&path).map_err(store)?;
        let record: Record = serde_json::from_slice(&text)
            .map_err(|error| DeployError::Store(format!("{}: {error}", path.display())))?;
        validate_name(&record.name)?;
        let Some(current) = record.versions.last() else {
            continue;
        };
        let bytes = std::fs::read(
            dir.join("components")
                .join(format!("{}.wasm", current.digest)),
        )
        .map_err(store)?;
        records.push((record, Arc::from(bytes)));
    }
    records.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    Ok(records)
}
