//! Where an envelope is while it runs: the progress of each hop, as events.
//!
//! Every hop records what happened to it (`received` and `processing` when the actor
//! is called, `completed` or `failed` when its results were handed on), with the actor,
//! its index in the route, the route as it stands (envelope-mode actors change it) and
//! where the results went. [`hop`] decides the events from plain values, with no I/O;
//! the router records them beside the submission's outcome ([`crate::outcomes`]), where
//! the API streams them, and hands them to a [`ProgressReporter`] when one is set (an
//! Asya gateway, for `wasya sidecar`).
//!
//! Events are kept per submission (a fan-out child's events go to its root) and bounded
//! per submission ([`EVENTS_KEPT`]): a runaway fan-out keeps its first events and a count
//! of the rest, and the final outcome is always known.

pub mod event;
pub mod gateway;
pub mod hop;
pub mod partial;

pub use event::{ProgressEvent, Stage};
pub use partial::{PartialEvent, Partials};

use serde_json::Value;
use std::sync::Arc;

/// Events kept per submission; past this, later events are counted, not kept.
pub const EVENTS_KEPT: usize = 1024;

/// Where a hop's events go besides the node's own record (an Asya gateway).
///
/// `report` must not wait on the network: an implementation queues the event (bounded)
/// and sends it in the background, dropping what it cannot keep.
pub trait ProgressReporter: Send + Sync + 'static {
    /// Reports one event of a hop.
    fn report(&self, event: &ProgressEvent);

    /// Reports that `envelope` reached an end actor run by an external runtime
    /// (Asya's `ASYA_IS_END_ACTOR`), with the result it ended with. Only an Asya
    /// gateway hears of it; the node's own end actors record outcomes themselves.
    fn ended(&self, _envelope: &crate::envelope::Envelope, _end: EndStatus, _result: &Value) {}

    /// Sends what is queued, waiting up to `within`; called once, when the node stops.
    fn flush(&self, _within: std::time::Duration) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// How an envelope ended, as an end actor reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndStatus {
    /// It reached happy-end.
    Succeeded,
    /// It reached error-end.
    Failed,
}

impl EndStatus {
    /// The name Asya's gateway uses.
    pub fn as_str(self) -> &'static str {
        match self {
            EndStatus::Succeeded => "succeeded",
            EndStatus::Failed => "failed",
        }
    }
}

/// A shared reporter.
#[derive(Clone)]
pub struct Reporter(pub Arc<dyn ProgressReporter>);

impl std::fmt::Debug for Reporter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Reporter")
    }
}
