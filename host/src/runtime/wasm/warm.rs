//! Warm instances: an actor that opts in keeps its instances between messages.
//!
//! A fresh instance per message is the safe default, and cheap for a small guest. A
//! CPython or StarlingMonkey guest is tens of megabytes of memory that a fresh
//! instance must map and touch again on every call; a runtime process (Asya's Python
//! runtime) instead keeps its interpreter, and the state a handler builds, between
//! messages. Reusing instances gives a wasm actor the same semantics and speed: a call
//! takes an idle instance (or makes one), and gives it back when it returned, a result
//! or an actor error alike. A call that trapped, ran past its deadline or hit its
//! memory limit leaves a guest in an unknown state: its instance is dropped.
//!
//! Instances come from the engine's budget ([`Budget`]): every live instance holds a
//! slot of the pooling allocator and as many of its memory slots as the component
//! has memories, and at most half of the slots may sit idle in warm pools, so actors
//! that reuse instances can never starve those that do not.

use super::bindings::Actor;
use super::host::HostState;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::Store;

/// Live instances per core from which instantiations take turns.
const TURNS_FROM: usize = 8;

/// The engine's instances, shared by its actors.
#[derive(Clone)]
pub struct Budget {
    /// One permit per instance alive (the pooling allocator's size).
    live: Arc<Semaphore>,
    /// One permit per linear memory alive (the pool's memory slots).
    memories: Arc<Semaphore>,
    memory_slots: u32,
    /// One permit per idle instance kept warm.
    pub warm: Arc<Semaphore>,
    /// One permit per instantiation running now, one per core, once many run.
    starting: Arc<Semaphore>,
    cores: usize,
    instances: usize,
}

/// What one live instance holds of the budget.
pub struct Slot {
    _live: OwnedSemaphorePermit,
    _memories: Option<OwnedSemaphorePermit>,
}

impl Budget {
    /// `instances` alive at once with `memories` linear memories among them, half of
    /// the instances at most kept idle.
    pub fn new(instances: usize, memories: u32) -> Self {
        let instances = instances.max(1);
        let memory_slots = memories.max(1);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Budget {
            cores,
            instances,
            live: Arc::new(Semaphore::new(instances)),
            memories: Arc::new(Semaphore::new(memory_slots as usize)),
            memory_slots,
            warm: Arc::new(Semaphore::new(instances.div_ceil(2))),
            starting: Arc::new(Semaphore::new(cores)),
        }
    }

    /// Waits for a turn to instantiate, where many instances are alive. Instantiation
    /// is CPU work that never waits: a burst of thousands of calls starting at once
    /// would fill the run queues and delay every timer and socket of the node behind
    /// them, so then only one per core instantiates while the rest wait parked. With
    /// few calls running (a pipeline at its usual concurrency) there is no turn to take.
    pub async fn start_turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let alive = self.instances - self.live.available_permits();
        if alive <= TURNS_FROM * self.cores {
            return None;
        }
        self.starting.acquire().await.ok()
    }

    /// Waits for room for one instance with `memories` linear memories; `None` once
    /// the engine is closed.
    pub async fn slot(&self, memories: u32) -> Option<Slot> {
        let live = self.live.clone().acquire_owned().await.ok()?;
        let memories = match memories.min(self.memory_slots) {
            0 => None,
            count => Some(self.memories.clone().acquire_many_owned(count).await.ok()?),
        };
        Some(Slot {
            _live: live,
            _memories: memories,
        })
    }
}

/// An instance and its store, with the slot it holds.
pub struct Warm {
    /// The wasmtime store the instance lives in, with its host state.
    pub store: Store<HostState>,
    /// The instantiated actor, ready to call.
    pub actor: Actor,
    _live: Slot,
    _kept: Option<OwnedSemaphorePermit>,
}

impl Warm {
    /// Wraps a fresh instance, holding `live` for as long as it lives.
    pub fn new(store: Store<HostState>, actor: Actor, live: Slot) -> Self {
        Warm {
            store,
            actor,
            _live: live,
            _kept: None,
        }
    }
}

/// The idle instances of one actor (at most its concurrency: no more run at once).
#[derive(Default)]
pub struct WarmPool {
    idle: Mutex<Vec<Warm>>,
}

impl WarmPool {
    /// An idle instance, if there is one.
    pub fn take(&self) -> Option<Warm> {
        let mut warm = self.lock().pop()?;
        warm._kept = None;
        Some(warm)
    }

    /// Keeps an instance for the next call, where the budget allows; else drops it.
    pub fn keep(&self, mut warm: Warm, budget: &Budget) {
        let Ok(kept) = budget.warm.clone().try_acquire_owned() else {
            return;
        };
        warm._kept = Some(kept);
        self.lock().push(warm);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Warm>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
