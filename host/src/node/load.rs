//! The actors a node serves from the start: wasm components read from `--actors` (or
//! the bundled examples) and compiled, and the external runtimes named one by one.
//!
//! Loading happens before the transport is touched, so a component that does not
//! compile stops the start before any queue is consumed. Reading files and compiling
//! run off the async runtime.

use super::NodeError;
use crate::config::NodeConfig;
use crate::records::validate_name;
use crate::runtime::wasm::{WasmActor, WasmEngine};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An actor ready to serve.
pub(super) enum LoadedActor {
    Wasm(String, Box<WasmActor>),
    Socket(String, PathBuf),
}

/// The wasm and socket actors this node serves; without an engine, the socket ones.
pub(super) async fn actors(
    config: &NodeConfig,
    engine: Option<&WasmEngine>,
) -> Result<Vec<LoadedActor>, NodeError> {
    let wasm = match engine {
        Some(engine) => wasm_actors(config, engine).await?,
        None => {
            check_socket_only(config)?;
            Vec::new()
        }
    };
    // Socket actors are named one by one, so each is served; `--serve` picks among
    // the wasm actors available.
    for (name, _) in &config.serve.sockets {
        if wasm.iter().any(|(wasm_name, _)| wasm_name == name) {
            return Err(NodeError::Duplicate(name.clone()));
        }
    }
    Ok(wasm
        .into_iter()
        .map(|(name, actor)| LoadedActor::Wasm(name, Box::new(actor)))
        .chain(
            config
                .serve
                .sockets
                .iter()
                .map(|(name, path)| LoadedActor::Socket(name.clone(), path.clone())),
        )
        .collect())
}

/// Without an engine every actor named must be a socket actor.
fn check_socket_only(config: &NodeConfig) -> Result<(), NodeError> {
    let serve = &config.serve;
    match serve
        .only
        .iter()
        .flatten()
        .find(|name| !serve.is_socket(name))
    {
        Some(name) => Err(NodeError::NoEngine(name.clone())),
        None => Ok(()),
    }
}

/// Reads, compiles (or loads from cache) the wasm actors this node serves.
async fn wasm_actors(
    config: &NodeConfig,
    engine: &WasmEngine,
) -> Result<Vec<(String, WasmActor)>, NodeError> {
    let serve = &config.serve;
    let mut sources = match &serve.actors_dir {
        Some(dir) => read_actors_dir(dir).await?,
        None => crate::bundled::BUNDLED_ACTORS
            .iter()
            .map(|(name, bytes)| (name.to_string(), Arc::<[u8]>::from(*bytes)))
            .collect(),
    };
    let available = |sources: &[(String, Arc<[u8]>)], name: &str| {
        serve.is_socket(name) || sources.iter().any(|(source, _)| source == name)
    };
    if let Some(only) = &serve.only {
        if let Some(unknown) = only.iter().find(|name| !available(&sources, name)) {
            return Err(NodeError::UnknownServe(unknown.clone()));
        }
        sources.retain(|(name, _)| only.contains(name));
    }
    if let Some(unknown) = config
        .actors
        .per_actor
        .keys()
        .find(|name| !available(&sources, name))
    {
        return Err(NodeError::UnknownOverride(unknown.clone()));
    }
    let loads = sources.into_iter().map(|(name, bytes)| {
        let engine = engine.clone();
        let limits = config.actors.limits_for(&name);
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
