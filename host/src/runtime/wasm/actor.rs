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
use crate::envelope::{Envelope, Headers, Route};
use crate::failure::{Failure, Kind};
use crate::metrics::metrics;
use crate::routing::{Outcome, Output};
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
        let message = to_message(envelope);
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
            Ok(Ok(outputs)) => from_outputs(outputs),
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
    fn kind(&self) -> &'static str {
        "wasm"
    }

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

fn to_message(envelope: &Envelope) -> types::Message {
    types::Message {
        id: envelope.id.clone(),
        parent_id: envelope.parent_id.clone(),
        route: to_wit_route(&envelope.route),
        headers: envelope
            .headers
            .iter()
            .map(|(name, value)| types::Header {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        payload: envelope.payload.to_string(),
    }
}

fn to_wit_route(route: &Route) -> types::Route {
    types::Route {
        actors: route.actors.clone(),
        current: u32::try_from(route.current).unwrap_or(u32::MAX),
        metadata: route.metadata.as_ref().map(|metadata| metadata.to_string()),
    }
}

fn from_outputs(outputs: Vec<types::Output>) -> Outcome {
    let converted: Result<Vec<Output>, String> = outputs
        .into_iter()
        .enumerate()
        .map(|(index, output)| {
            let payload = serde_json::from_str(&output.payload)
                .map_err(|error| format!("output {index}: payload is not JSON: {error}"))?;
            let route = output
                .route
                .map(|route| from_wit_route(route).map_err(|e| format!("output {index}: {e}")))
                .transpose()?;
            let headers = output.headers.map(|headers| {
                headers
                    .into_iter()
                    .map(|header| (header.name, header.value))
                    .collect::<Headers>()
            });
            Ok(Output {
                payload,
                route,
                headers,
                id: None,
                parent_id: None,
            })
        })
        .collect();
    match converted {
        Ok(outputs) => Outcome::Outputs(outputs),
        Err(reason) => Outcome::Failed(Failure::processing(Kind::InvalidOutput, reason)),
    }
}

fn from_wit_route(route: types::Route) -> Result<Route, String> {
    let metadata = route
        .metadata
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|error| format!("route.metadata is not JSON: {error}"))?;
    Ok(Route {
        actors: route.actors,
        current: route.current as usize,
        metadata,
    })
}
