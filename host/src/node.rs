//! A whole node: the engine, the actors, a transport, the router and the HTTP API,
//! started and stopped as one.
//!
//! [`Node::start`] returns once every actor is loaded and consuming and the API is
//! bound, so a caller (the CLI, a test, a benchmark) can send envelopes at once. The
//! transport (embedded queue or RabbitMQ) is chosen by the configuration; everything
//! after that choice is generic over [`Transport`], so the node behaves the same on
//! both. [`Node::stop`] is the graceful stop: readiness goes false, the API stops
//! taking envelopes, the embedded queues drain, consumers stop, in-flight calls finish
//! within the grace period, and the transport closes.

use crate::actors::{NameError, validate_name};
use crate::api::{self, ApiState};
use crate::config::NodeConfig;
use crate::control_plane::ControlPlane;
use crate::deployments::Deployments;
use crate::lag::LagMonitor;
use crate::outcomes::Outcomes;
use crate::queues::QueueNames;
use crate::router::Router;
use crate::runtime::wasm::{EngineOptions, WasmActor, WasmEngine, WasmError};
use crate::store::Store;
use crate::store::files::FileStore;
use crate::store::postgres::PgStore;
use crate::transport::amqp::{AmqpOptions, AmqpTransport};
use crate::transport::memory::MemoryTransport;
use crate::transport::{Transport, TransportError};
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_util::sync::CancellationToken;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot read actors from {path}: {source}")]
    ActorsDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {source}")]
    ActorName { file: PathBuf, source: NameError },
    #[error("no actors to serve in {0} (expected NAME.wasm files)")]
    NoActors(PathBuf),
    #[error("a setting names actor `{0}`, which is not among the actors to serve")]
    UnknownOverride(String),
    #[error("--serve names actor `{0}`, which is not among the available actors")]
    UnknownServe(String),
    #[error("actor `{0}` is defined twice (a wasm actor and a socket actor)")]
    Duplicate(String),
    #[error("actor `{name}`: {source}")]
    Actor { name: String, source: WasmError },
    #[error(transparent)]
    Engine(WasmError),
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Deploy(#[from] crate::deployments::DeployError),
    #[error("the shared store: {0}")]
    Store(crate::store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running node.
pub struct Node {
    local_addr: Option<SocketAddr>,
    actor_names: Vec<String>,
    stop: Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>,
}

impl Node {
    /// Loads the actors, connects the transport, starts routing and binds the API.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        config.validate()?;
        let pool = match &config.store {
            Some(settings) => Some(
                PgStore::connect(&settings.url, &settings.schema)
                    .await
                    .map_err(NodeError::Store)?,
            ),
            None => None,
        };
        let (engine, loaded) = load_actors(&config, pool.as_ref()).await?;
        match &config.amqp {
            None => {
                let transport = MemoryTransport::new(config.queue_capacity);
                run(Arc::new(transport), engine, loaded, config, pool).await
            }
            Some(amqp) => {
                let options = AmqpOptions {
                    exchange: amqp.exchange.clone(),
                    names: QueueNames::new(config.queue_prefix.clone()),
                    max_redeliveries: amqp.max_redeliveries,
                    ..AmqpOptions::new(amqp.url.clone())
                };
                let transport = AmqpTransport::connect(options).await?;
                run(Arc::new(transport), engine, loaded, config, pool).await
            }
        }
    }

    /// The address the API is bound to.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Names of the actors served.
    pub fn actor_names(&self) -> &[String] {
        &self.actor_names
    }

    /// Stops gracefully within the configured grace period.
    pub async fn stop(self) {
        (self.stop)().await;
    }
}

/// An actor ready to serve.
enum LoadedActor {
    Wasm(String, WasmActor),
    Socket(String, PathBuf),
}

/// The wasm and socket actors this node serves, and the engine the wasm ones run on.
async fn load_actors(
    config: &NodeConfig,
    pool: Option<&Arc<PgStore>>,
) -> Result<(WasmEngine, Vec<LoadedActor>), NodeError> {
    let mut engine = WasmEngine::new(&EngineOptions {
        pooling: config.pooling,
        max_instances: config.max_instances,
        cache_dir: config.data_dir.as_ref().map(|dir| dir.join("compiled")),
        ..EngineOptions::default()
    })
    .map_err(NodeError::Engine)?;
    if let Some(pool) = pool {
        engine = engine.with_artifacts(pool.clone());
    }
    let wasm = load_wasm_actors(config, &engine).await?;
    // Socket actors are named one by one, so each is served; `--serve` picks among
    // the wasm actors available.
    for (name, _) in &config.socket_actors {
        if wasm.iter().any(|(wasm_name, _)| wasm_name == name) {
            return Err(NodeError::Duplicate(name.clone()));
        }
    }
    let loaded = wasm
        .into_iter()
        .map(|(name, actor)| LoadedActor::Wasm(name, actor))
        .chain(
            config
                .socket_actors
                .iter()
                .map(|(name, path)| LoadedActor::Socket(name.clone(), path.clone())),
        )
        .collect();
    Ok((engine, loaded))
}

/// Reads, compiles (or loads from cache) the wasm actors this node serves.
async fn load_wasm_actors(
    config: &NodeConfig,
    engine: &WasmEngine,
) -> Result<Vec<(String, WasmActor)>, NodeError> {
    let mut sources = match &config.actors_dir {
        Some(dir) => read_actors_dir(dir).await?,
        None => crate::bundled::BUNDLED_ACTORS
            .iter()
            .map(|(name, bytes)| (name.to_string(), Arc::<[u8]>::from(*bytes)))
            .collect(),
    };
    let is_socket = |name: &str| {
        config
            .socket_actors
            .iter()
            .any(|(socket, _)| socket == name)
    };
    if let Some(serve) = &config.serve {
        if let Some(unknown) = serve
            .iter()
            .find(|name| !is_socket(name) && !sources.iter().any(|(source, _)| source == *name))
        {
            return Err(NodeError::UnknownServe(unknown.clone()));
        }
        sources.retain(|(name, _)| serve.contains(name));
    }
    if let Some(unknown) = config
        .per_actor
        .keys()
        .find(|name| !is_socket(name) && !sources.iter().any(|(source, _)| source == *name))
    {
        return Err(NodeError::UnknownOverride(unknown.clone()));
    }
    let loads = sources.into_iter().map(|(name, bytes)| {
        let engine = engine.clone();
        let limits = config.limits_for(&name);
        async move {
            match engine.load(&name, bytes, limits).await {
                Ok((actor, report)) => {
                    tracing::info!(
                        actor = %name, digest = %report.digest, source = ?report.source,
                        elapsed_ms = report.elapsed.as_millis() as u64, "actor loaded"
                    );
                    Ok((name, actor))
                }
                Err(source) => Err(NodeError::Actor { name, source }),
            }
        }
    });
    futures::future::try_join_all(loads).await
}

/// Starts routing on `transport` and binds the API.
async fn run<T: Transport>(
    transport: Arc<T>,
    engine: WasmEngine,
    loaded: Vec<LoadedActor>,
    config: NodeConfig,
    pool: Option<Arc<PgStore>>,
) -> Result<Node, NodeError> {
    let mut outcomes = Outcomes::new(config.outcome_capacity);
    if let Some(pool) = &pool {
        outcomes = outcomes.with_shared(pool.clone());
    }
    let outcomes = Arc::new(outcomes);
    let router = Router::configured(
        transport.clone(),
        outcomes,
        config.end_names.clone(),
        QueueNames::new(config.queue_prefix.clone()),
    );
    if config.end_actors {
        router.serve_end_actors().await?;
    } else {
        // Others record outcomes; the end queues must exist all the same.
        for end in [&config.end_names.happy, &config.end_names.error] {
            transport.declare(end).await?;
        }
    }
    let store: Option<Arc<dyn Store>> = match &pool {
        Some(pool) => Some(pool.clone()),
        None => config
            .data_dir
            .as_ref()
            .map(|dir| Arc::new(FileStore::new(dir.join("deployments"))) as Arc<dyn Store>),
    };
    let deployments = Arc::new(Deployments::new(
        router.clone(),
        engine,
        config.clone(),
        store,
    ));
    for actor in loaded {
        match actor {
            LoadedActor::Wasm(name, actor) => deployments.add_wasm(&name, actor).await?,
            LoadedActor::Socket(name, path) => deployments.add_socket(&name, path).await?,
        }
    }
    let restored = deployments.restore().await?;
    if restored > 0 {
        tracing::info!(
            restored,
            store = if pool.is_some() {
                "shared"
            } else {
                "data directory"
            },
            "deployed actors restored"
        );
    }
    let control_plane = pool.as_ref().map(|pool| {
        ControlPlane::start(
            pool.clone(),
            deployments.clone(),
            config
                .store
                .as_ref()
                .map_or(DEFAULT_RETENTION, |settings| settings.outcome_retention),
        )
    });
    let actor_names = deployments.names().await;

    let lag = LagMonitor::spawn(LAG_TICK);
    let depth = tokio::spawn(report_queue_depths(transport.clone(), deployments.clone()));
    let ready = Arc::new(AtomicBool::new(true));
    let stop_http = CancellationToken::new();
    let http = match config.listen {
        None => None,
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| NodeError::Listen { addr, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| NodeError::Listen { addr, source })?;
            let app = api::app(Arc::new(ApiState {
                router: router.clone(),
                ready: ready.clone(),
                deployments: deployments.clone(),
                max_body_bytes: config.max_body_bytes,
                token: config.token.clone(),
                pool: pool.clone(),
            }));
            let stop = stop_http.clone();
            let server = tokio::spawn(async move {
                let serve = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await });
                if let Err(error) = serve.await {
                    tracing::error!(%error, "the HTTP server failed");
                }
            });
            tracing::info!(address = %bound, transport = transport.name(), "HTTP API listening");
            Some((bound, server))
        }
    };
    let local_addr = http.as_ref().map(|(addr, _)| *addr);
    let grace = config.grace_period;
    let stop = move || -> BoxFuture<'static, ()> {
        Box::pin(async move {
            ready.store(false, Ordering::SeqCst);
            stop_http.cancel();
            let unfinished = router.shutdown(grace).await;
            if unfinished > 0 {
                tracing::warn!(
                    unfinished,
                    "grace period over with messages still in flight"
                );
            }
            if let Some((_, server)) = http
                && tokio::time::timeout(std::time::Duration::from_secs(5), server)
                    .await
                    .is_err()
            {
                tracing::warn!("the HTTP server did not close within 5s");
            }
            depth.abort();
            if let Some(control_plane) = control_plane {
                control_plane.stop().await;
            }
            drop(lag);
            tracing::info!("node stopped");
        })
    };
    Ok(Node {
        local_addr,
        actor_names,
        stop: Box::new(stop),
    })
}

