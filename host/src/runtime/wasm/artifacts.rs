//! Compiled components shared between nodes.
//!
//! A node started from zero (KEDA scaling a pool up) should not spend seconds
//! compiling what another node compiled already. Where a shared store is configured,
//! the engine asks it for the compiled form of a component before compiling, keyed by
//! the component's digest and the engine's compatibility key (wasmtime version, target,
//! settings), and shares what it compiles. Wasmtime checks an artifact's header again
//! when it is loaded, and an artifact that fails to load is compiled afresh.
//!
//! Trust: a compiled artifact is native code. Whoever can write the store can run code
//! on every node, exactly as whoever can write a node's data directory; the store's
//! credentials are the pool's to guard.

use futures::future::BoxFuture;

/// Where compiled components are shared.
pub trait Artifacts: Send + Sync + 'static {
    /// The compiled form of `digest` for engine `engine`, if one was shared. Errors
    /// read as "none": the engine compiles.
    fn fetch(&self, digest: String, engine: String) -> BoxFuture<'_, Option<Vec<u8>>>;

    /// Whether a compiled form of `digest` for `engine` is shared already (errors read
    /// as "yes": sharing is an optimisation, not worth a retry storm).
    fn has(&self, digest: String, engine: String) -> BoxFuture<'_, bool>;

    /// Shares a compiled form. Failing to share is logged, never fatal.
    fn share(&self, digest: String, engine: String, bytes: Vec<u8>) -> BoxFuture<'_, ()>;
}
