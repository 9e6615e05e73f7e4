//! The node's wasmtime engines and the linkers actors share.
//!
//! Two engines, one per world: a component of `wasya:actor@0.1.0` runs on an engine
//! without wasmtime's concurrency support (its calls take wasmtime's plain async path,
//! 3 µs a call cheaper than the concurrent one), a component of the async world
//! (`wasya:actor@0.2.0`) on one with the component model's async ABI and WASI 0.3. The
//! world is read from a component's imports before it compiles. The async engine's
//! pool has fewer memory slots: an async actor keeps a few instances, and two pools of
//! the full size would reserve all of x86-64's address space.
//!
//! Settings and why:
//! - component model with async calls, so a guest waiting on a host call never blocks
//!   a tokio worker;
//! - epoch interruption, ticked by one background thread: at every tick a running
//!   guest yields to the tokio runtime, and past its deadline it is stopped;
//! - the pooling allocator (on by default): instance memories and tables come from
//!   pre-reserved slots, which makes a fresh instance per message cheap. Semaphores
//!   of the pool's sizes bound live instances and their memories, so the pool can
//!   never run dry. Every memory slot reserves 4 GiB of address space (plus guard),
//!   so memory slots are capped at [`MAX_MEMORY_SLOTS`] whatever the instance count:
//!   ten thousand instances of a one-memory guest waiting on the network fit.

use super::WasmError;
use super::actor::Linked;
use super::actor::{EngineShared, WasmActor};
use super::artifacts::Artifacts;
use super::bindings::{Actor, ActorPre};
use super::bindings_async::{Actor as AsyncActor, ActorPre as AsyncActorPre};
use super::cache::{self, CompileCache, Source, cause_of};
use super::host::HostState;
use super::imports::imports_only;
use super::warm::Budget;
use super::world::World;
use crate::outbound::{ClientSettings, OutboundClient};
use crate::runtime::ActorLimits;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Linear memory slots of the pool at most: 16 Ki reservations of about 4 GiB take
/// half of x86-64's 128 TiB of user address space.
pub const MAX_MEMORY_SLOTS: u32 = 16 * 1024;

/// Memories one component instance may have (the pool's per-component limit).
const MAX_MEMORIES_PER_COMPONENT: u32 = 8;

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
    /// Pooling: elements one table may hold.
    pub table_elements: usize,
    /// Pooling: bytes of runtime state one core instance may take.
    pub instance_size: usize,
    /// What the outbound HTTP client trusts.
    pub outbound: ClientSettings,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            pooling: true,
            max_instances: crate::defaults::MAX_INSTANCES,
            epoch_tick: crate::defaults::EPOCH_TICK,
            cache_dir: None,
            table_elements: crate::defaults::POOL_TABLE_ELEMENTS,
            instance_size: crate::defaults::POOL_INSTANCE_SIZE,
            outbound: ClientSettings::default(),
        }
    }
}

/// What loading one component did.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// The hex-encoded sha256 of the component's bytes.
    pub digest: String,
    /// Whether the component was compiled now or deserialised from a cache.
    pub source: Source,
    /// How long loading took: fetching, compiling or deserialising, and linking.
    pub elapsed: Duration,
}

/// One engine with its linker, compile cache and instance budget.
#[derive(Clone)]
struct EngineParts {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    budget: Budget,
    cache: CompileCache,
}

/// The engines, linkers and instance budgets shared by all wasm actors.
#[derive(Clone)]
pub struct WasmEngine {
    /// For `wasya:actor@0.1.0` components.
    sync: EngineParts,
    /// For `wasya:actor@0.2.0` components.
    concurrent: EngineParts,
    epoch_tick: Duration,
    artifacts: Option<Arc<dyn Artifacts>>,
    outbound: OutboundClient,
}

/// Memory slots of the async engine's pool at most (an eighth of the address space).
const ASYNC_MEMORY_SLOTS: u32 = MAX_MEMORY_SLOTS / 4;

