//! The actors a node serves: the runtime currently behind each name, and its counts.
//!
//! Each actor sits in an [`ActorSlot`] whose runtime can be replaced while messages
//! flow: a call takes the `Arc` of the runtime current at its start and finishes on
//! it, new calls see the new one. That is what makes a version swap lose nothing.
//! The slot also counts what the router finished for it, how long that took, and the
//! calls running now, so that views of the actor read the node's own numbers rather
//! than its metrics.

use crate::runtime::ActorRuntime;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// One served actor.
pub struct ActorSlot {
    name: String,
    concurrency: usize,
    runtime: RwLock<Arc<dyn ActorRuntime>>,
    processed: AtomicU64,
    failed: AtomicU64,
    /// Microseconds spent on the messages counted in `processed`, summed.
    busy_micros: AtomicU64,
    /// Calls running now.
    calling: AtomicU64,
}

/// One call of an actor, counted in [`ActorSlot::calling`] for as long as it lives.
pub struct Calling<'a>(&'a AtomicU64);

impl Drop for Calling<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ActorSlot {
    /// A slot for actor `name`, running `runtime` with `concurrency` calls at once.
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
            busy_micros: AtomicU64::new(0),
            calling: AtomicU64::new(0),
        }
    }

    /// The actor's name.
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

    /// Counts one message finished after `took`; `failed` when it went to error-end.
    pub fn count(&self, failed: bool, took: Duration) {
        self.processed.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.busy_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Counts a call as running until the guard is dropped.
    pub fn call_started(&self) -> Calling<'_> {
        self.calling.fetch_add(1, Ordering::Relaxed);
        Calling(&self.calling)
    }

    /// Calls running now (at most [`ActorSlot::concurrency`]).
    pub fn calling(&self) -> u64 {
        self.calling.load(Ordering::Relaxed)
    }

    /// Time spent on the messages counted in [`ActorSlot::counts`], summed.
    pub fn busy(&self) -> Duration {
        Duration::from_micros(self.busy_micros.load(Ordering::Relaxed))
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
        self.busy_micros
            .fetch_add(from.busy_micros.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Envelope;
    use crate::runtime::Unavailable;
    use futures::future::BoxFuture;

    struct Idle;

    impl ActorRuntime for Idle {
        fn call<'a>(
            &'a self,
            _: &'a Envelope,
        ) -> BoxFuture<'a, Result<crate::route_rules::Outcome, Unavailable>> {
            Box::pin(async { Err(Unavailable("idle".into())) })
        }
    }

    #[test]
    fn counts_calls_while_they_run_and_time_when_they_end() {
        let slot = ActorSlot::new("a", Arc::new(Idle), 2);
        let first = slot.call_started();
        let second = slot.call_started();
        assert_eq!(slot.calling(), 2);
        drop(first);
        assert_eq!(slot.calling(), 1);
        drop(second);
        assert_eq!(slot.calling(), 0);

        slot.count(false, Duration::from_millis(3));
        slot.count(true, Duration::from_millis(5));
        assert_eq!(slot.counts(), (2, 1));
        assert_eq!(slot.busy(), Duration::from_millis(8));

        let next = ActorSlot::new("a", Arc::new(Idle), 2);
        next.carry_counts(&slot);
        assert_eq!(next.counts(), (2, 1));
        assert_eq!(next.busy(), Duration::from_millis(8));
    }
}
