//! Running one actor call.
//!
//! Every kind of actor (a WebAssembly component in-process, later an external process
//! behind a socket) sits behind [`ActorRuntime`]: it takes the envelope addressed to the
//! actor and returns an [`Outcome`]. A runtime never fails the router: traps,
//! timeouts and limit hits become `Outcome::Failed` with a distinct `details.type`.

pub mod limits;
pub mod wasm;

use crate::envelope::Envelope;
use crate::routing::Outcome;
use futures::future::BoxFuture;

pub use limits::ActorLimits;

/// One deployed actor, ready to be called.
pub trait ActorRuntime: Send + Sync + 'static {
    /// `wasm` or `socket`.
    fn kind(&self) -> &'static str;

    /// Runs the actor on one envelope.
    fn call<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Outcome>;
}
