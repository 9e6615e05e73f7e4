//! The node's one wasmtime `Engine` and the linker all actors share.
//!
//! Settings and why:
//! - component model with async calls, so a guest waiting on a host call never blocks
//!   a tokio worker;
//! - epoch interruption, ticked by one background thread: at every tick a running
//!   guest yields to the tokio runtime, and past its deadline it is stopped;
//! - the pooling allocator (on by default): instance memories and tables come from
//!   pre-reserved slots, which makes a fresh instance per message cheap. A semaphore
//!   of the pool's size bounds live instances, so the pool can never run dry.

use super::WasmError;
use super::actor::WasmActor;
use super::artifacts::Artifacts;
use super::bindings::{Actor, ActorPre};
use super::cache::{self, CompileCache, Source};
use super::host::HostState;
use crate::runtime::ActorLimits;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How the engine is set up.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Use the pooling instance allocator.
    pub pooling: bool,
    /// Instances alive at once, across all actors (the pool's size).
    pub max_instances: u32,
    /// How often running guests are interrupted to yield and check their deadline.
    pub epoch_tick: Duration,
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            pooling: true,
            max_instances: 256,
            epoch_tick: Duration::from_millis(10),
            cache_dir: None,
        }
    }
}

/// What loading one component did.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub digest: String,
    pub source: Source,
    pub elapsed: Duration,
}

/// The engine, linker and instance budget shared by all wasm actors.
#[derive(Clone)]
pub struct WasmEngine {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    instances: Arc<Semaphore>,
    cache: CompileCache,
    epoch_tick: Duration,
    artifacts: Option<Arc<dyn Artifacts>>,
}

impl WasmEngine {
    pub fn new(options: &EngineOptions) -> Result<Self, WasmError> {
        let engine_error = |error: wasmtime::Error| WasmError::Engine(format!("{error:#}"));
        let mut config = Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        if options.pooling {
            let slots = options.max_instances.max(1);
            let mut pool = PoolingAllocationConfig::new();
            pool.total_component_instances(slots)
                .total_core_instances(slots.saturating_mul(16))
                .total_memories(slots.saturating_mul(4))
                .total_tables(slots.saturating_mul(16))
                .total_stacks(slots)
                .max_core_instances_per_component(32)
                .max_memories_per_component(8)
                .max_tables_per_component(32)
                // Reset only the pages a guest dirtied (Linux 6.7+ pagemap scan) and keep
                // them mapped, instead of zeroing or unmapping whole slots per message.
                .pagemap_scan(Enabled::Auto)
                .linear_memory_keep_resident(4 << 20)
                .table_keep_resident(1 << 16);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config).map_err(engine_error)?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
        Actor::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(engine_error)?;
        spawn_epoch_ticker(&engine, options.epoch_tick);
        let cache = CompileCache::new(&engine, options.cache_dir.clone());
        Ok(WasmEngine {
            engine,
            linker: Arc::new(linker),
            instances: Arc::new(Semaphore::new(options.max_instances.max(1) as usize)),
            cache,
            epoch_tick: options.epoch_tick,
            artifacts: None,
        })
    }

    /// Shares compiled components through `artifacts` (a pool's store).
    pub fn with_artifacts(mut self, artifacts: Arc<dyn Artifacts>) -> Self {
        self.artifacts = Some(artifacts);
        self
    }

    /// Checks, compiles (or loads from cache) and links a component as actor `name`.
    /// The compile runs on the blocking pool.
    pub async fn load(
        &self,
        name: &str,
        bytes: Arc<[u8]>,
        limits: ActorLimits,
    ) -> Result<(WasmActor, LoadReport), WasmError> {
        let digest = digest_off_runtime(bytes.clone()).await?;
        self.load_digested(name, bytes, digest, limits).await
    }

