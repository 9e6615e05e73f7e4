//! What a guest can reach from inside its sandbox, and the per-store state behind it.
//!
//! One [`HostState`] is built per call and dropped with the store, so nothing a guest
//! does survives the message. WASI is linked in full (Rust's standard library imports
//! it) but grants nothing: no preopened directories, network denied, no environment
//! but the actor's configured variables, stdio closed. Clocks and random work.

use super::bindings::wasya::actor::log;
use crate::runtime::ActorLimits;
use std::sync::Arc;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// A guest tried to grow its memory past the actor's limit.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (the guest asked for {desired})")]
pub struct MemoryLimitExceeded {
    pub limit: usize,
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

/// The data of one store: one call of one actor.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limiter: MemoryLimiter,
    actor: Arc<str>,
    envelope_id: String,
}

impl HostState {
    pub fn new(actor: Arc<str>, envelope_id: String, limits: &ActorLimits) -> Self {
        let mut wasi = WasiCtx::builder();
        wasi.envs(&limits.env)
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
            envelope_id,
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
        let (actor, id) = (&*self.actor, self.envelope_id.as_str());
        match level {
            log::Level::Trace => {
                tracing::trace!(target: "wasya::guest", actor, envelope_id = id, "{message}")
            }
            log::Level::Debug => {
                tracing::debug!(target: "wasya::guest", actor, envelope_id = id, "{message}")
            }
            log::Level::Info => {
                tracing::info!(target: "wasya::guest", actor, envelope_id = id, "{message}")
            }
            log::Level::Warn => {
                tracing::warn!(target: "wasya::guest", actor, envelope_id = id, "{message}")
            }
            log::Level::Error => {
                tracing::error!(target: "wasya::guest", actor, envelope_id = id, "{message}")
            }
        }
    }
}

impl super::bindings::wasya::actor::types::Host for HostState {}
