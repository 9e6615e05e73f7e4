//! The limits one actor runs under, set per actor with node-wide defaults.

use std::time::Duration;

/// What one actor is allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorLimits {
    /// A call running longer is stopped and reported as `timeout`.
    pub timeout: Duration,
    /// Linear memory an instance may grow to; beyond it the call fails as `resource_limit`.
    pub memory_bytes: usize,
    /// Environment variables granted to the guest (nothing else is).
    pub env: Vec<(String, String)>,
    /// Keep instances between messages instead of a fresh one per message: state a
    /// guest keeps in memory then lives on, as in a runtime process. Unset, the
    /// component decides ([`ActorLimits::reuses_instances`]).
    pub reuse_instances: Option<bool>,
    /// Where the guest may send HTTP requests, and under which limits.
    pub outbound: crate::outbound::OutboundLimits,
    /// Async actors (`wasya:actor@0.2.0`): calls one instance takes at once.
    pub instance_concurrency: usize,
}

impl ActorLimits {
    /// Whether a sync actor keeps warm instances: as set, else when its component carries
    /// an interpreter (it declares the handler mode `wasya build --python` / `--js`
    /// built it in). A fresh CPython costs about a millisecond a call where Asya's
    /// runtime keeps its interpreter, so warm is their default; a Rust guest starts
    /// fresh in microseconds and keeps the isolation of an instance per message.
    pub fn reuses_instances(&self, declared_mode: Option<crate::records::HandlerMode>) -> bool {
        self.reuse_instances.unwrap_or(declared_mode.is_some())
    }
}

impl Default for ActorLimits {
    fn default() -> Self {
        ActorLimits {
            timeout: crate::defaults::TIMEOUT,
            memory_bytes: crate::defaults::MEMORY_LIMIT,
            env: Vec::new(),
            reuse_instances: None,
            outbound: crate::outbound::OutboundLimits::default(),
            instance_concurrency: crate::defaults::INSTANCE_CONCURRENCY,
        }
    }
}
