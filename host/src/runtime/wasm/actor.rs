//! One wasm actor: a pre-linked component, and the instances its calls run in.
//!
//! By default every message gets a fresh store and instance: that is the isolation
//! guarantee (no state leaks between messages) and, with the pooling allocator and an
//! `InstancePre`, it costs microseconds for a small guest. A large guest (CPython,
//! StarlingMonkey) spends most of its call on a fresh instance; an actor may opt in to
//! reusing warm instances ([`super::warm`]), which keeps guest state between messages
//! as a runtime process does. Either way the deadline is checked at every epoch tick
//! inside the guest, which stops a busy guest, and a `tokio` timeout around the call
//! stops one that waits in a host call. What the guest printed is logged and, on a
//! failure, carried as its traceback.
//!
//! A component of the async world (`wasya:actor@0.2.0`) runs otherwise: its
//! instances are shared by many calls at once ([`super::shared`]).

use super::bindings::wasya::actor::types;
use super::bindings::{Actor, ActorPre};
use super::bindings_async::wasya::actor::types as async_types;
use super::host::{CallTrail, HostState, MemoryLimitExceeded, TimedOut};
use super::output::{GuestOutput, outcome_of};
use super::shared::{Entered, SharedInstances};
use super::warm::{Budget, Warm, WarmPool};
use super::world::World;
use crate::envelope::Envelope;
use crate::failure::{Failure, Kind};
use crate::metrics::metrics;
use crate::outbound::{Gate, OutboundClient};
use crate::progress::Partials;
use crate::records::HandlerMode;
use crate::route_rules::Outcome;
use crate::runtime::{ActorLimits, ActorRuntime, Unavailable};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::{Store, UpdateDeadline};

/// A loaded wasm actor.
pub struct WasmActor {
    name: Arc<str>,
    digest: String,
    linked: Linked,
    limits: ActorLimits,
    shared: EngineShared,
    /// The actor's outbound HTTP: its grant, limits and permits.
    gate: Arc<Gate>,
    /// Linear memories one instance takes from the pool.
    memories: u32,
    /// The handler mode the component declares ([`super::declared`]).
    declared_mode: Option<HandlerMode>,
    instances: Instances,
    /// Whether its calls can emit partial output ([`imports_progress`]).
    emits_partials: bool,
}

/// A component linked for its world.
#[derive(Clone)]
pub enum Linked {
    /// `wasya:actor@0.1.0`: an instance per call.
    Sync(ActorPre<HostState>),
    /// `wasya:actor@0.2.0`: instances entered by many calls.
    Async(wasmtime::component::InstancePre<HostState>),
}

/// How the calls of an actor reach their instances.
enum Instances {
    /// A fresh instance per call.
    Fresh,
    /// Idle instances, for an actor that reuses them.
    Warm(WarmPool),
    /// Instances shared by many calls (the async world).
    Shared(SharedInstances),
}

/// What every actor of an engine shares.
#[derive(Clone)]
pub struct EngineShared {
    /// Live instances and memories of the pool.
    pub budget: Budget,
    /// How often running guests are interrupted.
    pub epoch_tick: Duration,
    /// The node's outbound HTTP client.
    pub outbound: OutboundClient,
}

/// How a call ended, before it becomes an outcome.
type Called = wasmtime::Result<Result<Vec<types::Output>, types::ActorError>>;

impl WasmActor {
    pub(super) fn new(
        name: &str,
        digest: String,
        linked: Linked,
        limits: ActorLimits,
        shared: EngineShared,
        memories: u32,
        declared_mode: Option<HandlerMode>,
    ) -> Self {
        let name: Arc<str> = name.into();
        let instances = match &linked {
            Linked::Async(pre) => Instances::Shared(SharedInstances::new(
                name.clone(),
                pre.clone(),
                limits.instance_concurrency,
                memories,
                shared.budget.clone(),
            )),
            Linked::Sync(_) if limits.reuses_instances(declared_mode) => {
                Instances::Warm(WarmPool::default())
            }
            Linked::Sync(_) => Instances::Fresh,
        };
        WasmActor {
            emits_partials: imports_progress(&linked),
            memories,
            gate: Arc::new(Gate::new(
                name.clone(),
                limits.outbound.clone(),
                shared.outbound.clone(),
            )),
            name,
            digest,
            instances,
            linked,
            limits,
            shared,
            declared_mode,
        }
    }

    /// The world the component targets.
    pub fn world(&self) -> World {
        match self.linked {
            Linked::Sync(_) => World::Sync,
            Linked::Async(_) => World::Async,
        }
    }

