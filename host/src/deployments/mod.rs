//! The actors a node serves, and every change to them while it runs.
//!
//! `PUT /v1/actors/{name}` lands here. A component is checked and compiled off the
//! async runtime, recorded by digest, and then either a new actor starts consuming
//! its queue or the existing one is hot-swapped: new calls go to the new version
//! while calls in flight finish on the old one ([`ActorSlot::replace`]), so a swap
//! loses and fails nothing. The same bytes again make no new version. Options (a
//! timeout, a memory limit, the environment, the handler mode, a socket runtime's
//! path) are applied the same way; a new concurrency starts a new consumer and stops
//! the old one, whose unstarted deliveries go back to the queue. A removal stops
//! consuming; the messages stay in the queue.
//!
//! Every change is recorded in the [`Store`] before it is served, so a restart serves
//! what the node last answered; the compile cache makes a restart a
//! deserialisation, not a compile. Changes are serialised by one lock: they are rare,
//! and it keeps the record and the served actors in step.
//!
//! In a pool sharing one store, a change made on another node arrives as a name to
//! [`Deployments::sync`]: the node reads that actor's record and serves it the same
//! way (swap, new consumer, or stop). A node hosts only the actors `--hosts` names; it
//! still checks and records a change to another, for the nodes that host it.

pub mod options;

use crate::actors::{ActorSlot, validate_name};
use crate::config::NodeConfig;
use crate::router::Router;
use crate::runtime::ActorRuntime;
use crate::runtime::mode::{HandlerMode, with_mode};
use crate::runtime::socket::SocketActor;
use crate::runtime::wasm::engine::digest_off_runtime;
use crate::runtime::wasm::{WasmActor, WasmEngine, WasmError};
use crate::store::{ActorRecord, Store, StoreError};
use crate::transport::{Transport, TransportError};
use options::{ActorKind, ActorOptions, ActorSpec, Effective, SpecError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

pub use crate::store::Version;

/// Why a deploy, a change of options or a removal did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Name(#[from] crate::actors::NameError),
    #[error(transparent)]
    Component(#[from] WasmError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("no actor named `{0}` is deployed")]
    NotFound(String),
    #[error(
        "no actor named `{0}` is deployed: upload its component first, or register a socket actor with {{\"kind\": \"socket\", \"socket\": PATH}}"
    )]
    NothingToConfigure(String),
    #[error("actor `{0}` is served by an external runtime; upload a component under another name")]
    NotWasm(String),
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    #[error("cannot record the deployment: {0}")]
    Store(#[from] StoreError),
}

/// What a deploy did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Deployment {
    pub name: String,
    pub digest: String,
    pub version: u32,
    /// False when the same bytes were already the current version.
    #[serde(skip)]
    pub changed: bool,
}

/// A served actor as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActorView {
    pub name: String,
    pub kind: ActorKind,
    /// The sha256 of a wasm actor's current component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The current version of an uploaded component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Every uploaded version, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<Version>,
    /// The socket of an external runtime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    /// Calls open to an external runtime at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<usize>,
    pub concurrency: usize,
    pub timeout_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_limit_bytes: Option<usize>,
    pub handler_mode: HandlerMode,
    /// Names of the environment variables granted to a wasm guest (values stay private).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Messages this node finished for the actor, since it started.
    pub processed: u64,
    /// Of those, the ones that went to error-end.
    pub failed: u64,
}

/// What runs behind a name.
#[derive(Clone)]
enum Backend {
    /// A component, loaded with the actor's limits.
    Wasm(Arc<WasmActor>),
    /// An external runtime at this socket.
    Socket(PathBuf),
}

struct Deployed {
    slot: Arc<ActorSlot>,
    stop: CancellationToken,
    record: ActorRecord,
    backend: Backend,
    effective: Effective,
    /// Served because the store records it (not loaded at start).
    recorded: bool,
}

/// The actors this node serves.
pub struct Deployments<T: Transport> {
    router: Arc<Router<T>>,
    engine: WasmEngine,
    config: NodeConfig,
    store: Option<Arc<dyn Store>>,
    actors: Mutex<BTreeMap<String, Deployed>>,
}

impl<T: Transport> Deployments<T> {
    /// Deployments recorded in `store` (none: they last as long as the process).
    pub fn new(
        router: Arc<Router<T>>,
        engine: WasmEngine,
        config: NodeConfig,
        store: Option<Arc<dyn Store>>,
    ) -> Self {
        Deployments {
            router,
            engine,
            config,
            store,
            actors: Mutex::new(BTreeMap::new()),
        }
    }

