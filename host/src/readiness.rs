//! What else, beside the transport and the actors, a node's readiness depends on.
//!
//! `GET /readyz` asks each dependency it was given whether it can be used now; the
//! API names none of them, so a new dependency (another store, a cache) joins by
//! implementing [`Readiness`] where it is built.

/// A dependency whose loss takes the node out of service.
pub trait Readiness: Send + Sync {
    /// Why the dependency cannot be used now; `None` while it can.
    fn unready(&self) -> Option<String>;
}

impl Readiness for crate::store::postgres::PgStore {
    fn unready(&self) -> Option<String> {
        (!self.is_reachable()).then(|| "control plane: the shared store is unreachable".to_owned())
    }
}
