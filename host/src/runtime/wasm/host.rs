//! What a guest can reach from inside its sandbox, and the per-store state behind it.
//!
//! One [`HostState`] is built per instance and dropped with the store: per call for an
//! actor that takes a fresh instance per message (the default, so nothing a guest does
//! survives the message), or for the life of a warm instance of an actor that reuses
//! them. WASI is linked in full (Rust's standard library imports it) but grants
//! nothing: no preopened directories, network denied, no environment but the actor's
//! configured variables, stdin empty. Clocks and random work. Stdout and stderr are
//! kept as a bounded tail per call ([`super::stdio`]). `wasi:http` is linked too, and
//! reaches only the hosts the actor is granted ([`crate::outbound`]).

use super::bindings::wasya::actor::{log, progress};
use super::stdio::{GuestStdio, Written};
use crate::envelope::Headers;
use crate::outbound::{Gate, OutboundHooks};
use crate::progress::Partials;
use crate::runtime::ActorLimits;
use std::sync::Arc;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// A guest tried to grow its memory past the actor's limit.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (the guest asked for {desired})")]
pub struct MemoryLimitExceeded {
    /// The actor's memory limit, in bytes.
    pub limit: usize,
    /// The memory size the guest asked to grow to, in bytes.
    pub desired: usize,
}

/// A guest ran past the actor's timeout.
#[derive(Debug, thiserror::Error)]
#[error("the call ran past its timeout of {0:?}")]
pub struct TimedOut(pub std::time::Duration);

/// Caps linear memory growth per instance; tables get a generous fixed cap.
pub struct MemoryLimiter {
    limit: usize,
}

const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            return Err(MemoryLimitExceeded {
                limit: self.limit,
                desired,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The data of one store: one instance of one actor, for one call or (reused) many.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limiter: MemoryLimiter,
    pub(super) actor: Arc<str>,
    /// The calls running in an instance of an async actor, by guest task.
    pub(super) calls: super::shared::CallBook,
    /// The envelope of the call running now.
    envelope_id: String,
    /// When the call running now must stop.
    pub(super) deadline: std::time::Instant,
    /// What the guest writes to stdout and stderr.
    pub(super) stdio: GuestStdio,
    http: WasiHttpCtx,
    /// Outbound requests: the actor's grant and limits, and this call's context.
    pub(super) outbound: OutboundHooks,
    /// Where the partial output of the call running now goes (none between calls).
    partials: Partials,
}

impl HostState {
    /// The state of a new store for `actor` under `limits`, its first call being for
    /// envelope `envelope_id`; outbound requests go through `gate`.
    pub fn new(
        actor: Arc<str>,
        envelope_id: String,
        limits: &ActorLimits,
        gate: Arc<Gate>,
    ) -> Self {
        let stdio = GuestStdio::default();
        let mut wasi = WasiCtx::builder();
        wasi.envs(&limits.env)
            .stdout(stdio.stdout.clone())
            .stderr(stdio.stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                limit: limits.memory_bytes,
            },
            actor,
            calls: super::shared::CallBook::default(),
            envelope_id,
            deadline: std::time::Instant::now() + limits.timeout,
            stdio,
            http: WasiHttpCtx::new(),
            outbound: OutboundHooks::new(gate),
            partials: Partials::none(),
        }
    }

    /// Starts a call on an instance that may have served others.
    pub(super) fn begin(
        &mut self,
        envelope_id: &str,
        headers: &Headers,
        deadline: std::time::Instant,
        partials: Partials,
    ) {
        envelope_id.clone_into(&mut self.envelope_id);
        self.deadline = deadline;
        self.partials = partials;
        self.outbound.begin(deadline, headers);
        drop(self.stdio.take());
    }
}

