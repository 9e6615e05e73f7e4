//! What a node serves now, and who may change it.
//!
//! Readers (readiness probes, listings, the queue-depth reporter) take a snapshot: an
//! `Arc` of the whole map, cloned under a lock held for no longer than that clone. A
//! change never holds that lock while it hashes, compiles, writes the store or talks
//! to the broker: it first *reserves* the actor's name (one async mutex per name, so
//! changes to one actor run one after another while other actors change in parallel),
//! does the slow work, then swaps the new entry in. This is what keeps `/readyz`
//! answering while a six-second compile runs.

use super::options::Effective;
use crate::actors::ActorSlot;
use crate::records::ActorRecord;
use crate::runtime::wasm::WasmActor;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, Weak};
use tokio_util::sync::CancellationToken;

/// What runs behind a name.
#[derive(Clone)]
pub(super) enum Backend {
    /// A component, loaded with the actor's limits.
    Wasm(Arc<WasmActor>),
    /// An external runtime at this socket.
    Socket(PathBuf),
}

/// One served actor.
pub(super) struct Served {
    pub slot: Arc<ActorSlot>,
    /// Stops the actor's consumer.
    pub stop: CancellationToken,
    /// Retires the runtime behind the slot now (a child of `stop`): calls waiting for
    /// it give up when it is replaced.
    pub retire: CancellationToken,
    pub record: ActorRecord,
    pub backend: Backend,
    pub effective: Effective,
    /// Served because the store records it (not loaded at start).
    pub recorded: bool,
}

/// The served actors, by name.
pub(super) type Snapshot = Arc<BTreeMap<String, Arc<Served>>>;

/// The map readers snapshot and changes swap.
#[derive(Default)]
pub(super) struct ServedMap {
    current: RwLock<Snapshot>,
}

impl ServedMap {
    /// Every served actor, as of now.
    pub fn snapshot(&self) -> Snapshot {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn get(&self, name: &str) -> Option<Arc<Served>> {
        self.snapshot().get(name).cloned()
    }

    /// Puts `served` in; returns what it replaced.
    pub fn insert(&self, served: Served) -> Option<Arc<Served>> {
        self.change(|map| map.insert(served.record.name.clone(), Arc::new(served)))
    }

    pub fn remove(&self, name: &str) -> Option<Arc<Served>> {
        self.change(|map| map.remove(name))
    }

    /// Copies the map, changes the copy and publishes it: readers holding the old
    /// snapshot keep it whole.
    fn change<R>(&self, edit: impl FnOnce(&mut BTreeMap<String, Arc<Served>>) -> R) -> R {
        let mut current = self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut map = BTreeMap::clone(&current);
        let result = edit(&mut map);
        *current = Arc::new(map);
        result
    }
}

/// One lock per actor name, held by whoever changes that actor.
#[derive(Default)]
pub(super) struct Reservations {
    names: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

/// The right to change one actor, until dropped.
pub(super) type Reservation = tokio::sync::OwnedMutexGuard<()>;

impl Reservations {
    /// Waits until no one else changes `name`, and holds it.
    pub async fn reserve(&self, name: &str) -> Reservation {
        let lock = {
            let mut names = self
                .names
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            names.retain(|_, lock| lock.strong_count() > 0);
            match names.get(name).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    names.insert(name.to_owned(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_name_at_a_time_and_others_alongside() {
        let reservations = Arc::new(Reservations::default());
        let held = reservations.reserve("a").await;
        let same = tokio::spawn({
            let reservations = reservations.clone();
            async move { reservations.reserve("a").await }
        });
        let other = tokio::time::timeout(Duration::from_secs(1), reservations.reserve("b")).await;
        assert!(other.is_ok(), "another name is not held up");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!same.is_finished(), "the same name waits");
        drop(held);
        assert!(
            tokio::time::timeout(Duration::from_secs(1), same)
                .await
                .is_ok()
        );
    }
}
