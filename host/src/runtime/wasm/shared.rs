//! Async actors (`wasya:actor@0.2.0`): a few instances, each entered by many calls.
//!
//! An actor whose `handle` is an `async func` is mostly waiting (on an LLM API, on
//! another service). A fresh instance per call, or one warm instance per call in
//! flight, makes every waiting call cost a whole interpreter; here one instance holds
//! up to `instance_concurrency` calls at once, the way one event loop holds many
//! requests, and a new instance is made only when every live one is full.
//!
//! Each instance lives in a driver task that owns its store and runs wasmtime's event
//! loop (`run_concurrent`); calls reach it over a bounded channel and each runs as a
//! task of that loop ([`CallTask`]). What is per call and what is per instance:
//!
//! - the call's deadline is its own: the caller stops waiting at it and reports
//!   `timeout`. wasmtime 48 cannot stop one task of an instance, so the guest's task
//!   runs on until it returns, holding its place in the instance. An instance holding
//!   a call twice past its timeout is retired: it takes no new calls, and is dropped
//!   with what still runs in it (the epoch check stops guest code that never yields);
//! - a trap, or the memory limit (per instance), ends the instance: every call in
//!   flight on it fails as `trap` (`resource_limit`), a call that had not started
//!   goes back to its queue; the actor's other instances serve on;
//! - `log` lines carry the envelope the guest names, where a call for it runs in the
//!   instance ([`CallBook`]); stdout and stderr are the instance's.

use super::bindings_async::wasya::actor::types;
use super::host::{HostState, MemoryLimitExceeded, TimedOut};
use super::warm::{Budget, Slot};
use crate::failure::{Failure, Kind};
use crate::progress::Partials;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use wasmtime::component::{Accessor, AccessorTask, HasSelf, InstancePre, TypedFunc};
use wasmtime::{Store, UpdateDeadline};

/// Why a call went back to its queue.
const NOT_STARTED: &str = "the instance stopped before the call started";

/// The `handle` export of the async world, as wasmtime calls it.
type Handle = TypedFunc<(types::Message,), (Result<Vec<types::Output>, types::ActorError>,)>;

/// What a call returned, or why it did not.
pub enum Entered {
    /// The guest returned.
    Returned(Result<Vec<types::Output>, types::ActorError>),
    /// The call failed (its instance stopped, or it ran past its deadline).
    Failed(Failure),
    /// The call never started: the instance stopped first. Not the envelope's fault.
    NotStarted(String),
}

/// The calls running in one instance: the envelope each serves and when its instance
/// must stop if it still runs (twice its timeout).
#[derive(Default)]
pub struct CallBook {
    calls: HashMap<u64, (Arc<str>, Instant, Partials)>,
    next: u64,
}

impl CallBook {
    fn enter(&mut self, envelope_id: Arc<str>, stop_at: Instant, partials: Partials) -> u64 {
        self.next += 1;
        self.calls
            .insert(self.next, (envelope_id, stop_at, partials));
        self.next
    }

    /// Where the partial output of the call for `envelope_id` goes, while it runs here.
    pub fn partials_of(&self, envelope_id: &str) -> Option<&Partials> {
        self.calls
            .values()
            .find(|(envelope, _, _)| &**envelope == envelope_id)
            .map(|(_, _, partials)| partials)
    }

    fn leave(&mut self, call: u64) {
        self.calls.remove(&call);
    }

    /// Whether a call for `envelope_id` runs in this instance now.
    pub fn runs(&self, envelope_id: &str) -> bool {
        self.calls
            .values()
            .any(|(envelope, _, _)| &**envelope == envelope_id)
    }

    /// Whether a call still runs twice past its timeout: its guest code must be stopped.
    fn overdue(&self, now: Instant) -> bool {
        self.calls.values().any(|(_, stop_at, _)| now >= *stop_at)
    }
}