    /// Serves a wasm actor loaded at start (bundled or from `--actors`).
    pub async fn add_wasm(&self, name: &str, actor: WasmActor) -> Result<(), DeployError> {
        let record = ActorRecord {
            name: name.to_owned(),
            kind: ActorKind::Wasm,
            versions: Vec::new(),
            options: ActorOptions::default(),
        };
        let effective = Effective::of(&self.config, name, &record.options);
        let mut actors = self.actors.lock().await;
        self.install(
            &mut actors,
            record,
            Backend::Wasm(Arc::new(actor)),
            effective,
            false,
        )
        .await
    }

    /// Serves a socket actor named at start.
    pub async fn add_socket(&self, name: &str, path: PathBuf) -> Result<(), DeployError> {
        let record = ActorRecord {
            name: name.to_owned(),
            kind: ActorKind::Socket,
            versions: Vec::new(),
            options: ActorOptions {
                socket: Some(path.clone()),
                ..ActorOptions::default()
            },
        };
        let effective = Effective::of(&self.config, name, &record.options);
        let mut actors = self.actors.lock().await;
        self.install(&mut actors, record, Backend::Socket(path), effective, false)
            .await
    }

    /// Deploys (or hot-swaps) a wasm actor and records it.
    pub async fn deploy(&self, name: &str, bytes: Arc<[u8]>) -> Result<Deployment, DeployError> {
        validate_name(name)?;
        let mut actors = self.actors.lock().await;
        let current = actors.get(name);
        if let Some(current) = current
            && current.record.kind != ActorKind::Wasm
        {
            return Err(DeployError::NotWasm(name.to_owned()));
        }
        let digest = digest_off_runtime(bytes.clone()).await?;
        let current = actors.get(name);
        let recorded = match current {
            Some(_) => None,
            None => self.recorded(name).await?,
        };
        if let Some(record) = &recorded
            && record.kind != ActorKind::Wasm
        {
            return Err(DeployError::NotWasm(name.to_owned()));
        }
        let mut record = current
            .map(|d| d.record.clone())
            .or(recorded)
            .unwrap_or(ActorRecord {
                name: name.to_owned(),
                kind: ActorKind::Wasm,
                versions: Vec::new(),
                options: ActorOptions::default(),
            });
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
        let effective = Effective::of(&self.config, name, &record.options);
        let (actor, report) = self
            .engine
            .load_digested(name, bytes.clone(), digest, effective.limits.clone())
            .await?;
        let version = Version {
            version: record.current().map_or(1, |last| last.version + 1),
            digest: report.digest.clone(),
        };
        record.versions.push(version.clone());
        self.save(record.clone(), Some((report.digest.clone(), bytes)))
            .await?;
        if self.config.hosts(name) {
            self.install(
                &mut actors,
                record,
                Backend::Wasm(Arc::new(actor)),
                effective,
                true,
            )
            .await?;
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

    /// Registers a socket actor, or sets the options of any actor, and records it.
    pub async fn configure(&self, name: &str, spec: ActorSpec) -> Result<ActorView, DeployError> {
        validate_name(name)?;
        let mut actors = self.actors.lock().await;
        let recorded = match actors.get(name) {
            Some(_) => None,
            None => self.recorded(name).await?,
        };
        let mut record = match (actors.get(name), recorded) {
            (Some(deployed), _) => deployed.record.clone(),
            (None, Some(record)) => record,
            (None, None) if spec.kind == Some(ActorKind::Socket) => ActorRecord {
                name: name.to_owned(),
                kind: ActorKind::Socket,
                versions: Vec::new(),
                options: ActorOptions::default(),
            },
            (None, None) => return Err(DeployError::NothingToConfigure(name.to_owned())),
        };
        record.options = spec.check(record.kind)?;
        self.save(record.clone(), None).await?;
        tracing::info!(actor = name, "options recorded");
        self.apply(&mut actors, record.clone()).await?;
        Ok(match actors.get(name) {
            Some(deployed) => self.view(deployed),
            None => self.record_view(&record),
        })
    }

    /// The store's record of an actor this node does not serve (yet).
    async fn recorded(&self, name: &str) -> Result<Option<ActorRecord>, DeployError> {
        match &self.store {
            Some(store) => Ok(store.record(name.to_owned()).await?),
            None => Ok(None),
        }
    }

    /// Serves `record` as the store has it: a swap, a new consumer, or nothing when
    /// it is what runs already or this node does not host it. True when it changed
    /// what runs.
    async fn apply(
        &self,
        actors: &mut BTreeMap<String, Deployed>,
        record: ActorRecord,
    ) -> Result<bool, DeployError> {
        let name = record.name.clone();
        if !self.config.hosts(&name) {
            return Ok(false);
        }
        let local = actors.get(&name);
        if local.is_some_and(|deployed| deployed.record == record) {
            return Ok(false);
        }
        let effective = Effective::of(&self.config, &name, &record.options);
        let backend = match (record.kind, record.current()) {
            (ActorKind::Wasm, Some(version)) => match local.map(|d| &d.backend) {
                Some(Backend::Wasm(actor)) if actor.digest() == version.digest => {
                    Backend::Wasm(Arc::new(actor.with_limits(effective.limits.clone())))
                }
                _ => {
                    let store = self.store.as_ref().ok_or_else(|| {
                        StoreError::Failed("no store to read components from".into())
                    })?;
                    let bytes = store.component(version.digest.clone()).await?;
                    let (actor, report) = self
                        .engine
                        .load(&name, bytes, effective.limits.clone())
                        .await?;
                    tracing::info!(actor = %name, version = version.version, source = ?report.source, "serving a recorded version");
                    Backend::Wasm(Arc::new(actor))
                }
            },
            // Options for an actor loaded at start.
            (ActorKind::Wasm, None) => match local.map(|d| &d.backend) {
                Some(Backend::Wasm(actor)) => {
                    Backend::Wasm(Arc::new(actor.with_limits(effective.limits.clone())))
                }
                _ => {
                    tracing::warn!(actor = %name, "recorded options for an actor this node does not serve; skipped");
                    return Ok(false);
                }
            },
            (ActorKind::Socket, _) => match &record.options.socket {
                Some(path) => Backend::Socket(path.clone()),
                None => {
                    tracing::warn!(actor = %name, "a recorded socket actor without a socket; skipped");
                    return Ok(false);
                }
            },
        };
        let recorded = local.is_none_or(|deployed| deployed.recorded);
        self.install(actors, record, backend, effective, recorded)
            .await?;
        Ok(true)
    }

    /// Serves what the store records for `names` (`None`: for every actor), and stops
    /// serving recorded actors the store no longer has. Used when another node of the
    /// pool announced a change.
    pub async fn sync(&self, names: Option<Vec<String>>) -> Result<(), DeployError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let (records, gone): (Vec<ActorRecord>, Vec<String>) = match names {
            None => {
                let records = store.records().await?;
                let actors = self.actors.lock().await;
                let gone = actors
                    .iter()
                    .filter(|(name, deployed)| {
                        deployed.recorded && !records.iter().any(|r| &r.name == *name)
                    })
                    .map(|(name, _)| name.clone())
                    .collect();
                (records, gone)
            }
            Some(names) => {
                let mut records = Vec::new();
                let mut gone = Vec::new();
                for name in names {
                    match store.record(name.clone()).await? {
                        Some(record) => records.push(record),
                        None => gone.push(name),
                    }
                }
                (records, gone)
            }
        };
        let mut actors = self.actors.lock().await;
        for record in records {
            let name = record.name.clone();
            if let Err(error) = self.apply(&mut actors, record).await {
                tracing::warn!(actor = %name, %error, "cannot serve the recorded actor");
            }
        }
        for name in gone {
            if actors.get(&name).is_some_and(|deployed| deployed.recorded)
                && let Some(deployed) = actors.remove(&name)
            {
                deployed.stop.cancel();
                tracing::info!(actor = %name, "removed elsewhere in the pool; stopped");
            }
        }
        Ok(())
    }

    /// Stops serving an actor and forgets its record; its messages stay in its queue.
    pub async fn remove(&self, name: &str) -> Result<(), DeployError> {
        let mut actors = self.actors.lock().await;
        if !actors.contains_key(name) {
            return Err(DeployError::NotFound(name.to_owned()));
        }
        if let Some(store) = &self.store {
            store.delete(name.to_owned()).await?;
        }
        if let Some(deployed) = actors.remove(name) {
            deployed.stop.cancel();
        }
        tracing::info!(actor = name, "removed");
        Ok(())
    }

    /// Serves every actor the store records (that this node hosts).
    pub async fn restore(&self) -> Result<usize, DeployError> {
        let Some(store) = &self.store else {
            return Ok(0);
        };
        let mut restored = 0;
        for record in store.records().await? {
            let mut actors = self.actors.lock().await;
            if self.apply(&mut actors, record).await? {
                restored += 1;
            }
        }
        Ok(restored)
    }

    /// Puts `backend` behind `record.name`: a swap when the actor is served with the
    /// same concurrency, otherwise a new consumer (the old one stops).
    async fn install(
        &self,
        actors: &mut BTreeMap<String, Deployed>,
        record: ActorRecord,
        backend: Backend,
        effective: Effective,
        recorded: bool,
    ) -> Result<(), DeployError> {
        let name = record.name.clone();
        let runtime = self.runtime(&name, &backend, &record.options, &effective);
        if let Some(deployed) = actors.get_mut(&name)
            && deployed.effective.concurrency == effective.concurrency
        {
            deployed.slot.replace(runtime);
            deployed.record = record;
            deployed.backend = backend;
            deployed.effective = effective;
            deployed.recorded = recorded;
            return Ok(());
        }
        let slot = Arc::new(ActorSlot::new(name.clone(), runtime, effective.concurrency));
        let stop = self.router.serve(slot.clone()).await?;
        crate::metrics::metrics()
            .concurrency_limit
            .with_label_values(&[name.as_str()])
            .set(effective.concurrency as i64);
        let replaced = actors.insert(
            name,
            Deployed {
                slot,
                stop,
                record,
                backend,
                effective,
                recorded,
            },
        );
        if let Some(old) = replaced {
            old.stop.cancel();
        }
        Ok(())
    }

    /// The runtime calls go to.
    fn runtime(
        &self,
        name: &str,
        backend: &Backend,
        options: &ActorOptions,
        effective: &Effective,
    ) -> Arc<dyn ActorRuntime> {
        let runtime: Arc<dyn ActorRuntime> = match backend {
            Backend::Wasm(actor) => actor.clone(),
            Backend::Socket(path) => Arc::new(SocketActor::new(
                name,
                effective.socket(&self.config, path.clone(), options),
            )),
        };
        with_mode(runtime, effective.handler_mode)
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

    /// How the API shows an actor recorded but not served on this node.
    fn record_view(&self, record: &ActorRecord) -> ActorView {
        let effective = Effective::of(&self.config, &record.name, &record.options);
        let digest = record.current().map(|v| v.digest.clone());
        self.view_of(record, &effective, digest, record.options.socket.as_ref())
    }

    fn view(&self, deployed: &Deployed) -> ActorView {
        let (digest, socket) = match &deployed.backend {
            Backend::Wasm(actor) => (Some(actor.digest().to_owned()), None),
            Backend::Socket(path) => (None, Some(path)),
        };
        self.view_of(&deployed.record, &deployed.effective, digest, socket)
    }

    fn view_of(
        &self,
        record: &ActorRecord,
        effective: &Effective,
        digest: Option<String>,
        socket: Option<&PathBuf>,
    ) -> ActorView {
        let queue = self.router.queue_name(&record.name);
        let processed = |status: &str| {
            crate::metrics::metrics()
                .processed
                .get_metric_with_label_values(&[queue.as_str(), status])
                .map_or(0, |counter| counter.get())
        };
        let failed = processed("error");
        let (socket, connections, memory) = match socket {
            Some(path) => (
                Some(path.display().to_string()),
                Some(record.options.connections.unwrap_or(effective.concurrency)),
                None,
            ),
            None => (None, None, Some(effective.limits.memory_bytes)),
        };
        ActorView {
            name: record.name.clone(),
            kind: record.kind,
            digest,
            version: record.current().map(|v| v.version),
            versions: record.versions.clone(),
            socket,
            connections,
            concurrency: effective.concurrency,
            timeout_ms: effective
                .limits
                .timeout
                .as_millis()
                .try_into()
                .unwrap_or(u64::MAX),
            memory_limit_bytes: memory,
            handler_mode: effective.handler_mode,
            env: effective
                .limits
                .env
                .iter()
                .map(|(k, _)| k.clone())
                .collect(),
            processed: processed("success") + failed,
            failed,
        }
    }

    /// Every served actor.
    pub async fn list(&self) -> Vec<ActorView> {
        let actors = self.actors.lock().await;
        actors.values().map(|d| self.view(d)).collect()
    }

    /// One served actor.
    pub async fn get(&self, name: &str) -> Option<ActorView> {
        let actors = self.actors.lock().await;
        actors.get(name).map(|d| self.view(d))
    }

    /// The names of the served actors.
    pub async fn names(&self) -> Vec<String> {
        self.actors.lock().await.keys().cloned().collect()
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
}