    /// [`WasmEngine::load`] for bytes whose sha256 `digest` the caller has already.
    pub async fn load_digested(
        &self,
        name: &str,
        bytes: Arc<[u8]>,
        digest: String,
        limits: ActorLimits,
    ) -> Result<(WasmActor, LoadReport), WasmError> {
        check_component_header(&bytes)?;
        let started = Instant::now();
        let failed = |error: tokio::task::JoinError| {
            WasmError::Compile(format!("the compile task failed: {error}"))
        };
        let shared = match &self.artifacts {
            Some(artifacts) if !self.cache.has(&digest) => {
                artifacts
                    .fetch(digest.clone(), self.cache.engine_key().to_owned())
                    .await
            }
            _ => None,
        };
        let this = self.clone();
        let key = digest.clone();
        let (component, source) = tokio::task::spawn_blocking(move || {
            if let Some(artifact) = shared {
                match this.cache.load_shared(&this.engine, &key, &artifact) {
                    Ok(component) => return Ok((component, Source::Shared)),
                    Err(error) => {
                        tracing::warn!(digest = %key, %error, "a shared artifact did not load; compiling")
                    }
                }
            }
            this.cache.load_or_compile(&this.engine, &key, &bytes)
        })
        .await
        .map_err(failed)??;
        if let Some(artifacts) = &self.artifacts
            && source != Source::Shared
            && (source == Source::Compiled
                || !artifacts
                    .has(digest.clone(), self.cache.engine_key().to_owned())
                    .await)
        {
            // Compiled here, or found in this node's cache but not yet in the pool's.
            let compiled = component.clone();
            match tokio::task::spawn_blocking(move || compiled.serialize()).await {
                Ok(Ok(artifact)) => {
                    artifacts
                        .share(digest.clone(), self.cache.engine_key().to_owned(), artifact)
                        .await
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "could not serialise a compiled component")
                }
                Err(error) => tracing::warn!(%error, "could not serialise a compiled component"),
            }
        }
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|error| WasmError::WrongWorld(format!("{error:#}")))?;
        let pre = ActorPre::new(instance_pre)
            .map_err(|error| WasmError::WrongWorld(format!("{error:#}")))?;
        let m = crate::metrics::metrics();
        m.compile_duration.observe(started.elapsed().as_secs_f64());
        let result = match source {
            Source::Cache => "hit",
            Source::Shared => "shared",
            Source::Compiled => "miss",
        };
        m.compile_cache.with_label_values(&[result]).inc();
        let report = LoadReport {
            digest: digest.clone(),
            source,
            elapsed: started.elapsed(),
        };
        let actor = WasmActor::new(
            name,
            digest,
            pre,
            limits,
            self.instances.clone(),
            self.epoch_tick,
        );
        Ok((actor, report))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// The sha256 digest of component bytes, computed on the blocking pool (an upload may
/// be tens of megabytes).
pub async fn digest_off_runtime(bytes: Arc<[u8]>) -> Result<String, WasmError> {
    tokio::task::spawn_blocking(move || cache::digest(&bytes))
        .await
        .map_err(|error| WasmError::Compile(format!("the digest task failed: {error}")))
}

/// Tells a component from a core module or from bytes that are not wasm at all.
fn check_component_header(bytes: &[u8]) -> Result<(), WasmError> {
    if bytes.is_empty() {
        return Err(WasmError::Empty);
    }
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(WasmError::NotWasm);
    }
    match bytes[4..8] {
        [0x01, 0x00, 0x00, 0x00] => Err(WasmError::CoreModule),
        [_, _, 0x01, 0x00] => Ok(()),
        _ => Err(WasmError::NotWasm),
    }
}

/// Advances the engine's epoch every `tick` for as long as the engine lives.
fn spawn_epoch_ticker(engine: &Engine, tick: Duration) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("wasya-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(tick);
            }
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "could not start the epoch ticker: guests will not be interrupted");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_components_and_modules() {
        assert!(matches!(check_component_header(b""), Err(WasmError::Empty)));
        assert!(matches!(
            check_component_header(b"garbage!"),
            Err(WasmError::NotWasm)
        ));
        assert!(matches!(
            check_component_header(b"\0asm\x01\0\0\0"),
            Err(WasmError::CoreModule)
        ));
        assert!(check_component_header(b"\0asm\x0d\0\x01\0").is_ok());
    }
}