impl EngineParts {
    /// The engine for components of `world`, its linker, cache and budget.
    fn new(options: &EngineOptions, world: World) -> Result<Self, WasmError> {
        let engine_error = |error: wasmtime::Error| WasmError::Engine(cause_of(error));
        let concurrent = world == World::Async;
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .wasm_component_model_async(concurrent)
            .concurrency_support(concurrent)
            .epoch_interruption(true);
        let slots = options.max_instances.max(1);
        let most_memories = if concurrent {
            ASYNC_MEMORY_SLOTS
        } else {
            MAX_MEMORY_SLOTS
        };
        let memory_slots = slots.saturating_mul(4).min(most_memories);
        if options.pooling {
            let mut pool = PoolingAllocationConfig::new();
            pool.total_component_instances(slots)
                .total_core_instances(slots.saturating_mul(16))
                .total_memories(memory_slots)
                .total_tables(slots.saturating_mul(16))
                .total_stacks(slots)
                .max_core_instances_per_component(32)
                .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
                .max_tables_per_component(32)
                .table_elements(options.table_elements)
                .max_core_instance_size(options.instance_size)
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
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(engine_error)?;
        if concurrent {
            // WASI 0.3 beside 0.2 (a Python component imports both).
            wasmtime_wasi::p3::add_to_linker(&mut linker).map_err(engine_error)?;
            wasmtime_wasi_http::p3::add_to_linker(&mut linker).map_err(engine_error)?;
            AsyncActor::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
                .map_err(engine_error)?;
        } else {
            Actor::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
                .map_err(engine_error)?;
        }
        spawn_epoch_ticker(&engine, options.epoch_tick);
        let cache = CompileCache::new(&engine, options.cache_dir.clone());
        Ok(EngineParts {
            budget: Budget::new(
                options.max_instances as usize,
                if options.pooling {
                    memory_slots
                } else {
                    u32::MAX >> 3
                },
            ),
            engine,
            linker: Arc::new(linker),
            cache,
        })
    }

    /// The compiled form of a component: from this node's cache, from the pool's
    /// artifact, or compiled now (after its imports were checked). Blocking.
    fn compiled(
        &self,
        name: &str,
        digest: &str,
        bytes: &[u8],
        shared: Option<Vec<u8>>,
    ) -> Result<(Component, Source, Option<Vec<u8>>), WasmError> {
        if let Some(component) = self.cache.cached(&self.engine, digest) {
            return Ok((component, Source::Cache, None));
        }
        if let Some(artifact) = shared {
            match self.cache.load_shared(&self.engine, &artifact) {
                Ok(component) => return Ok((component, Source::Shared, Some(artifact))),
                Err(error) => {
                    tracing::warn!(digest, error = %crate::error_chain::chain(&error), "a shared artifact did not load; compiling")
                }
            }
        }
        self.check_imports(bytes)?;
        tracing::info!(actor = name, digest, bytes = bytes.len(), "compiling");
        let component = Component::new(&self.engine, bytes)
            .map_err(|error| WasmError::Compile(cause_of(error)))?;
        Ok((component, Source::Compiled, None))
    }

    /// Links the component's imports alone (see [`super::imports`]). Blocking.
    fn check_imports(&self, bytes: &[u8]) -> Result<(), WasmError> {
        let Some(stub) = imports_only(bytes) else {
            return Ok(());
        };
        // A stub that does not compile says nothing: the full compile will tell.
        let Ok(stub) = Component::new(&self.engine, &stub) else {
            return Ok(());
        };
        self.linker
            .instantiate_pre(&stub)
            .map(drop)
            .map_err(|error| WasmError::Imports(cause_of(error)))
    }
}

impl WasmEngine {
    /// Builds the engines and linkers, with the pooling allocator where `options` ask.
    pub fn new(options: &EngineOptions) -> Result<Self, WasmError> {
        Ok(WasmEngine {
            sync: EngineParts::new(options, World::Sync)?,
            concurrent: EngineParts::new(options, World::Async)?,
            epoch_tick: options.epoch_tick,
            artifacts: None,
            outbound: OutboundClient::new(options.outbound.clone()),
        })
    }

