//! A whole node: the engine, the actors, the embedded transport, the router and the
//! HTTP API, started and stopped as one.
//!
//! [`Node::start`] returns once every actor is loaded and consuming and the API is
//! bound, so a caller (the CLI, a test, a benchmark) can send envelopes at once.
//! [`Node::stop`] is the graceful stop: readiness goes false, the API stops taking new
//! envelopes, the embedded queues drain, in-flight calls finish within the grace period.

use crate::actors::{ActorSlot, NameError, validate_name};
use crate::api::{self, ApiState, ServedActor};
use crate::config::NodeConfig;
use crate::outcomes::Outcomes;
use crate::router::Router;
use crate::runtime::wasm::{EngineOptions, WasmEngine, WasmError};
use crate::transport::TransportError;
use crate::transport::memory::MemoryTransport;
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
    #[error("actor `{name}`: {source}")]
    Actor { name: String, source: WasmError },
    #[error(transparent)]
    Engine(WasmError),
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running node.
pub struct Node {
    router: Arc<Router<MemoryTransport>>,
    actors: Vec<Arc<ActorSlot>>,
    ready: Arc<AtomicBool>,
    stop_http: CancellationToken,
    http: Option<(SocketAddr, tokio::task::JoinHandle<()>)>,
    config: NodeConfig,
}

impl Node {
    /// Loads the actors, starts routing and binds the API.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        config.validate()?;
        let engine = WasmEngine::new(&EngineOptions {
            pooling: config.pooling,
            max_instances: config.max_instances,
            cache_dir: config.data_dir.as_ref().map(|dir| dir.join("compiled")),
            ..EngineOptions::default()
        })
        .map_err(NodeError::Engine)?;
        let sources = match &config.actors_dir {
            Some(dir) => read_actors_dir(dir).await?,
            None => crate::bundled::BUNDLED_ACTORS
                .iter()
                .map(|(name, bytes)| (name.to_string(), Arc::<[u8]>::from(*bytes)))
                .collect(),
        };
        if let Some(unknown) = config
            .per_actor
            .keys()
            .find(|name| !sources.iter().any(|(source, _)| source == *name))
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
        let loaded = futures::future::try_join_all(loads).await?;

        let transport = Arc::new(MemoryTransport::new(config.queue_capacity));
        let outcomes = Arc::new(Outcomes::new(config.outcome_capacity));
        let router = Router::new(transport, outcomes);
        router.serve_end_actors().await?;
        let mut actors = Vec::with_capacity(loaded.len());
        let mut served = Vec::with_capacity(loaded.len());
        for (name, actor) in loaded {
            let concurrency = config.concurrency_for(&name);
            served.push(ServedActor {
                name: name.clone(),
                kind: "wasm",
                digest: actor.digest().to_owned(),
                concurrency,
                timeout_ms: actor.limits().timeout.as_millis() as u64,
                memory_limit_bytes: actor.limits().memory_bytes,
            });
            let slot = Arc::new(ActorSlot::new(name, Arc::new(actor), concurrency));
            router.serve(slot.clone()).await?;
            actors.push(slot);
        }

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
                    actors: served,
                    max_body_bytes: config.max_body_bytes,
                }));
                let stop = stop_http.clone();
                let server = tokio::spawn(async move {
                    let serve = axum::serve(listener, app)
                        .with_graceful_shutdown(async move { stop.cancelled().await });
                    if let Err(error) = serve.await {
                        tracing::error!(%error, "the HTTP server failed");
                    }
                });
                tracing::info!(address = %bound, "HTTP API listening");
                Some((bound, server))
            }
        };
        Ok(Node {
            router,
            actors,
            ready,
            stop_http,
            http,
            config,
        })
    }

    /// The address the API is bound to.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|(addr, _)| *addr)
    }

    pub fn router(&self) -> &Arc<Router<MemoryTransport>> {
        &self.router
    }

    /// Names of the actors served.
    pub fn actor_names(&self) -> Vec<&str> {
        self.actors.iter().map(|slot| slot.name()).collect()
    }

    /// Stops gracefully within the configured grace period.
    pub async fn stop(self) {
        self.ready.store(false, Ordering::SeqCst);
        self.stop_http.cancel();
        let unfinished = self.router.shutdown(self.config.grace_period).await;
        if unfinished > 0 {
            tracing::warn!(
                unfinished,
                "grace period over with messages still in flight"
            );
        }
        if let Some((_, server)) = self.http
            && tokio::time::timeout(std::time::Duration::from_secs(5), server)
                .await
                .is_err()
        {
            tracing::warn!("the HTTP server did not close within 5s");
        }
        tracing::info!("node stopped");
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