/// One call on its way into an instance.
struct Call {
    message: types::Message,
    envelope_id: Arc<str>,
    deadline: Instant,
    /// Where what it emits goes.
    partials: Partials,
    reply: oneshot::Sender<Reply>,
    /// Its place in the instance, held until the guest's task returned.
    _place: OwnedSemaphorePermit,
}

/// What the driver answers a call.
enum Reply {
    Returned(Result<Vec<types::Output>, types::ActorError>),
    /// The instance stopped before this call started.
    NotStarted,
}

/// One live instance, as callers see it. The channel's sender lives only here: once
/// the actor let go of the instance and its last caller returned, the driver sees the
/// channel end and drops the instance.
struct Instance {
    calls: mpsc::Sender<Call>,
    /// Places for calls: `instance_concurrency` of them.
    places: Arc<Semaphore>,
    state: Arc<InstanceState>,
}

/// What an instance's callers and its driver share.
struct InstanceState {
    number: u64,
    /// False once it stopped (trapped) or was retired: it takes no new calls.
    open: AtomicBool,
    /// Why it stopped, for the calls it had in flight (set once, as it stops).
    ended: watch::Sender<Option<Failure>>,
    /// Tells the driver to drop the instance now (retired, a call overdue).
    stop: tokio::sync::Notify,
}

/// The instances of one async actor.
pub struct SharedInstances {
    name: Arc<str>,
    pre: InstancePre<HostState>,
    per_instance: usize,
    memories: u32,
    budget: Budget,
    live: Mutex<Vec<Arc<Instance>>>,
    /// One instantiation at a time for this actor: a burst of calls fills the instance
    /// being made instead of making one instance each.
    growing: tokio::sync::Mutex<()>,
    numbers: AtomicU64,
}

impl SharedInstances {
    /// The instances of actor `name`, each taking `per_instance` calls at once.
    pub fn new(
        name: Arc<str>,
        pre: InstancePre<HostState>,
        per_instance: usize,
        memories: u32,
        budget: Budget,
    ) -> Self {
        SharedInstances {
            name,
            pre,
            per_instance: per_instance.max(1),
            memories,
            budget,
            live: Mutex::new(Vec::new()),
            growing: tokio::sync::Mutex::new(()),
            numbers: AtomicU64::new(0),
        }
    }

    /// Instances alive now (open, or draining their last calls).
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Runs one call: in a live instance with a free place, or in a new one. `store`
    /// makes the store of a new instance; `wait` bounds the wait for the result.
    pub async fn call(
        &self,
        message: types::Message,
        envelope_id: &str,
        deadline: Instant,
        wait: Duration,
        partials: Partials,
        store: impl FnOnce() -> Store<HostState>,
    ) -> Entered {
        let (instance, place) = match self.place(store).await {
            Ok(found) => found,
            Err(failure) => return Entered::Failed(failure),
        };
        let (reply, answer) = oneshot::channel();
        let call = Call {
            message,
            envelope_id: envelope_id.into(),
            deadline,
            partials,
            reply,
            _place: place,
        };
        let mut answer = answer;
        if instance.calls.send(call).await.is_err() {
            return Entered::NotStarted(NOT_STARTED.into());
        }
        match tokio::time::timeout(wait, &mut answer).await {
            Ok(Ok(Reply::Returned(returned))) => Entered::Returned(returned),
            Ok(Ok(Reply::NotStarted)) => Entered::NotStarted(NOT_STARTED.into()),
            Ok(Err(_)) => Entered::Failed(instance.state.why_ended().await),
            Err(_) => {
                self.retire_if_still_running(instance, answer, wait);
                Entered::Failed(Failure::processing(
                    Kind::Timeout,
                    TimedOut(wait).to_string(),
                ))
            }
        }
    }

