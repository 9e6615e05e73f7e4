//! A whole node: the engine, the actors, a transport, the router and the HTTP API,
//! started and stopped as one.
//!
//! [`Node::start`] returns once every actor is loaded and consuming and the API is
//! bound, so a caller (the CLI, a test, a benchmark) can send envelopes at once. The
//! transport (embedded queue or RabbitMQ) is chosen by the configuration; everything
//! after that choice holds it as an `Arc<dyn` [`Transport`]`>`, so the node behaves the
//! same on both. [`Node::stop`] is the graceful stop: readiness goes false and new envelopes
//! are refused while the API keeps answering; the router stops ([`crate::router::stop`]:
//! a broker keeps what is queued, the embedded queues are drained), in-flight calls
//! finish within the grace period, and only then does the API close. The stop logs
//! what became of what was left.

use crate::api::server::Server;
use crate::api::{self, ApiState};
use crate::config::NodeConfig;
use crate::control_plane::ControlPlane;
use crate::deployments::Deployments;
use crate::envelope::limits::SizeLimit;
use crate::journal::{Journal, Recovered, StoredSubmission};
use crate::lag::LagMonitor;
use crate::outbound::ClientSettings;
use crate::outcomes::{OutcomeLimits, Outcomes};
use crate::queues::QueueNames;
use crate::records::{NameError, validate_name};
use crate::router::stop::StopReport;
use crate::router::{Router, RouterSettings};
use crate::runtime::wasm::{EngineOptions, WasmActor, WasmEngine, WasmError};
use crate::store::Store;
use crate::store::files::FileStore;
use crate::store::postgres::PgStore;
use crate::trace::{ExportError, Exporter};
use crate::transport::amqp::{AmqpOptions, AmqpTransport};
use crate::transport::memory::MemoryTransport;
use crate::transport::{Transport, TransportError};
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The actors directory could not be read.
    #[error("cannot read actors from {path}")]
    ActorsDir {
        /// The actors directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An actor file's name is not a valid actor name.
    #[error("{file}")]
    ActorName {
        /// The actor file.
        file: PathBuf,
        /// Why its name is not valid.
        source: NameError,
    },
    /// The actors directory holds no `NAME.wasm` files; holds the directory.
    #[error("no actors to serve in {0} (expected NAME.wasm files)")]
    NoActors(PathBuf),
    /// A per-actor setting names an actor that is not served; holds the name.
    #[error("a setting names actor `{0}`, which is not among the actors to serve")]
    UnknownOverride(String),
    /// `--serve` names an actor that is not available; holds the name.
    #[error("--serve names actor `{0}`, which is not among the available actors")]
    UnknownServe(String),
    /// The same name is both a wasm actor and a socket actor; holds the name.
    #[error("actor `{0}` is defined twice (a wasm actor and a socket actor)")]
    Duplicate(String),
    /// A wasm actor could not be loaded.
    #[error("actor `{name}`")]
    Actor {
        /// The actor's name.
        name: String,
        /// Why it could not be loaded.
        source: WasmError,
    },
    /// The wasm engine could not be built.
    #[error(transparent)]
    Engine(WasmError),
    /// The HTTP client for actors' outbound requests could not be built.
    #[error(transparent)]
    Outbound(#[from] crate::outbound::ClientError),
    /// The transport could not connect or declare a queue.
    #[error("transport")]
    Transport(#[from] TransportError),
    /// Deployed actors could not be restored.
    #[error(transparent)]
    Deploy(#[from] crate::deployments::DeployError),
    /// The shared store could not be reached or used.
    #[error("the shared store")]
    Store(#[source] crate::store::StoreError),
    /// The data directory's store could not be opened.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// The trace exporter could not be set up.
    #[error("traces")]
    Trace(#[source] ExportError),
    /// Object storage for results (`--s3-bucket`) cannot be used.
    #[error(transparent)]
    Archive(crate::archive::ArchiveError),
    /// The API could not bind its address.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
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
            Some(settings) => Some(PgStore::connect(settings).await.map_err(NodeError::Store)?),
            None => None,
        };
        let (engine, loaded) = load_actors(&config, pool.as_ref()).await?;
        match &config.amqp {
            None => {
                let kept = match (&config.data_dir, config.ephemeral) {
                    (Some(dir), false) => Some(Journal::open(dir).await?),
                    _ => None,
                };
                let (transport, restored) = match kept {
                    Some((journal, recovered)) => {
                        log_recovered(&recovered);
                        let outcomes = (journal.clone(), recovered.submissions);
                        let transport = MemoryTransport::durable(
                            config.queue_capacity,
                            journal,
                            recovered.messages,
                        );
                        (transport, Some(outcomes))
                    }
                    None => (MemoryTransport::new(config.queue_capacity), None),
                };
                let transport = transport.with_max_redeliveries(config.max_redeliveries);
                run(Arc::new(transport), engine, loaded, config, pool, restored).await
            }
            Some(amqp) => {
                let options = AmqpOptions {
                    exchange: amqp.exchange.clone(),
                    names: QueueNames::new(config.queue_prefix.clone()),
                    max_redeliveries: amqp.max_redeliveries,
                    ..AmqpOptions::new(amqp.url.clone())
                };
                let transport = AmqpTransport::connect(options).await?;
                run(Arc::new(transport), engine, loaded, config, pool, None).await
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
    Wasm(String, Box<WasmActor>),
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
        table_elements: config.pool_table_elements,
        instance_size: config.pool_instance_size,
        outbound: ClientSettings {
            ca_files: config.outbound_ca.clone(),
        },
        ..EngineOptions::default()
    })
    .map_err(NodeError::Engine)?;
    // With CA files to read, built now, so that one that cannot be used stops the
    // start; otherwise on the first outbound request (it reads the platform's roots).
    if !config.outbound_ca.is_empty() {
        engine.outbound().get().await?;
    }
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
        .map(|(name, actor)| LoadedActor::Wasm(name, Box::new(actor)))
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

/// Says what the data directory's store held at start.
fn log_recovered(recovered: &Recovered) {
    let in_flight = recovered
        .messages
        .iter()
        .filter(|message| message.was_in_flight)
        .count();
    tracing::info!(
        messages = recovered.messages.len(),
        in_flight,
        submissions = recovered.submissions.len(),
        "embedded queue opened from the data directory (messages in flight at the last stop are delivered again, counted as redeliveries)"
    );
}

/// Starts routing on `transport` and binds the API; `restored`: the data directory's
/// store and the submissions it kept, where outcomes are kept there.
async fn run(
    transport: Arc<dyn Transport>,
    engine: WasmEngine,
    loaded: Vec<LoadedActor>,
    config: NodeConfig,
    pool: Option<Arc<PgStore>>,
    restored: Option<(Journal, Vec<StoredSubmission>)>,
) -> Result<Node, NodeError> {
    let mut outcomes = Outcomes::bounded(OutcomeLimits {
        count: config.outcome_capacity,
        bytes: config.outcome_memory,
    });
    if let Some(pool) = &pool {
        outcomes = outcomes.with_shared(pool.clone());
    }
    if let Some((journal, submissions)) = restored {
        outcomes = outcomes.with_journal(journal);
        outcomes.restore(submissions);
    }
    let outcomes = Arc::new(outcomes);
    let runtime = tokio::runtime::Handle::current();
    let tracer = tokio::task::spawn_blocking(move || Exporter::from_env(runtime))
        .await
        .map_err(|error| NodeError::Trace(ExportError::Task(error.to_string())))?
        .map_err(NodeError::Trace)?;
    let reporter = config
        .gateway_url
        .as_deref()
        .map(crate::progress::gateway::AsyaGateway::start);
    let archive = match config.archive.clone() {
        Some(archive) => Some(crate::archive::Archive::start(archive).map_err(NodeError::Archive)?),
        None => None,
    };
    let router = Router::configured(
        transport.clone(),
        outcomes.clone(),
        RouterSettings {
            archive: archive.clone(),
            ends: config.end_names.clone(),
            queues: QueueNames::new(config.queue_prefix.clone()),
            size: SizeLimit::new(config.max_envelope_bytes),
            reporter: reporter.clone(),
            keep_progress: config.keep_progress,
            tracer: tracer.clone(),
            terminal: config.terminal_actors.clone(),
            log_each_message: config.log_each_message,
        },
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
            LoadedActor::Wasm(name, actor) => deployments.add_wasm(&name, *actor).await?,
            LoadedActor::Socket(name, path) => deployments.add_socket(&name, path).await?,
        }
    }
    let restored = deployments.restore().await?;
    transport.start_delivering();
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
                .map_or(crate::defaults::OUTCOME_RETENTION, |settings| {
                    settings.outcome_retention
                }),
        )
    });
    let actor_names = deployments.names();

    let lag = LagMonitor::spawn(LAG_TICK);
    let depth = tokio::spawn(report_queue_depths(transport.clone(), deployments.clone()));
    let ready = Arc::new(AtomicBool::new(true));
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
                tools: config.tools.clone(),
                mcp_sessions: config.mcp_sessions,
                open_reports: config.open_reports,
                guard: Arc::new(api::guard::WebGuard::new(
                    addr.ip().is_loopback(),
                    &config.public_hosts,
                    &config.allowed_origins,
                )),
            }));
            let server = Server::spawn(listener, app, config.header_read_timeout);
            tracing::info!(address = %bound, transport = transport.name(), "HTTP API listening");
            Some((bound, server))
        }
    };
    let local_addr = http.as_ref().map(|(addr, _)| *addr);
    let grace = config.grace_period;
    let stop = move || -> BoxFuture<'static, ()> {
        Box::pin(async move {
            ready.store(false, Ordering::SeqCst);
            let report = router.shutdown(grace).await;
            log_stop(transport.name(), &report, &outcomes);
            // Nothing routes any more: what is queued for the gateway and the pool's
            // store goes out now, within a bound.
            if let Some(reporter) = &reporter {
                reporter.0.flush(FLUSH).await;
            }
            outcomes.flush_progress(FLUSH).await;
            if let Some(archive) = &archive {
                archive.flush(FLUSH).await;
            }
            if let Some((_, server)) = http {
                server.shutdown(HTTP_CLOSE).await;
            }
            depth.abort();
            if let Some(control_plane) = control_plane {
                control_plane.stop().await;
            }
            transport.close().await;
            if let Some(tracer) = tracer {
                tracer.shutdown().await;
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

/// How long what is queued for a gateway or a pool's store gets at stop.
const FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// How long open HTTP requests get to finish once the routing has stopped.
const HTTP_CLOSE: std::time::Duration = std::time::Duration::from_secs(5);

/// Says what a stop left behind, in counts that match what happened to each message.
fn log_stop(transport: &str, report: &StopReport, outcomes: &Outcomes) {
    if report.calls_cut_off > 0 {
        tracing::warn!(
            calls = report.calls_cut_off,
            "grace period over with calls still running"
        );
    }
    match (report.kept, report.messages_left) {
        (true, Some(messages_kept)) => tracing::info!(
            transport,
            calls_cut_off = report.calls_cut_off,
            messages_kept,
            "stopped routing (the data directory keeps what is queued for the next start; calls cut off are delivered again)"
        ),
        (true, None) => tracing::info!(
            transport,
            calls_cut_off = report.calls_cut_off,
            "stopped routing (the broker keeps what is queued, and redelivers what was cut off)"
        ),
        (false, messages_lost) => tracing::info!(
            transport,
            calls_cut_off = report.calls_cut_off,
            messages_lost = messages_lost.unwrap_or(0),
            submissions_lost = outcomes.unfinished(),
            "stopped routing (the ephemeral embedded queue keeps nothing across a restart)"
        ),
    }
}

/// How often the event-loop lag is sampled.
const LAG_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// Keeps the queue-depth gauge current for every served actor, deployed ones
/// included, where the transport can tell.
async fn report_queue_depths(transport: Arc<dyn Transport>, deployments: Arc<Deployments>) {
    let gauge = &crate::metrics::metrics().queue_depth;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        for actor in deployments.names() {
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