impl HostState {
    /// Readies the state of an instance many calls share: no one call's deadline or
    /// trace context holds for its outbound requests (each is bounded by the actor's
    /// outbound timeout, and its call by the caller's timeout).
    pub(super) fn shared_by_calls(&mut self) {
        let unbounded = std::time::Instant::now() + std::time::Duration::from_secs(365 * 86_400);
        self.deadline = unbounded;
        self.outbound.begin(unbounded, &Headers::default());
    }
}

/// What a call left behind besides its result.
#[derive(Debug, Default)]
pub struct CallTrail {
    /// What the guest printed.
    pub written: Written,
    /// The `scheme://host:port` of outbound requests its grant refused.
    pub refused_hosts: Vec<String>,
}

impl HostState {
    /// Takes what the call running now left behind.
    pub(super) fn taken(&mut self) -> CallTrail {
        self.partials = Partials::none();
        CallTrail {
            written: self.stdio.take(),
            refused_hosts: self.outbound.take_refused(),
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        let level = match level {
            log::Level::Trace => tracing::Level::TRACE,
            log::Level::Debug => tracing::Level::DEBUG,
            log::Level::Info => tracing::Level::INFO,
            log::Level::Warn => tracing::Level::WARN,
            log::Level::Error => tracing::Level::ERROR,
        };
        guest_log(level, &self.actor, &self.envelope_id, &message);
    }
}

impl progress::Host for HostState {
    /// Counted, and dropped past the call's bounds, by [`Partials::emit`].
    fn emit(&mut self, chunk: String) {
        let _ = self.partials.emit(&chunk);
    }
}

/// The async world's `emit`: the chunk goes with the call the guest names, where one
/// for that envelope runs in this instance; else it is dropped and counted.
impl super::bindings_async::wasya::actor::progress::Host for HostState {
    fn emit(&mut self, envelope_id: String, chunk: String) {
        match self.calls.partials_of(&envelope_id) {
            Some(partials) => {
                let _ = partials.emit(&chunk);
            }
            None => crate::progress::partial::count_dropped(
                &self.actor,
                crate::progress::partial::Dropped::NoCall,
            ),
        }
    }
}

/// A guest's log line as an event of the node, with the actor and envelope id.
pub(super) fn guest_log(level: tracing::Level, actor: &str, envelope_id: &str, message: &str) {
    let id = envelope_id;
    match level {
        tracing::Level::TRACE => {
            tracing::trace!(target: "wasya::guest", actor, envelope_id = id, "{message}")
        }
        tracing::Level::DEBUG => {
            tracing::debug!(target: "wasya::guest", actor, envelope_id = id, "{message}")
        }
        tracing::Level::INFO => {
            tracing::info!(target: "wasya::guest", actor, envelope_id = id, "{message}")
        }
        tracing::Level::WARN => {
            tracing::warn!(target: "wasya::guest", actor, envelope_id = id, "{message}")
        }
        tracing::Level::ERROR => {
            tracing::error!(target: "wasya::guest", actor, envelope_id = id, "{message}")
        }
    }
}

/// The async world's `log`: the guest names the envelope of the call a line is for,
/// and the line carries it where a call for it runs in this instance.
impl super::bindings_async::wasya::actor::log::Host for HostState {
    fn log(
        &mut self,
        envelope_id: String,
        level: super::bindings_async::wasya::actor::log::Level,
        message: String,
    ) {
        use super::bindings_async::wasya::actor::log::Level;
        let envelope = if self.calls.runs(&envelope_id) {
            envelope_id.as_str()
        } else {
            ""
        };
        let level = match level {
            Level::Trace => tracing::Level::TRACE,
            Level::Debug => tracing::Level::DEBUG,
            Level::Info => tracing::Level::INFO,
            Level::Warn => tracing::Level::WARN,
            Level::Error => tracing::Level::ERROR,
        };
        guest_log(level, &self.actor, envelope, &message);
    }
}

impl super::bindings_async::wasya::actor::types::Host for HostState {}

impl super::bindings::wasya::actor::types::Host for HostState {}
