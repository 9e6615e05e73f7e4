//! Serving a record: turning what the store says an actor is into what runs.
//!
//! [`Deployments::apply`] builds the backend a record names (reusing the compiled
//! component when only options changed) and [`Deployments::install`] puts it behind
//! the actor's name: a swap in the same slot when the concurrency is unchanged, so
//! calls in flight finish on the old runtime and none is lost; otherwise a new
//! consumer, and the old one stops (its unstarted deliveries go back to the queue).
//! [`Deployments::sync`] and [`Deployments::restore`] apply records in bulk, for a
//! pool's announcements and for a restart. Callers hold the actor's reservation.

use super::options::Effective;
use super::served::{Backend, Served};
use super::{DeployError, Deployments};
use crate::actors::ActorSlot;
use crate::records::{ActorKind, ActorOptions, ActorRecord};
use crate::runtime::ActorRuntime;
use crate::runtime::mode::with_mode;
use crate::runtime::socket::SocketActor;
use crate::store::StoreError;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

impl Deployments {
    /// Serves `record` as the store has it: a swap, a new consumer, or nothing when
    /// it is what runs already or this node does not host it. True when it changed
    /// what runs. The caller holds the actor's reservation.
    pub(super) async fn apply(&self, record: ActorRecord) -> Result<bool, DeployError> {
        let name = record.name.clone();
        if !self.settings.hosts(&name) {
            return Ok(false);
        }
        let local = self.served.get(&name);
        if local.as_ref().is_some_and(|served| served.record == record) {
            return Ok(false);
        }
        // A record never replaces a newer one (one read before an upload here).
        if local.as_ref().is_some_and(|served| {
            crate::records::is_older(&record.versions, &served.record.versions)
        }) {
            tracing::debug!(actor = %name, "a record older than the version served; kept the served one");
            return Ok(false);
        }
        let effective = Effective::of(&self.actors, &name, record.kind, &record.options);
        let local_backend = local.as_ref().map(|served| &served.backend);
        let backend = match (record.kind, record.current()) {
            (ActorKind::Wasm, Some(version)) => match local_backend {
                Some(Backend::Wasm(actor)) if actor.digest() == version.digest => {
                    Backend::Wasm(Arc::new(actor.with_limits(effective.limits.clone())))
                }
                _ => {
                    let store = self
                        .store
                        .as_ref()
                        .ok_or_else(|| StoreError::message("no store to read components from"))?;
                    let bytes = store.component(version.digest.clone()).await?;
                    let (actor, report) = self
                        .engine(&name)?
                        .load(&name, bytes, effective.limits.clone())
                        .await?;
                    tracing::info!(actor = %name, version = version.version, source = ?report.source, "serving a recorded version");
                    Backend::Wasm(Arc::new(actor))
                }
            },
            // Options for an actor loaded at start.
            (ActorKind::Wasm, None) => match local_backend {
                Some(Backend::Wasm(actor)) => {
                    Backend::Wasm(Arc::new(actor.with_limits(effective.limits.clone())))
                }
                _ => {
                    tracing::warn!(actor = %name, "recorded options for an actor this node does not serve; skipped");
                    return Ok(false);
                }
            },
            (ActorKind::Socket, _) => match &record.options.socket {
                Some(path) => Backend::Socket(path.clone()),
                None => {
                    tracing::warn!(actor = %name, "a recorded socket actor without a socket; skipped");
                    return Ok(false);
                }
            },
        };
        let recorded = local.as_ref().is_none_or(|served| served.recorded);
        self.install(record, backend, effective, recorded).await?;
        Ok(true)
    }

