//! Compiled components on disk, so a restart does not recompile.
//!
//! An entry is named by the sha256 digest of the component bytes and a hash of the
//! engine's compatibility key (wasmtime version, target, compiler settings), so an
//! artifact is only ever loaded by an engine that can run it. Writes go to a temporary
//! file and are renamed into place, so a crash never leaves half an artifact; an
//! entry that fails to load anyway is recompiled and replaced. A component is kept
//! only once it linked, so a refused upload leaves nothing behind. All of this is
//! blocking work: callers run it on the blocking pool.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use wasmtime::Engine;
use wasmtime::component::Component;

use super::WasmError;

/// The sha256 of component bytes, hex-encoded.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The engine's compatibility, as sha256 over what wasmtime hashes for it: the same on
/// every node and across Rust releases (a shared store files artifacts under it), where
/// the standard library's hasher promises neither.
fn engine_key(engine: &Engine) -> String {
    let mut hasher = DigestHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..16])
}

/// A `Hasher` that feeds sha256.
struct DigestHasher(Sha256);

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
    }
}

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Compiled now.
    Compiled,
    /// Deserialised from the on-disk cache.
    Cache,
    /// Deserialised from an artifact another node shared.
    Shared,
}

/// The on-disk cache of compiled components (or none).
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

impl CompileCache {
    /// A cache for components compiled by `engine`, in `dir` (none: no caching).
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        CompileCache {
            dir,
            engine_key: engine_key(engine),
        }
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{digest}-{}.cwasm", self.engine_key)))
    }

    /// The engine compatibility key artifacts are filed under.
    pub fn engine_key(&self) -> &str {
        &self.engine_key
    }

    /// Whether the on-disk cache holds a compiled form of `digest`.
    pub fn has(&self, digest: &str) -> bool {
        self.path(digest).is_some_and(|path| path.exists())
    }

    /// The compiled form of `digest` from the on-disk cache, if it is there and loads.
    /// Blocking.
    pub fn cached(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest).filter(|path| path.exists())?;
        // SAFETY: the file was written by `Component::serialize` of an engine with the
        // same compatibility key, into a directory only this node writes; wasmtime
        // checks the header and refuses an incompatible artifact.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cached component unusable; recompiling");
                None
            }
        }
    }

    /// Loads a shared artifact. Blocking.
    pub fn load_shared(&self, engine: &Engine, artifact: &[u8]) -> Result<Component, WasmError> {
        // SAFETY: the artifact was produced by `Component::serialize` of an engine with
        // the same compatibility key and kept in the pool's store (see `artifacts` on
        // trust); wasmtime checks its header and refuses an incompatible one.
        unsafe { Component::deserialize(engine, artifact) }
            .map_err(|error| WasmError::Compile(cause_of(error)))
    }

    /// Keeps the compiled form of `digest` (serialised, or as `artifact` already) in
    /// the on-disk cache; a failure is logged, never fatal. Blocking.
    pub fn keep(&self, digest: &str, component: &Component, artifact: Option<&[u8]>) {
        let Some(path) = self.path(digest) else {
            return;
        };
        let kept = match artifact {
            Some(artifact) => {
                crate::files::write_atomically(&path, artifact).map_err(|error| error.to_string())
            }
            None => store(&path, component),
        };
        if let Err(error) = kept {
            tracing::warn!(path = %path.display(), %error, "could not cache a compiled component");
        }
    }
}

/// A wasmtime error as the cause a [`WasmError`] keeps.
pub(super) fn cause_of(error: wasmtime::Error) -> crate::error_chain::Cause {
    let boxed: Box<dyn std::error::Error + Send + Sync> = error.into();
    std::sync::Arc::from(boxed)
}

fn store(path: &std::path::Path, component: &Component) -> Result<(), String> {
    let serialized = component
        .serialize()
        .map_err(|error| format!("{error:#}"))?;
    crate::files::write_atomically(path, &serialized).map_err(|error| error.to_string())
}
