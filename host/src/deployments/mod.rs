//! The actors a node serves, and every change to them while it runs.
//!
//! `PUT /v1/actors/{name}` lands here. A component is checked and compiled off the
//! async runtime, recorded by digest, and then either a new actor starts consuming
//! its queue or the existing one is hot-swapped ([`reconcile`]): new calls go to the
//! new version while calls in flight finish on the old one, so a swap loses and fails
//! nothing. The same bytes again make no new version. Options (a timeout, a memory
//! limit, the environment, the handler mode, a socket runtime's path) are applied the
//! same way. A removal stops consuming and closes the actor's queue to new envelopes;
//! the messages in it stay.
//!
//! Every change is recorded in the [`Store`] before it is served, so a restart serves
//! what the node last answered; the compile cache makes a restart a deserialisation,
//! not a compile. Changes to one actor run one at a time under its reservation;
//! nothing slow happens where a reader waits ([`served`]), and the API's views are
//! built from a snapshot ([`views`]).
//!
//! In a pool sharing one store, a change made on another node arrives as a name to
//! [`Deployments::sync`]: the node reads that actor's record and serves it the same
//! way (swap, new consumer, or stop). A node hosts only the actors `--hosts` names; it
//! still checks and records a change to another, for the nodes that host it.

pub mod options;
mod reconcile;
mod served;
pub mod views;

use crate::config::{ActorDefaults, DeploymentConfig};
use crate::records::{ActorKind, ActorRecord, NameError, Version, validate_name};
use crate::router::Router;
use crate::runtime::wasm::engine::digest_off_runtime;
use crate::runtime::wasm::{WasmActor, WasmEngine, WasmError};
use crate::store::{Store, StoreError};
use crate::transport::TransportError;
pub use options::OptionsChange;
use options::{Effective, SpecError};
use serde::Serialize;
use served::{Backend, Reservations, ServedMap};
use std::path::PathBuf;
use std::sync::Arc;

pub use views::ActorView;

/// Why a deploy, a change of options or a removal did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The actor name is not valid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The component could not be checked or compiled.
    #[error(transparent)]
    Component(#[from] WasmError),
    /// The options given are not valid for the actor.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// No actor of that name is deployed; holds the name.
    #[error("no actor named `{0}` is deployed")]
    NotFound(String),
    /// Options were set for a name with no component and no socket runtime; holds the name.
    #[error(
        "no actor named `{0}` is deployed: upload its component first, or register a socket actor with {{\"kind\": \"socket\", \"socket\": PATH}}"
    )]
    NothingToConfigure(String),
    /// A new actor past `--max-actors`; holds the name and the limit.
    #[error(
        "actor `{0}` would be one more than the {1} this node keeps (--max-actors); remove one first"
    )]
    TooMany(String, usize),
    /// A component was uploaded under the name of a socket actor; holds the name.
    #[error("actor `{0}` is served by an external runtime; upload a component under another name")]
    NotWasm(String),
    /// A component was uploaded to a node that runs without the wasm engine (a
    /// socket-only `wasya sidecar`); holds the name.
    #[error(
        "actor `{0}` is a wasm component, and this node runs socket actors only (no wasm engine)"
    )]
    NoEngine(String),
    /// The transport failed while the change was applied.
    #[error("the transport")]
    Transport(#[from] TransportError),
    /// The store of deployments failed (writing a change, or reading one).
    #[error("the store of deployments")]
    Store(#[from] StoreError),
}

/// What a deploy did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Deployment {
    /// The actor's name.
    pub name: String,
    /// The hex-encoded sha256 of the component's bytes.
    pub digest: String,
    /// The version now current.
    pub version: u32,
    /// False when the same bytes were already the current version.
    #[serde(skip)]
    pub changed: bool,
}

/// The actors this node serves.
pub struct Deployments {
    router: Arc<Router>,
    engine: Option<WasmEngine>,
    actors: ActorDefaults,
    settings: DeploymentConfig,
    store: Option<Arc<dyn Store>>,
    served: ServedMap,
    reservations: Reservations,
    /// Records found at start that could not be served, and why.
    broken: std::sync::Mutex<Vec<(String, String)>>,
}

