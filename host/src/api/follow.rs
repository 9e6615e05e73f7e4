//! A submission followed to its end: its progress events, then its outcome, as a
//! stream that the SSE endpoints render in their own words.
//!
//! The stream reads the submission's record from a cursor ([`Outcomes::follow`]) in
//! small batches, and parks on a `oneshot` between events, so a follower holds no
//! buffer of its own and a slow client only slows its own reads. In a pool the
//! submission may end on another node: then the stream also polls the pool's store
//! for the outcome while it waits.

use crate::outcomes::{Followed, Lookup, OutcomeView, Outcomes, Status};
use crate::progress::ProgressEvent;
use futures::Stream;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Events read from the record at a time.
const BATCH: usize = 64;
/// How often a follower in a pool asks the store whether the submission ended.
const POOL_POLL: Duration = Duration::from_millis(500);

/// What a follower sees, in order.
#[derive(Debug)]
pub enum Step {
    Event(ProgressEvent),
    /// The last step: the submission ended.
    Ended(OutcomeView),
    /// The last step: the record was dropped to keep the node within its bounds.
    Evicted,
}

struct Cursor {
    outcomes: Arc<Outcomes>,
    id: String,
    after: u64,
    queue: VecDeque<Step>,
    done: bool,
    stopping: CancellationToken,
}

/// Whether a submission can be followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    Yes,
    /// Known once, and dropped to keep the node within its bounds.
    Evicted,
    No,
}

/// Whether submission `id` is known here (or, in a pool, in the store).
pub async fn known(outcomes: &Outcomes, id: &str) -> Known {
    match outcomes.get(id).await {
        Lookup::Found(_) => Known::Yes,
        Lookup::Evicted => Known::Evicted,
        Lookup::Unknown => Known::No,
    }
}

/// Follows submission `id` from after event `after` to its end; the stream ends early
/// when the node stops.
pub fn follow(
    outcomes: Arc<Outcomes>,
    id: String,
    after: u64,
    stopping: CancellationToken,
) -> impl Stream<Item = Step> + Send {
    let cursor = Cursor {
        outcomes,
        id,
        after,
        queue: VecDeque::new(),
        done: false,
        stopping,
    };
    futures::stream::unfold(cursor, |mut cursor| async move {
        loop {
            if let Some(step) = cursor.queue.pop_front() {
                return Some((step, cursor));
            }
            if cursor.done {
                return None;
            }
            cursor.advance().await;
        }
    })
}

impl Cursor {
    /// Reads what is new, or waits for something to be.
    async fn advance(&mut self) {
        let wake = match self.outcomes.follow(&self.id, self.after, BATCH) {
            Followed::Known {
                events,
                ended,
                wake,
                ..
            } => {
                if let Some(last) = events.last() {
                    self.after = last.seq;
                }
                self.queue.extend(events.into_iter().map(Step::Event));
                if let Some(view) = ended {
                    self.finish(Step::Ended(view));
                }
                wake
            }
            Followed::Evicted => {
                self.finish(Step::Evicted);
                None
            }
            // Not (or no longer) here: in a pool it may still end on another node.
            Followed::Unknown if self.outcomes.is_shared() => None,
            Followed::Unknown => {
                self.finish(Step::Evicted);
                None
            }
        };
        if self.done || !self.queue.is_empty() {
            return;
        }
        let shared = self.outcomes.is_shared();
        tokio::select! {
            _ = async { if let Some(wake) = wake { let _ = wake.await; } else { std::future::pending::<()>().await } } => {}
            _ = self.stopping.cancelled() => self.done = true,
            _ = tokio::time::sleep(POOL_POLL), if shared => {
                if let Lookup::Found(view) = self.outcomes.get(&self.id).await
                    && view.status != Status::Pending
                {
                    self.finish(Step::Ended(view));
                }
            }
        }
    }

    fn finish(&mut self, last: Step) {
        self.queue.push_back(last);
        self.done = true;
    }
}