    /// A place in a live instance, or in a new one when all are full.
    async fn place(
        &self,
        store: impl FnOnce() -> Store<HostState>,
    ) -> Result<(Arc<Instance>, OwnedSemaphorePermit), Failure> {
        if let Some(found) = self.free_place() {
            return Ok(found);
        }
        let _growing = self.growing.lock().await;
        if let Some(found) = self.free_place() {
            return Ok(found);
        }
        let instance = self.start(store()).await?;
        let place = instance
            .places
            .clone()
            .try_acquire_owned()
            .map_err(|_| Failure::processing(Kind::Trap, "a new instance had no place"))?;
        Ok((instance, place))
    }

    fn free_place(&self) -> Option<(Arc<Instance>, OwnedSemaphorePermit)> {
        let mut live = self.lock();
        live.retain(|instance| {
            instance.state.open.load(Ordering::Acquire) || !instance.calls.is_closed()
        });
        live.iter()
            .filter(|instance| instance.state.open.load(Ordering::Acquire))
            .find_map(|instance| {
                let place = instance.places.clone().try_acquire_owned().ok()?;
                Some((instance.clone(), place))
            })
    }

    /// Makes an instance and its driver.
    async fn start(&self, mut store: Store<HostState>) -> Result<Arc<Instance>, Failure> {
        let failed = |error: wasmtime::Error| failure_of(&error);
        let Some(slot) = self.budget.slot(self.memories).await else {
            return Err(Failure::processing(Kind::Trap, "the engine is closed"));
        };
        // Guest code yields to tokio at every epoch tick; code of a call twice past its
        // timeout is stopped (and its instance with it).
        store.epoch_deadline_callback(|store| {
            if store.data().calls.overdue(Instant::now()) {
                return Err(TimedOut(Duration::ZERO).into());
            }
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
        store.set_epoch_deadline(1);
        let started = Instant::now();
        let instance = {
            let _turn = self.budget.start_turn().await;
            self.pre
                .instantiate_async(&mut store)
                .await
                .map_err(failed)?
        };
        crate::metrics::metrics()
            .instantiation
            .with_label_values(&[&*self.name])
            .observe(started.elapsed().as_secs_f64());
        let handle: Handle = instance
            .get_typed_func(&mut store, "handle")
            .map_err(failed)?;
        let (calls, received) = mpsc::channel(self.per_instance);
        let number = self.numbers.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(InstanceState {
            number,
            open: AtomicBool::new(true),
            ended: watch::channel(None).0,
            stop: tokio::sync::Notify::new(),
        });
        let instance = Arc::new(Instance {
            calls,
            places: Arc::new(Semaphore::new(self.per_instance)),
            state: state.clone(),
        });
        self.lock().push(instance.clone());
        tokio::spawn(drive(
            self.name.clone(),
            store,
            handle,
            received,
            state,
            slot,
        ));
        tracing::debug!(actor = &*self.name, instance = number, "instance started");
        Ok(instance)
    }

    /// A call ran past its caller's wait. Its guest task cannot be stopped alone: if it
    /// has not returned after another `wait`, its instance takes no new calls and is
    /// dropped (with whatever else still runs in it).
    fn retire_if_still_running(
        &self,
        instance: Arc<Instance>,
        mut answer: oneshot::Receiver<Reply>,
        wait: Duration,
    ) {
        let name = self.name.clone();
        let instance = instance.state.clone();
        tokio::spawn(async move {
            if tokio::time::timeout(wait, &mut answer).await.is_ok() {
                return;
            }
            if instance.open.swap(false, Ordering::AcqRel) {
                tracing::warn!(
                    actor = &*name,
                    instance = instance.number,
                    "a call still runs twice past its timeout: its instance is retired"
                );
            }
            instance.stop.notify_one();
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Instance>>> {
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl InstanceState {
    /// Why the instance stopped, for a call it dropped: its driver says so right after
    /// the event loop ended (the calls are dropped with it, a moment before).
    async fn why_ended(&self) -> Failure {
        let mut ended = self.ended.subscribe();
        let said =
            tokio::time::timeout(Duration::from_secs(5), ended.wait_for(Option::is_some)).await;
        match said {
            Ok(Ok(failure)) => failure.clone().unwrap_or_else(stopped),
            _ => stopped(),
        }
    }
}

fn stopped() -> Failure {
    Failure::processing(Kind::Trap, "the instance stopped while the call ran")
}

/// Owns one instance's store and runs its event loop until the instance is dropped
/// (its actor gone and its calls ended), stopped, or trapped.
async fn drive(
    name: Arc<str>,
    mut store: Store<HostState>,
    handle: Handle,
    mut received: mpsc::Receiver<Call>,
    instance: Arc<InstanceState>,
    _slot: Slot,
) {
    let stop = &instance.stop;
    let ran = store
        .run_concurrent(async |accessor| -> wasmtime::Result<()> {
            loop {
                tokio::select! {
                    call = received.recv() => match call {
                        Some(call) => {
                            accessor.spawn(CallTask { handle, call, number: instance.number })?;
                        }
                        None => return Ok(()),
                    },
                    () = stop.notified() => return Ok(()),
                }
            }
        })
        .await;
    instance.open.store(false, Ordering::Release);
    received.close();
    let error = match ran {
        Ok(Ok(())) => None,
        Ok(Err(error)) | Err(error) => Some(error),
    };
    match error {
        Some(error) => {
            let failure = failure_of(&error);
            tracing::warn!(
                actor = &*name,
                instance = instance.number,
                kind = failure.kind.as_str(),
                "{}; the calls in flight on this instance fail",
                failure.message
            );
            instance.ended.send_replace(Some(failure));
        }
        None => {
            instance.ended.send_replace(Some(Failure::processing(
                Kind::Timeout,
                "the instance was retired while the call ran (a call of it ran twice past its timeout)",
            )));
        }
    }
    store
        .data_mut()
        .stdio
        .take()
        .log_instance(&name, instance.number);
    // Calls still queued never started: they go back to their queues.
    while let Ok(call) = received.try_recv() {
        let _ = call.reply.send(Reply::NotStarted);
    }
}

/// One call, run as a task of its instance's event loop.
struct CallTask {
    handle: Handle,
    call: Call,
    /// The instance's number, for what it prints.
    number: u64,
}

impl AccessorTask<HostState, HasSelf<HostState>> for CallTask {
    async fn run(self, accessor: &Accessor<HostState>) -> wasmtime::Result<()> {
        let CallTask {
            handle,
            call,
            number,
        } = self;
        let Call {
            message,
            envelope_id,
            deadline,
            partials,
            reply,
            _place,
        } = call;
        let started_at = Instant::now();
        let stop_at = deadline + deadline.saturating_duration_since(started_at);
        let (started, entry) = accessor.with(|mut access| {
            let started = handle.start_call_concurrent(&mut access, (message,))?;
            let entry = access.get().calls.enter(envelope_id, stop_at, partials);
            Ok::<_, wasmtime::Error>((started, entry))
        })?;
        let returned = handle.finish_call_concurrent(accessor, started).await;
        accessor.with(|mut access| {
            let state = access.get();
            state.calls.leave(entry);
            let written = state.stdio.take();
            written.log_instance(&state.actor, number);
        });
        let (returned,) = returned?;
        let _ = reply.send(Reply::Returned(returned));
        Ok(())
    }
}

/// Names what ended an instance: `timeout`, `resource_limit` or `trap`.
fn failure_of(error: &wasmtime::Error) -> Failure {
    if error.downcast_ref::<TimedOut>().is_some() {
        return Failure::processing(
            Kind::Timeout,
            "a call ran past its timeout in guest code: its instance was stopped",
        );
    }
    if let Some(limit) = error.downcast_ref::<MemoryLimitExceeded>() {
        return Failure::processing(Kind::ResourceLimit, limit.to_string());
    }
    let mut failure = Failure::processing(
        Kind::Trap,
        match error.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => format!("the instance trapped: {trap}"),
            None => format!("the instance failed: {error:#}"),
        },
    );
    failure.traceback = Some(format!("{error:?}"));
    failure
}
