//! A submission followed to its end: its progress events, then its outcome, as a
//! stream that the SSE endpoints render in their own words.
//!
//! The stream reads the submission's record from a cursor ([`Outcomes::follow`]) in
//! small batches, and parks on a `oneshot` between events, so a follower holds no
//! buffer of its own and a slow client only slows its own reads. In a pool, hops run
//! on every node: the stream reads the events from the pool's store, polling with
//! backoff while the submission runs, and ends with the pool's outcome.

use crate::outcomes::{Followed, Lookup, OutcomeView, Outcomes, Status};
use crate::progress::ProgressEvent;
use futures::Stream;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Events read from the record at a time.
const BATCH: usize = 64;
/// How often a follower in a pool reads the store, at first and at most.
const POOL_POLL_FIRST: Duration = Duration::from_millis(50);
const POOL_POLL: Duration = Duration::from_millis(500);
/// How long the store must stay without new events of a submission that ended in a
/// pool before its stream ends (events are written behind the hops).
const POOL_FLUSH: Duration = Duration::from_millis(500);

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
    /// In a pool: the pause before the next read, the outcome once it ended, and
    /// whether the store stayed without new events for [`POOL_FLUSH`] since.
    pause: Duration,
    ended: Option<OutcomeView>,
    settled: bool,
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
        pause: POOL_POLL_FIRST,
        ended: None,
        settled: false,
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
        if self.outcomes.is_shared() {
            return self.advance_in_pool().await;
        }
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
            // Known when the stream began: gone since, to keep the node in its bounds.
            Followed::Evicted | Followed::Unknown => {
                self.finish(Step::Evicted);
                None
            }
        };
        if self.done || !self.queue.is_empty() {
            return;
        }
        let Some(wake) = wake else {
            return;
        };
        tokio::select! {
            _ = wake => {}
            _ = self.stopping.cancelled() => self.done = true,
        }
    }

    /// In a pool: reads the store's events after the cursor, or, with none new, asks
    /// whether the submission ended; polls, backing off, while it runs. Once it ended,
    /// the stream ends when a read [`POOL_FLUSH`] after the last new event finds
    /// nothing more, since events are written behind the hops and the outcome is not.
    async fn advance_in_pool(&mut self) {
        if let Some(events) = self
            .outcomes
            .events_after(&self.id, self.after, BATCH)
            .await
            && let Some(last) = events.last()
        {
            self.after = last.seq;
            self.queue.extend(events.into_iter().map(Step::Event));
            self.pause = POOL_POLL_FIRST;
            self.settled = false;
            return;
        }
        if self.settled
            && let Some(view) = self.ended.take()
        {
            self.finish(Step::Ended(view));
            return;
        }
        if self.ended.is_none()
            && let Lookup::Found(view) = self.outcomes.get(&self.id).await
            && view.status != Status::Pending
        {
            self.ended = Some(view);
        }
        let wait = if self.ended.is_some() {
            // Ended: one more read after the store has had time to catch up.
            self.settled = true;
            POOL_FLUSH
        } else {
            let pause = self.pause;
            self.pause = (self.pause * 2).min(POOL_POLL);
            pause
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = self.stopping.cancelled() => self.done = true,
        }
    }

    fn finish(&mut self, last: Step) {
        self.queue.push_back(last);
        self.done = true;
    }
}
