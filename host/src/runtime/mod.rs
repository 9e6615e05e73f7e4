//! Running one actor call.
//!
//! Every kind of actor (a WebAssembly component in-process, [`wasm`]; an external
//! process behind a Unix socket, [`socket`]) sits behind [`ActorRuntime`]: it takes the envelope addressed to the
//! actor and returns an [`Outcome`]. A runtime never fails the router: traps,
//! timeouts and limit hits become `Outcome::Failed` with a distinct `details.type`.
//! While it runs, a call may emit partial output ([`Partials`]): chunks a follower of
//! the envelope reads before the result.

pub mod limits;
pub mod mode;
pub mod socket;
pub mod wasm;

use crate::envelope::Envelope;
use crate::progress::Partials;
use crate::route_rules::Outcome;
use futures::future::BoxFuture;

pub use limits::ActorLimits;

/// The actor could not be run at all right now (its external runtime is down or kept
/// dying mid-call). Not the envelope's fault: the message goes back to its queue.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("actor unavailable: {0}")]
pub struct Unavailable(pub String);

/// One deployed actor, ready to be called.
pub trait ActorRuntime: Send + Sync + 'static {
    /// Runs the actor on one envelope.
    fn call<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Result<Outcome, Unavailable>>;

    /// Runs the actor on one envelope, handing the partial output it emits while it
    /// runs to `partials`. A runtime whose actors cannot emit any runs [`Self::call`].
    fn call_with<'a>(
        &'a self,
        envelope: &'a Envelope,
        partials: Partials,
    ) -> BoxFuture<'a, Result<Outcome, Unavailable>> {
        drop(partials);
        self.call(envelope)
    }

    /// Whether a call may emit partial output: the router makes a [`Partials`] for
    /// the call only then.
    fn emits_partials(&self) -> bool {
        false
    }

    /// Why the actor cannot serve now, if it cannot (readiness).
    fn not_ready(&self) -> Option<String> {
        None
    }
}