/// Outcome retention when none is configured.
const DEFAULT_RETENTION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// How often the event-loop lag is sampled.
const LAG_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// Keeps the queue-depth gauge current for every served actor, deployed ones
/// included, where the transport can tell.
async fn report_queue_depths<T: Transport>(transport: Arc<T>, deployments: Arc<Deployments<T>>) {
    let gauge = &crate::metrics::metrics().queue_depth;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        for actor in deployments.names().await {
            if let Some(depth) = transport.depth(&actor) {
                gauge.with_label_values(&[actor.as_str()]).set(depth as i64);
            }
        }
    }
}

/// Reads `NAME.wasm` files of a directory, off the async runtime.
async fn read_actors_dir(dir: &Path) -> Result<Vec<(String, Arc<[u8]>)>, NodeError> {
    let dir = dir.to_owned();
    let read = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || -> Result<Vec<(PathBuf, Vec<u8>)>, std::io::Error> {
            let mut files = Vec::new();
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                if path.extension().is_some_and(|ext| ext == "wasm") && path.is_file() {
                    let bytes = std::fs::read(&path)?;
                    files.push((path, bytes));
                }
            }
            files.sort();
            Ok(files)
        })
    };
    let files = read
        .await
        .map_err(|error| NodeError::ActorsDir {
            path: dir.clone(),
            source: std::io::Error::other(error),
        })?
        .map_err(|source| NodeError::ActorsDir {
            path: dir.clone(),
            source,
        })?;
    if files.is_empty() {
        return Err(NodeError::NoActors(dir));
    }
    files
        .into_iter()
        .map(|(file, bytes)| {
            let name = file
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default();
            match validate_name(&name) {
                Ok(()) => Ok((name, Arc::from(bytes))),
                Err(source) => Err(NodeError::ActorName { file, source }),
            }
        })
        .collect()
}
