//! Where a pool of nodes keeps the outcomes every node can read.
//!
//! In a pool, any node's end actors may take any branch of a submission, so each node
//! alone knows part of it. An implementation (the pool's PostgreSQL store) has every
//! ended branch written before its message is acked, and answers for any submission;
//! it keeps every hop's progress events too, written in batches behind the hops.

use crate::envelope::Envelope;
use crate::error_chain::Cause;
use crate::progress::ProgressEvent;
use crate::records::End;
use futures::future::BoxFuture;

/// The pool's outcome store failed; the cause says how.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the pool's outcome store")]
pub struct SharedError(#[source] pub Cause);

/// The ended branches of one submission, as the store keeps them.
pub type Ended = Vec<(End, Envelope)>;

/// Where a pool of nodes keeps the outcomes every node can read.
pub trait SharedOutcomes: Send + Sync + 'static {
    /// Notes a submission, so that every node answers `pending` for it.
    fn submitted(&self, id: String) -> BoxFuture<'_, Result<(), SharedError>>;

    /// Records one ended branch of submission `root` (idempotent per branch).
    fn ended<'a>(
        &'a self,
        root: String,
        branch: String,
        end: End,
        envelope: &Envelope,
    ) -> BoxFuture<'a, Result<(), SharedError>>;

    /// Records progress events, each with the submission it belongs to.
    fn progress(
        &self,
        events: Vec<(String, ProgressEvent)>,
    ) -> BoxFuture<'_, Result<(), SharedError>>;

    /// Up to `limit` progress events of submission `root` after the one numbered
    /// `after`, in order, each numbered (`seq`) by the store.
    fn events_after(
        &self,
        root: String,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<ProgressEvent>, SharedError>>;

    /// The ended branches of submission `id`, or `None` when it is unknown.
    fn outcome(&self, id: String) -> BoxFuture<'_, Result<Option<Ended>, SharedError>>;

    /// The most recent submissions with a branch at error-end, newest first, with
    /// their ended branches.
    fn recent_failures(
        &self,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<(String, Ended)>, SharedError>>;
}