    /// Puts `backend` behind `record.name`: a swap when the actor is served with the
    /// same concurrency, otherwise a new consumer (the old one stops). The caller
    /// holds the actor's reservation.
    pub(super) async fn install(
        &self,
        record: ActorRecord,
        backend: Backend,
        effective: Effective,
        recorded: bool,
    ) -> Result<(), DeployError> {
        let name = record.name.clone();
        let effective = match &backend {
            Backend::Wasm(actor) => {
                effective.in_world(&self.actors, &name, &record.options, actor.world())
            }
            Backend::Socket(_) => effective,
        };
        let current = self.served.get(&name);
        if let Some(current) = current
            .as_ref()
            .filter(|current| current.effective.concurrency == effective.concurrency)
        {
            let retire = current.stop.child_token();
            let runtime = self.runtime(&name, &backend, &record.options, &effective, &retire);
            current.slot.replace(runtime);
            current.retire.cancel();
            self.served.insert(Served {
                slot: current.slot.clone(),
                stop: current.stop.clone(),
                retire,
                record,
                backend,
                effective,
                recorded,
            });
            return Ok(());
        }
        let stop = self.router.consumer_token();
        let retire = stop.child_token();
        let runtime = self.runtime(&name, &backend, &record.options, &effective, &retire);
        let slot = Arc::new(ActorSlot::new(name.clone(), runtime, effective.concurrency));
        if let Some(current) = &current {
            slot.carry_counts(&current.slot);
        }
        self.router.serve_until(slot.clone(), stop.clone()).await?;
        crate::metrics::metrics()
            .concurrency_limit
            .with_label_values(&[name.as_str()])
            .set(effective.concurrency as i64);
        let replaced = self.served.insert(Served {
            slot,
            stop,
            retire,
            record,
            backend,
            effective,
            recorded,
        });
        if let Some(old) = replaced {
            old.stop.cancel();
        }
        Ok(())
    }

    /// The runtime calls go to; `retire` ends the waits of a socket runtime.
    fn runtime(
        &self,
        name: &str,
        backend: &Backend,
        options: &ActorOptions,
        effective: &Effective,
        retire: &CancellationToken,
    ) -> Arc<dyn ActorRuntime> {
        // The options' mode, else the one a component declares it was built in; none
        // of either: not restricted (the handler returns what it returns).
        let mode = match backend {
            Backend::Wasm(actor) => effective.handler_mode.or(actor.declared_mode()),
            Backend::Socket(_) => effective.handler_mode,
        };
        let runtime: Arc<dyn ActorRuntime> = match backend {
            Backend::Wasm(actor) => actor.clone(),
            Backend::Socket(path) => Arc::new(SocketActor::new(
                name,
                effective.socket(&self.actors, path.clone(), options),
                retire.clone(),
            )),
        };
        with_mode(runtime, mode.unwrap_or_default())
    }

    /// Serves what the store records for `names` (`None`: for every actor), and stops
    /// serving recorded actors the store no longer has. Used when another node of the
    /// pool announced a change.
    ///
    /// Each actor's record is read again once its reservation is held: a record read
    /// before a change this node made (or was making) is never installed over it, and
    /// a record whose current version is older than the one served is refused too.
    pub async fn sync(&self, names: Option<Vec<String>>) -> Result<(), DeployError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let names: Vec<String> = match names {
            Some(names) => names,
            None => {
                let mut names: Vec<String> = store
                    .records()
                    .await?
                    .into_iter()
                    .map(|record| record.name)
                    .collect();
                for (name, served) in self.served.snapshot().iter() {
                    if served.recorded && !names.contains(name) {
                        names.push(name.clone());
                    }
                }
                names
            }
        };
        for name in names {
            let _reservation = self.reservations.reserve(&name).await;
            match store.record(name.clone()).await? {
                Some(record) => {
                    if let Err(error) = self.apply(record).await {
                        tracing::warn!(actor = %name, error = %crate::error_chain::chain(&error), "cannot serve the recorded actor");
                    }
                }
                None => {
                    if self.served.get(&name).is_some_and(|served| served.recorded)
                        && let Some(served) = self.served.remove(&name)
                    {
                        served.stop.cancel();
                        self.router.forget_metrics(&name);
                        tracing::info!(actor = %name, "removed elsewhere in the pool; stopped");
                    }
                }
            }
        }
        Ok(())
    }

    /// Serves every actor the store records (that this node hosts).
    pub async fn restore(&self) -> Result<usize, DeployError> {
        let Some(store) = &self.store else {
            return Ok(0);
        };
        let mut restored = 0;
        let mut broken = Vec::new();
        for record in store.records().await? {
            let name = record.name.clone();
            let _reservation = self.reservations.reserve(&name).await;
            match self.apply(record).await {
                Ok(true) => restored += 1,
                Ok(false) => {}
                // A record that reads but cannot be served (its component gone, say)
                // is reported, and the others are served all the same.
                Err(error) => {
                    let reason = crate::error_chain::chain(&error).to_string();
                    tracing::warn!(actor = %name, "a recorded actor cannot be served, and its files are left as they are: {reason}");
                    broken.push((name, reason));
                }
            }
        }
        broken.extend(store.unreadable());
        *self
            .broken
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = broken;
        Ok(restored)
    }
}