    /// The engine for components of `world`.
    fn parts(&self, world: World) -> &EngineParts {
        match world {
            World::Sync => &self.sync,
            World::Async => &self.concurrent,
        }
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
    ///
    /// A component that is not in this node's cache or the pool's has its imports
    /// checked before it compiles, and is kept in the caches only once it linked: a
    /// refused upload costs no compile and leaves nothing behind.
    pub async fn load_digested(
        &self,
        name: &str,
        bytes: Arc<[u8]>,
        digest: String,
        limits: ActorLimits,
    ) -> Result<(WasmActor, LoadReport), WasmError> {
        check_component_header(&bytes)?;
        let world = World::of_bytes(&bytes);
        let parts = self.parts(world);
        let started = Instant::now();
        let shared = match &self.artifacts {
            Some(artifacts) if !parts.cache.has(&digest) => {
                artifacts
                    .fetch(digest.clone(), parts.cache.engine_key().to_owned())
                    .await
            }
            _ => None,
        };
        let this = parts.clone();
        let (key, actor) = (digest.clone(), name.to_owned());
        let (compiled, declared) = tokio::task::spawn_blocking(move || {
            let compiled = this.compiled(&actor, &key, &bytes, shared);
            (compiled, super::declared::declared_mode(&bytes))
        })
        .await
        .map_err(|error| WasmError::Task("compile", error))?;
        let (component, source, shared) = compiled?;
        let instance_pre = parts
            .linker
            .instantiate_pre(&component)
            .map_err(|error| WasmError::WrongWorld(cause_of(error)))?;
        let wrong_world = |error| WasmError::WrongWorld(cause_of(error));
        let linked = match world {
            World::Sync => Linked::Sync(ActorPre::new(instance_pre).map_err(wrong_world)?),
            World::Async => {
                // Checks the exports fit the world; calls go through the instance itself.
                AsyncActorPre::new(instance_pre.clone()).map_err(wrong_world)?;
                Linked::Async(instance_pre)
            }
        };
        self.keep(parts, &digest, &component, source, shared).await;
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
            linked,
            limits,
            EngineShared {
                budget: parts.budget.clone(),
                epoch_tick: self.epoch_tick,
                outbound: self.outbound.clone(),
            },
            component
                .resources_required()
                .map_or(MAX_MEMORIES_PER_COMPONENT, |needs| needs.num_memories),
            declared,
        );
        Ok((actor, report))
    }

    /// Keeps a component that linked: in this node's cache, and in the pool's when it
    /// was compiled here or found only in this node's cache.
    async fn keep(
        &self,
        parts: &EngineParts,
        digest: &str,
        component: &Component,
        source: Source,
        shared: Option<Vec<u8>>,
    ) {
        if source != Source::Cache {
            let (cache, key, kept) = (parts.cache.clone(), digest.to_owned(), component.clone());
            let cached =
                tokio::task::spawn_blocking(move || cache.keep(&key, &kept, shared.as_deref()))
                    .await;
            if let Err(error) = cached {
                tracing::warn!(%error, "could not cache a compiled component");
            }
        }
        let Some(artifacts) = &self.artifacts else {
            return;
        };
        let engine_key = parts.cache.engine_key().to_owned();
        if source == Source::Shared
            || (source == Source::Cache
                && artifacts.has(digest.to_owned(), engine_key.clone()).await)
        {
            return;
        }
        let compiled = component.clone();
        match tokio::task::spawn_blocking(move || compiled.serialize()).await {
            Ok(Ok(artifact)) => {
                artifacts
                    .share(digest.to_owned(), engine_key, artifact)
                    .await
            }
            Ok(Err(error)) => tracing::warn!(%error, "could not serialise a compiled component"),
            Err(error) => tracing::warn!(%error, "could not serialise a compiled component"),
        }
    }

    /// The node's outbound HTTP client.
    pub fn outbound(&self) -> &OutboundClient {
        &self.outbound
    }

    /// The wasmtime engine `wasya:actor@0.1.0` components are compiled for.
    pub fn engine(&self) -> &Engine {
        &self.sync.engine
    }
}

/// The sha256 digest of component bytes, computed on the blocking pool (an upload may
/// be tens of megabytes).
pub async fn digest_off_runtime(bytes: Arc<[u8]>) -> Result<String, WasmError> {
    tokio::task::spawn_blocking(move || cache::digest(&bytes))
        .await
        .map_err(|error| WasmError::Task("digest", error))
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