    /// Instances alive now, for an async actor (its instances are shared by calls).
    pub fn live_instances(&self) -> Option<usize> {
        match &self.instances {
            Instances::Shared(instances) => Some(instances.count()),
            _ => None,
        }
    }

    /// The sha256 digest of the component.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The limits the actor's calls run under.
    pub fn limits(&self) -> &ActorLimits {
        &self.limits
    }

    /// The same component under other limits (no recompilation, no relinking). Warm
    /// instances are not carried over: they ran under the old limits.
    pub fn with_limits(&self, limits: ActorLimits) -> WasmActor {
        WasmActor::new(
            &self.name,
            self.digest.clone(),
            self.linked.clone(),
            limits,
            self.shared.clone(),
            self.memories,
            self.declared_mode,
        )
    }

    /// The handler mode the component was built in, where it declares one.
    pub fn declared_mode(&self) -> Option<HandlerMode> {
        self.declared_mode
    }

    /// A store for a new instance, its deadline read from its state at every tick.
    fn new_store(&self, envelope_id: &str) -> Store<HostState> {
        let mut store = self.bare_store(envelope_id);
        let timeout = self.limits.timeout;
        store.epoch_deadline_callback(move |store| {
            if Instant::now() >= store.data().deadline {
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
        store
    }

    /// A store with the actor's state and memory limit, no epoch policy yet.
    fn bare_store(&self, envelope_id: &str) -> Store<HostState> {
        let engine = match &self.linked {
            Linked::Sync(pre) => pre.engine(),
            Linked::Async(pre) => pre.component().engine(),
        };
        let mut store = Store::new(
            engine,
            HostState::new(
                self.name.clone(),
                envelope_id.to_owned(),
                &self.limits,
                self.gate.clone(),
            ),
        );
        store.limiter(|state| &mut state.limiter);
        store
    }

    async fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Actor> {
        let Linked::Sync(pre) = &self.linked else {
            return Err(wasmtime::format_err!(
                "an async component has no sync instance"
            ));
        };
        let _turn = self.shared.budget.start_turn().await;
        let started = Instant::now();
        let actor = pre.instantiate_async(&mut *store).await?;
        metrics()
            .instantiation
            .with_label_values(&[&*self.name])
            .observe(started.elapsed().as_secs_f64());
        Ok(actor)
    }

    async fn run(&self, envelope: &Envelope, partials: Partials) -> Result<Outcome, Unavailable> {
        let pool = match &self.instances {
            Instances::Shared(instances) => {
                return self.run_shared(instances, envelope, partials).await;
            }
            Instances::Warm(pool) => Some(pool),
            Instances::Fresh => None,
        };
        let message = types::Message::from(envelope);
        let (called, written) = match pool {
            None => self.run_fresh(envelope, &message, partials).await,
            Some(pool) => self.run_warm(pool, envelope, &message, partials).await,
        };
        let trail = written.unwrap_or_default();
        trail.written.log(&self.name, &envelope.id);
        Ok(self.outcome(called, trail))
    }

    /// A call into an instance shared with other calls (the async world).
    async fn run_shared(
        &self,
        instances: &SharedInstances,
        envelope: &Envelope,
        partials: Partials,
    ) -> Result<Outcome, Unavailable> {
        let message = async_types::Message::from(envelope);
        let timeout = self.limits.timeout;
        let deadline = Instant::now() + timeout;
        let entered = instances
            .call(message, &envelope.id, deadline, timeout, partials, || {
                let mut store = self.bare_store(&envelope.id);
                store.data_mut().shared_by_calls();
                store
            })
            .await;
        let failure = match entered {
            Entered::Returned(Ok(outputs)) => {
                return Ok(outcome_of(
                    outputs.into_iter().map(GuestOutput::from).collect(),
                ));
            }
            Entered::Returned(Err(error)) => {
                let mut failure = Failure::processing(Kind::Actor(error.kind), error.message);
                failure.traceback = error.traceback;
                failure
            }
            Entered::Failed(failure) => failure,
            Entered::NotStarted(why) => return Err(Unavailable(why)),
        };
        let m = metrics();
        let counter = match failure.kind {
            Kind::Timeout => Some(&m.guest_timeouts),
            Kind::ResourceLimit => Some(&m.guest_limit_hits),
            Kind::Trap => Some(&m.guest_traps),
            _ => None,
        };
        if let Some(counter) = counter {
            counter.with_label_values(&[&*self.name]).inc();
        }
        Ok(Outcome::Failed(failure))
    }

    /// A fresh instance for this message alone.
    async fn run_fresh(
        &self,
        envelope: &Envelope,
        message: &types::Message,
        partials: Partials,
    ) -> (Called, Option<CallTrail>) {
        let Some(_slot) = self.shared.budget.slot(self.memories).await else {
            return (Err(wasmtime::format_err!("the engine is closed")), None);
        };
        let mut store = self.new_store(&envelope.id);
        let deadline = Instant::now() + self.limits.timeout;
        store
            .data_mut()
            .begin(&envelope.id, &envelope.headers, deadline, partials);
        store.set_epoch_deadline(1);
        let call = async {
            let actor = self.instantiate(&mut store).await?;
            actor.call_handle(&mut store, message).await
        };
        let called = self.bounded(call).await;
        let written = store.data_mut().taken();
        (called, Some(written))
    }

    /// A warm instance, or a new one that stays warm after the call. A call that trapped,
    /// ran past its deadline or hit its limit discards its instance.
    async fn run_warm(
        &self,
        pool: &WarmPool,
        envelope: &Envelope,
        message: &types::Message,
        partials: Partials,
    ) -> (Called, Option<CallTrail>) {
        let mut warm = match pool.take() {
            Some(warm) => warm,
            None => {
                let Some(slot) = self.shared.budget.slot(self.memories).await else {
                    return (Err(wasmtime::format_err!("the engine is closed")), None);
                };
                let mut store = self.new_store(&envelope.id);
                store.data_mut().begin(
                    &envelope.id,
                    &envelope.headers,
                    Instant::now() + self.limits.timeout,
                    Partials::none(),
                );
                store.set_epoch_deadline(1);
                match self.bounded(self.instantiate(&mut store)).await {
                    Ok(actor) => Warm::new(store, actor, slot),
                    Err(error) => {
                        let written = store.data_mut().taken();
                        return (Err(error), Some(written));
                    }
                }
            }
        };
        let deadline = Instant::now() + self.limits.timeout;
        warm.store
            .data_mut()
            .begin(&envelope.id, &envelope.headers, deadline, partials);
        warm.store.set_epoch_deadline(1);
        let Warm { store, actor, .. } = &mut warm;
        let called = self.bounded(actor.call_handle(store, message)).await;
        let written = warm.store.data_mut().taken();
        if called.is_ok() {
            pool.keep(warm, &self.shared.budget);
        }
        (called, Some(written))
    }

    /// Runs `call` under the actor's timeout. The epoch check stops a running guest
    /// within a tick of its deadline; this outer bound stops one parked in a host call.
    async fn bounded<R>(
        &self,
        call: impl Future<Output = wasmtime::Result<R>>,
    ) -> wasmtime::Result<R> {
        let timeout = self.limits.timeout;
        match tokio::time::timeout(timeout + 2 * self.shared.epoch_tick, call).await {
            Ok(result) => result,
            Err(_) => Err(TimedOut(timeout).into()),
        }
    }

    /// What a call ended with, its failures named; the guest's stderr is the
    /// traceback of a failure that has none of its own.
    fn outcome(&self, called: Called, trail: CallTrail) -> Outcome {
        let mut failure = match called {
            Ok(Ok(outputs)) => {
                return outcome_of(outputs.into_iter().map(GuestOutput::from).collect());
            }
            Ok(Err(error)) => Failure::processing(Kind::Actor(error.kind), error.message),
            Err(error) => {
                let failure = classify(&error);
                let m = metrics();
                let counter = match failure.kind {
                    Kind::Timeout => &m.guest_timeouts,
                    Kind::ResourceLimit => &m.guest_limit_hits,
                    _ => &m.guest_traps,
                };
                counter.with_label_values(&[&*self.name]).inc();
                failure
            }
        };
        failure.refused_hosts = trail.refused_hosts;
        if let Some(stderr) = trail.written.stderr {
            failure.traceback = Some(match failure.traceback.take() {
                Some(frames) => format!("{stderr}\n{frames}"),
                None => stderr,
            });
        }
        Outcome::Failed(failure)
    }
}

impl ActorRuntime for WasmActor {
    fn call<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Result<Outcome, Unavailable>> {
        Box::pin(self.run(envelope, Partials::none()))
    }

    fn call_with<'a>(
        &'a self,
        envelope: &'a Envelope,
        partials: Partials,
    ) -> BoxFuture<'a, Result<Outcome, Unavailable>> {
        Box::pin(self.run(envelope, partials))
    }

    fn emits_partials(&self) -> bool {
        self.emits_partials
    }
}

/// Whether the component imports `wasya:actor/progress` (of either world): only then
/// can its calls emit partial output.
fn imports_progress(linked: &Linked) -> bool {
    let component = match linked {
        Linked::Sync(pre) => pre.instance_pre().component(),
        Linked::Async(pre) => pre.component(),
    };
    component
        .component_type()
        .imports(component.engine())
        .any(|(name, _)| name.starts_with("wasya:actor/progress@"))
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
