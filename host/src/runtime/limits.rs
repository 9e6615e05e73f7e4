//! The limits one actor runs under, set per actor with node-wide defaults.

use std::time::Duration;

/// Default time one call may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default memory one instance may grow to.
pub const DEFAULT_MEMORY_BYTES: usize = 256 * 1024 * 1024;

/// What one actor is allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorLimits {
    /// A call running longer is stopped and reported as `timeout`.
    pub timeout: Duration,
    /// Linear memory an instance may grow to; beyond it the call fails as `resource_limit`.
    pub memory_bytes: usize,
    /// Environment variables granted to the guest (nothing else is).
    pub env: Vec<(String, String)>,
}

impl Default for ActorLimits {
    fn default() -> Self {
        ActorLimits {
            timeout: DEFAULT_TIMEOUT,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            env: Vec::new(),
        }
    }
}
