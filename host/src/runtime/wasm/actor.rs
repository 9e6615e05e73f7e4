//! One wasm actor: a pre-linked component, and a fresh store and instance per call.
//!
//! A fresh instance per message is the isolation guarantee (no state leaks between
//! messages) and, with the pooling allocator and an `InstancePre`, it costs
//! microseconds. The deadline is checked at every epoch tick inside the guest, which
//! stops a busy guest; a `tokio` timeout around the whole call also stops one that
//! waits in a host call.

use super::bindings::ActorPre;
use super::bindings::wasya::actor::types;
use super::host::{HostState, MemoryLimitExceeded, TimedOut};
use super::output::{GuestOutput, outcome_of};
use crate::envelope::Envelope;
use crate::failure::{Failure, Kind};
use crate::metrics::metrics;
use crate::routing::Outcome;
use crate::runtime::{ActorLimits, ActorRuntime, Unavailable};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasmtime::{Store, UpdateDeadline};

/// A loaded wasm actor.
pub struct WasmActor {
    name: Arc<str>,
    digest: String,
    pre: ActorPre<HostState>,
    limits: ActorLimits,
    instances: Arc<Semaphore>,
    epoch_tick: Duration,
}

impl WasmActor {
    pub(super) fn new(
        name: &str,
        digest: String,
        pre: ActorPre<HostState>,
        limits: ActorLimits,
        instances: Arc<Semaphore>,
        epoch_tick: Duration,
    ) -> Self {
        WasmActor {
            name: name.into(),
            digest,
            pre,
            limits,
            instances,
            epoch_tick,
        }
    }

    /// The sha256 digest of the component.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn limits(&self) -> &ActorLimits {
        &self.limits
    }

    /// The same component under other limits (no recompilation, no relinking).
    pub fn with_limits(&self, limits: ActorLimits) -> WasmActor {
        WasmActor {
            name: self.name.clone(),
            digest: self.digest.clone(),
            pre: self.pre.clone(),
            limits,
            instances: self.instances.clone(),
            epoch_tick: self.epoch_tick,
        }
    }

    async fn run(&self, envelope: &Envelope) -> Outcome {
        let Ok(_instance_slot) = self.instances.acquire().await else {
            return Outcome::Failed(Failure::processing(
                Kind::ResourceLimit,
                "the engine is closed",
            ));
        };
        let message = types::Message::from(envelope);
        let mut store = Store::new(
            self.pre.engine(),
            HostState::new(self.name.clone(), envelope.id.clone(), &self.limits),
        );
        store.limiter(|state| &mut state.limiter);
        let timeout = self.limits.timeout;
        let deadline = Instant::now() + timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(TimedOut(timeout).into())
            } else {
                // tokio's own yield defers the task until the I/O driver has been
                // polled, so a busy guest cannot delay network readiness.
                Ok(UpdateDeadline::YieldCustom(
                    1,
                    Box::pin(tokio::task::yield_now()),
                ))
            }
        });
        let instantiation = metrics().instantiation.with_label_values(&[&*self.name]);
        let call = async {
            let started = Instant::now();
            let actor = self.pre.instantiate_async(&mut store).await?;
            instantiation.observe(started.elapsed().as_secs_f64());
            actor.call_handle(&mut store, &message).await
        };
        // The epoch check stops a running guest within a tick of its deadline; this
        // outer bound stops one parked in a host call.
        let result = match tokio::time::timeout(timeout + 2 * self.epoch_tick, call).await {
            Ok(result) => result,
            Err(_) => Err(TimedOut(timeout).into()),
        };
        match result {
            Ok(Ok(outputs)) => outcome_of(outputs.into_iter().map(GuestOutput::from).collect()),
            Ok(Err(error)) => {
                Outcome::Failed(Failure::processing(Kind::Actor(error.kind), error.message))
            }
            Err(error) => {
                let failure = classify(&error);
                let m = metrics();
                let counter = match failure.kind {
                    Kind::Timeout => &m.guest_timeouts,
                    Kind::ResourceLimit => &m.guest_limit_hits,
                    _ => &m.guest_traps,
                };
                counter.with_label_values(&[&*self.name]).inc();
                Outcome::Failed(failure)
            }
        }
    }
}

impl ActorRuntime for WasmActor {
    fn call<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Result<Outcome, Unavailable>> {
        Box::pin(async move { Ok(self.run(envelope).await) })
    }
}

/// Names a failed call: `timeout`, `resource_limit` or `trap`.
fn classify(error: &wasmtime::Error) -> Failure {
    if let Some(timed_out) = error.downcast_ref::<TimedOut>() {
        return Failure::processing(Kind::Timeout, timed_out.to_string());
    }
    if let Some(limit) = error.downcast_ref::<MemoryLimitExceeded>() {
        return Failure::processing(Kind::ResourceLimit, limit.to_string());
    }
    let mut failure = Failure::processing(Kind::Trap, first_line(error));
    failure.traceback = Some(format!("{error:?}"));
    failure
}

fn first_line(error: &wasmtime::Error) -> String {
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => format!("the guest trapped: {trap}"),
        None => format!("{error:#}"),
    }
}
