//! A submission followed to its end: its progress events (and, between them, the
//! chunks of partial output its calls emit), then its outcome, as a stream that the
//! SSE endpoints render in their own words.
//!
//! The stream reads the submission's record from a cursor ([`Outcomes::follow`]) in
//! small batches, and parks on a `oneshot` between events, so a follower holds no
//! buffer of its own and a slow client only slows its own reads. In a pool, hops run
//! on every node: the stream reads the events from the pool's store, polling with
//! backoff while the submission runs, and ends with the pool's outcome.

use crate::outcomes::{Followed, Lookup, OutcomeView, Outcomes, Status};
use crate::progress::{PartialEvent, ProgressEvent};
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
    /// A chunk of partial output of a call (advisory: a follower may miss some).
    Partial(PartialEvent),
    /// The last step: the submission ended.
    Ended(OutcomeView),
    /// The last step: the record was dropped to keep the node within its bounds.
    Evicted,
}

struct Cursor {
    outcomes: Arc<Outcomes>,
    id: String,
    after: u64,
    /// The number of the last chunk of partial output read.
    partial_after: u64,
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
        partial_after: 0,
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
        let followed = self
            .outcomes
            .follow(&self.id, self.after, self.partial_after, BATCH);
        let wake = match followed {
            Followed::Known {
                events,
                partials,
                ended,
                wake,
                ..
            } => {
                self.read(events, partials);
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

    /// Queues `events` with the chunks of partial output between them, each chunk
    /// after the event it came after; chunks that came before the cursor (a client
    /// resuming) are skipped.
    fn read(&mut self, events: Vec<ProgressEvent>, partials: Vec<PartialEvent>) {
        if let Some(last) = partials.last() {
            self.partial_after = last.n;
        }
        let start = self.after;
        let mut partials = partials
            .into_iter()
            .filter(|partial| partial.after >= start)
            .peekable();
        for event in events {
            while let Some(partial) = partials.next_if(|partial| partial.after < event.seq) {
                self.queue.push_back(Step::Partial(partial));
            }
            self.after = event.seq;
            self.queue.push_back(Step::Event(event));
        }
        self.queue.extend(partials.map(Step::Partial));
    }

    fn finish(&mut self, last: Step) {
        self.queue.push_back(last);
        self.done = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Headers;
    use crate::outcomes::tests::envelope;
    use crate::progress::Stage;
    use crate::progress::event::{At, Hop};
    use crate::progress::partial::PartialTarget;
    use crate::records::End;
    use futures::StreamExt;
    use serde_json::{Value, json};

    fn hop() -> Arc<Hop> {
        Arc::new(Hop {
            envelope_id: "r".into(),
            branch: String::new(),
            actor: "a".into(),
            index: 0,
            route: vec!["a".into()],
        })
    }

    fn event(stage: Stage) -> ProgressEvent {
        ProgressEvent::new(hop(), stage, At::now())
    }

    fn chunk(text: &str) -> PartialEvent {
        PartialEvent {
            n: 0,
            hop: hop(),
            chunk: Value::from(text),
            at: At::now(),
            after: 0,
            bytes: text.len(),
        }
    }

    /// A submission whose hop emitted two chunks while it ran, then ended.
    async fn streamed() -> Arc<Outcomes> {
        let outcomes = Arc::new(Outcomes::default());
        outcomes.submitted("r").await;
        outcomes.progress("r", [event(Stage::Received), event(Stage::Processing)]);
        outcomes.partial("r", chunk("a"));
        outcomes.partial("r", chunk("b"));
        outcomes.progress("r", [event(Stage::Completed)]);
        outcomes
            .record(End::Happy, envelope("r", Headers::new(), json!({})), 1)
            .await
            .expect("recorded");
        outcomes
    }

    async fn steps(outcomes: Arc<Outcomes>, after: u64) -> Vec<String> {
        follow(outcomes, "r".into(), after, CancellationToken::new())
            .map(|step| match step {
                Step::Event(event) => event.stage.as_str().to_owned(),
                Step::Partial(partial) => format!("{}#{}", partial.chunk, partial.n),
                Step::Ended(_) => "ended".to_owned(),
                Step::Evicted => "evicted".to_owned(),
            })
            .collect()
            .await
    }

    #[tokio::test]
    async fn chunks_come_between_the_events_of_their_hop() {
        assert_eq!(
            steps(streamed().await, 0).await,
            [
                "received",
                "processing",
                "\"a\"#1",
                "\"b\"#2",
                "completed",
                "ended"
            ]
        );
    }

    #[tokio::test]
    async fn a_follower_that_resumes_skips_the_chunks_before_its_cursor() {
        assert_eq!(
            steps(streamed().await, 2).await,
            ["\"a\"#1", "\"b\"#2", "completed", "ended"]
        );
        assert_eq!(steps(streamed().await, 3).await, ["ended"]);
    }
}