impl Deployments {
    /// Deployments recorded in `store` (none: they last as long as the process),
    /// their wasm actors compiled on `engine` (none: socket actors only), each run with
    /// `actors`' defaults under its recorded options.
    pub fn new(
        router: Arc<Router>,
        engine: Option<WasmEngine>,
        actors: ActorDefaults,
        settings: DeploymentConfig,
        store: Option<Arc<dyn Store>>,
    ) -> Self {
        Deployments {
            router,
            engine,
            actors,
            settings,
            store,
            served: ServedMap::default(),
            reservations: Reservations::default(),
            broken: std::sync::Mutex::default(),
        }
    }

    /// Serves a wasm actor loaded at start (bundled or from `--actors`).
    pub async fn add_wasm(&self, name: &str, actor: WasmActor) -> Result<(), DeployError> {
        let record = ActorRecord::new(name, ActorKind::Wasm);
        let backend = Backend::Wasm(Arc::new(actor));
        self.add(record, backend).await
    }

    /// Serves a socket actor named at start.
    pub async fn add_socket(&self, name: &str, path: PathBuf) -> Result<(), DeployError> {
        let mut record = ActorRecord::new(name, ActorKind::Socket);
        record.options.socket = Some(path.clone());
        self.add(record, Backend::Socket(path)).await
    }

    async fn add(&self, record: ActorRecord, backend: Backend) -> Result<(), DeployError> {
        let _reservation = self.reservations.reserve(&record.name).await;
        let effective = Effective::of(&self.actors, &record.name, record.kind, &record.options);
        self.install(record, backend, effective, false).await
    }

    /// Deploys (or hot-swaps) a wasm actor and records it. Only this actor's
    /// reservation is held while the component is hashed, checked and compiled.
    pub async fn deploy(&self, name: &str, bytes: Arc<[u8]>) -> Result<Deployment, DeployError> {
        validate_name(name)?;
        let _reservation = self.reservations.reserve(name).await;
        let current = self.served.get(name);
        if current
            .as_ref()
            .is_some_and(|served| served.record.kind != ActorKind::Wasm)
        {
            return Err(DeployError::NotWasm(name.to_owned()));
        }
        let digest = digest_off_runtime(bytes.clone()).await?;
        let mut record = match current {
            Some(served) => served.record.clone(),
            None => match self.recorded(name).await? {
                Some(record) if record.kind != ActorKind::Wasm => {
                    return Err(DeployError::NotWasm(name.to_owned()));
                }
                Some(record) => record,
                None => {
                    self.check_room(name).await?;
                    ActorRecord::new(name, ActorKind::Wasm)
                }
            },
        };
        if let Some(last) = record.current()
            && last.digest == digest
        {
            return Ok(Deployment {
                name: name.to_owned(),
                digest,
                version: last.version,
                changed: false,
            });
        }
        let effective = Effective::of(&self.actors, name, record.kind, &record.options);
        let (actor, report) = self
            .engine(name)?
            .load_digested(name, bytes.clone(), digest, effective.limits.clone())
            .await?;
        let version = Version {
            version: record.current().map_or(1, |last| last.version + 1),
            digest: report.digest.clone(),
        };
        record.versions.push(version.clone());
        // Only the last `--keep-versions` stay recorded; their components with them.
        let keep = self.settings.keep_versions.max(1);
        let let_go: Vec<String> = match record.versions.len().checked_sub(keep) {
            Some(extra) if extra > 0 => record
                .versions
                .drain(..extra)
                .map(|version| version.digest)
                .collect(),
            _ => Vec::new(),
        };
        self.save(record.clone(), Some((report.digest.clone(), bytes)))
            .await?;
        self.prune(name, let_go).await;
        if self.settings.hosts(name) {
            let backend = Backend::Wasm(Arc::new(actor));
            self.install(record, backend, effective, true).await?;
        } else {
            tracing::info!(
                actor = name,
                "recorded for the nodes that host it; not hosted here"
            );
        }
        tracing::info!(actor = name, digest = %report.digest, version = version.version, source = ?report.source, "deployed");
        Ok(Deployment {
            name: name.to_owned(),
            digest: report.digest,
            version: version.version,
            changed: true,
        })
    }

