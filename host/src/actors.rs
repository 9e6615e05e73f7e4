//! The actors a node serves: the runtime currently behind each name, and its counts.
//!
//! Each actor sits in an [`ActorSlot`] whose runtime can be replaced while messages
//! flow: a call takes the `Arc` of the runtime current at its start and finishes on
//! it, new calls see the new one. That is what makes a version swap lose nothing.
//! The slot also counts what the router finished for it, so that views of the actor
//! read the node's own numbers rather than its metrics.

use crate::runtime::ActorRuntime;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// One served actor.
pub struct ActorSlot {
    name: String,
    concurrency: usize,
    runtime: RwLock<Arc<dyn ActorRuntime>>,
    processed: AtomicU64,
    failed: AtomicU64,
}

impl ActorSlot {
    pub fn new(
        name: impl Into<String>,
        runtime: Arc<dyn ActorRuntime>,
        concurrency: usize,
    ) -> Self {
        ActorSlot {
            name: name.into(),
            concurrency: concurrency.max(1),
            runtime: RwLock::new(runtime),
            processed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many messages of this actor run at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The runtime new calls go to.
    pub fn current(&self) -> Arc<dyn ActorRuntime> {
        self.runtime
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Puts a new runtime behind the name; calls in flight finish on the old one.
    /// Returns the old one.
    pub fn replace(&self, runtime: Arc<dyn ActorRuntime>) -> Arc<dyn ActorRuntime> {
        std::mem::replace(
            &mut *self
                .runtime
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
            runtime,
        )
    }

    /// Counts one message finished; `failed` when it went to error-end.
    pub fn count(&self, failed: bool) {
        self.processed.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Messages finished since this slot was made, and of those the failed.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.processed.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Carries another slot's counts over (a new consumer for the same actor).
    pub fn carry_counts(&self, from: &ActorSlot) {
        let (processed, failed) = from.counts();
        self.processed.fetch_add(processed, Ordering::Relaxed);
        self.failed.fetch_add(failed, Ordering::Relaxed);
    }
}