    /// Registers a socket actor, or changes the options of any actor (replacing them,
    /// or merging a patch into them), and records it.
    pub async fn configure(
        &self,
        name: &str,
        change: OptionsChange,
    ) -> Result<ActorView, DeployError> {
        validate_name(name)?;
        let _reservation = self.reservations.reserve(name).await;
        let registers_socket = matches!(
            &change,
            OptionsChange::Replace(spec) if spec.kind == Some(ActorKind::Socket)
        );
        let mut record = match self.served.get(name) {
            Some(served) => served.record.clone(),
            None => match self.recorded(name).await? {
                Some(record) => record,
                None if registers_socket => {
                    self.check_room(name).await?;
                    ActorRecord::new(name, ActorKind::Socket)
                }
                None => return Err(DeployError::NothingToConfigure(name.to_owned())),
            },
        };
        let spec = change.resolve(record.kind, &record.options)?;
        record.options = spec.check_off_runtime(record.kind).await?;
        self.save(record.clone(), None).await?;
        tracing::info!(actor = name, "options recorded");
        self.apply(record.clone()).await?;
        Ok(match self.served.get(name) {
            Some(served) => self.view(&served),
            None => self.record_view(&record),
        })
    }

    /// Stops serving an actor, forgets its record, and closes its queue to new
    /// envelopes; the messages in it stay for a later deploy.
    pub async fn remove(&self, name: &str) -> Result<(), DeployError> {
        let _reservation = self.reservations.reserve(name).await;
        let served = self.served.get(name).is_some();
        if !served && self.recorded(name).await?.is_none() {
            return Err(DeployError::NotFound(name.to_owned()));
        }
        let digests: Vec<String> = match self.served.get(name) {
            Some(served) => served.record.versions.clone(),
            None => self
                .recorded(name)
                .await?
                .map(|record| record.versions)
                .unwrap_or_default(),
        }
        .into_iter()
        .map(|version| version.digest)
        .collect();
        if let Some(store) = &self.store {
            store.delete(name.to_owned()).await?;
        }
        if let Some(served) = self.served.remove(name) {
            served.stop.cancel();
        }
        self.prune(name, digests).await;
        self.router.retire(name).await;
        self.router.forget_metrics(name);
        tracing::info!(actor = name, "removed");
        Ok(())
    }

    /// The engine wasm actor `name` compiles on, where this node runs one.
    fn engine(&self, name: &str) -> Result<&WasmEngine, DeployError> {
        self.engine
            .as_ref()
            .ok_or_else(|| DeployError::NoEngine(name.to_owned()))
    }

    /// The records found at start that could not be read or served, and why.
    pub fn broken(&self) -> Vec<(String, String)> {
        self.broken
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Refuses a new actor past `--max-actors` (those served here, and those the store
    /// records for the pool).
    async fn check_room(&self, name: &str) -> Result<(), DeployError> {
        let served = self.served.snapshot().len();
        let recorded = match &self.store {
            Some(store) if served < self.settings.max_actors => store.records().await?.len(),
            _ => 0,
        };
        if served.max(recorded) >= self.settings.max_actors {
            return Err(DeployError::TooMany(
                name.to_owned(),
                self.settings.max_actors,
            ));
        }
        Ok(())
    }

    /// Deletes the components of `digests` that no record names any more; a failure
    /// only leaves files behind, so it is logged, not returned.
    async fn prune(&self, name: &str, digests: Vec<String>) {
        let Some(store) = &self.store else {
            return;
        };
        if digests.is_empty() {
            return;
        }
        match store.prune(digests).await {
            Ok(pruned) if pruned > 0 => {
                tracing::info!(
                    actor = name,
                    pruned,
                    "components no version names any more were deleted"
                )
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(actor = name, error = %crate::error_chain::chain(&error), "could not delete the components of versions let go")
            }
        }
    }

    /// The store's record of an actor this node does not serve (yet).
    async fn recorded(&self, name: &str) -> Result<Option<ActorRecord>, DeployError> {
        match &self.store {
            Some(store) => Ok(store.record(name.to_owned()).await?),
            None => Ok(None),
        }
    }

    async fn save(
        &self,
        record: ActorRecord,
        component: Option<(String, Arc<[u8]>)>,
    ) -> Result<(), DeployError> {
        match &self.store {
            Some(store) => Ok(store.save(record, component).await?),
            None => {
                tracing::warn!(
                    actor = %record.name,
                    "no data directory: this change is not kept across restarts"
                );
                Ok(())
            }
        }
    }
}
