//! Following a submission: its progress events kept beside its outcome, read from a
//! cursor. In a pool the events go to the pool's store instead (written in batches
//! behind the hops) and are read from there, so any node follows any submission.
//!
//! Events live once, in the submission's record; a follower holds only a cursor (the
//! `seq` of the last event it read) and, while it waits, one `oneshot` in the record's
//! watchers. So a slow follower costs the node no buffer: what it has not read is the
//! record it would read anyway, bounded with the record ([`crate::progress::EVENTS_KEPT`]
//! per submission, and the store's count and bytes bounds, oldest first).

use super::{Inner, OutcomeView, Outcomes, SharedOutcomes};
use crate::metrics::metrics;
use crate::progress::{EVENTS_KEPT, PartialEvent, ProgressEvent};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The fixed size counted per event, beside its strings.
const EVENT_OVERHEAD: usize = 128;

/// What a follower finds after its cursor.
#[derive(Debug)]
pub enum Followed {
    /// Events after the cursor (at most the number asked for) and, once the
    /// submission ended and every event was read, its outcome. With neither, `wake`
    /// fires at the next event, the end or eviction.
    Known {
        /// The events after the cursor, oldest first.
        events: Vec<ProgressEvent>,
        /// The chunks of partial output after the chunk cursor that come before the
        /// next event not read, oldest first (each after the event its `after` says).
        partials: Vec<PartialEvent>,
        /// The submission's outcome, once it ended and every event was read.
        ended: Option<OutcomeView>,
        /// Events never kept (past the bound per submission).
        dropped: u64,
        /// Fires at the next event, the end or eviction; set only when there are no events and no
        /// outcome.
        wake: Option<oneshot::Receiver<()>>,
    },
    /// Known once, and dropped to stay within the store's bounds.
    Evicted,
    /// Never known here.
    Unknown,
}

fn event_size(event: &ProgressEvent) -> usize {
    EVENT_OVERHEAD
        + event.hop.envelope_id.len()
        + event.hop.branch.len()
        + event.hop.actor.len()
        + event.hop.route.iter().map(String::len).sum::<usize>()
        + event.next.iter().map(String::len).sum::<usize>()
        + event.children.iter().map(String::len).sum::<usize>()
        + event.message.as_ref().map_or(0, String::len)
}

/// Progress events waiting for the pool's store, at most; past this they are dropped
/// and counted (progress is advisory; the envelope is not).
const STORE_QUEUE: usize = 16_384;
/// Events written to the store in one statement, at most.
const STORE_BATCH: usize = 512;

/// Starts the task that writes progress events to the pool's store, in batches: what
/// queued while one batch was written goes in the next (a group commit).
/// It is flushed at stop: what is queued then is written before the task ends.
pub(super) fn start_progress_writer(
    shared: Arc<dyn SharedOutcomes>,
) -> (
    mpsc::Sender<(String, ProgressEvent)>,
    crate::background::Flushed,
) {
    let (queue, mut events) = mpsc::channel(STORE_QUEUE);
    let writer = crate::background::Flushed::spawn(|finish| async move {
        let mut batch = Vec::with_capacity(STORE_BATCH);
        loop {
            let taken = tokio::select! {
                biased;
                taken = events.recv_many(&mut batch, STORE_BATCH) => taken,
                _ = finish.cancelled() => {
                    while batch.len() < STORE_BATCH {
                        match events.try_recv() {
                            Ok(event) => batch.push(event),
                            Err(_) => break,
                        }
                    }
                    batch.len()
                }
            };
            if taken == 0 {
                return;
            }
            let count = batch.len();
            if let Err(error) = shared.progress(std::mem::take(&mut batch)).await {
                metrics().progress_dropped.inc_by(count as u64);
                tracing::debug!(error = %crate::error_chain::chain(&error), count, "progress events did not reach the pool's store");
            }
        }
    });
    (queue, writer)
}

/// Puts back events the data directory's store kept (JSON, in order) into `record`;
/// the bytes they take.
pub(super) fn restore_events(record: &mut super::record::Record, events: Vec<Vec<u8>>) -> usize {
    let mut added = 0;
    for json in events {
        if record.events.len() >= EVENTS_KEPT {
            break;
        }
        match serde_json::from_slice::<ProgressEvent>(&json) {
            Ok(event) => {
                added += event_size(&event);
                record.events.push(event);
            }
            Err(error) => tracing::warn!(%error, "a progress event in the store cannot be read"),
        }
    }
    record.bytes += added;
    added
}

impl Outcomes {
    /// Records progress events of submission `root`, numbering them in order; with a
    /// pool's store, queues them for it instead (where the store numbers them).
    /// Events for a submission evicted already are not kept (it would read as
    /// pending again).
    pub fn progress(&self, root: &str, events: impl IntoIterator<Item = ProgressEvent>) {
        if let Some(queue) = &self.progress_queue {
            for event in events {
                if queue.try_send((root.to_owned(), event)).is_err() {
                    metrics().progress_dropped.inc();
                }
            }
            return;
        }
        let mut inner = self.lock();
        if inner.evicted.ids.contains(root) {
            return;
        }
        let record = self.entry(&mut inner, root);
        let mut added = 0;
        let mut kept = Vec::new();
        for mut event in events {
            if record.events.len() >= EVENTS_KEPT {
                record.events_dropped += 1;
                continue;
            }
            // Nothing is kept past the bound, so an event's number is its position.
            event.seq = record.events.len() as u64 + 1;
            added += event_size(&event);
            if self.journal.is_some() {
                kept.push(event.clone());
            }
            record.events.push(event);
        }
        record.bytes += added;
        record.wake_followers();
        inner.bytes += added;
        self.evict(&mut inner);
        drop(inner);
        if let Some(journal) = &self.journal {
            journal.events(root, kept);
        }
    }

    /// The progress events of submission `id`, in order: from the pool's store where
    /// there is one (none while it is unreachable), else those kept here.
    pub async fn events(&self, id: &str) -> Vec<ProgressEvent> {
        if self.shared.is_some() {
            return self
                .events_after(id, 0, EVENTS_KEPT)
                .await
                .unwrap_or_default();
        }
        self.lock()
            .records
            .get(id)
            .map(|record| record.events.clone())
            .unwrap_or_default()
    }

    /// With a pool's store: up to `max` events of submission `id` after event `after`,
    /// as the store numbers them. `None` without a store, or when it is unreachable.
    pub async fn events_after(
        &self,
        id: &str,
        after: u64,
        max: usize,
    ) -> Option<Vec<ProgressEvent>> {
        let shared = self.shared.as_ref()?;
        match shared.events_after(id.to_owned(), after, max).await {
            Ok(events) => Some(events),
            Err(error) => {
                tracing::debug!(error = %crate::error_chain::chain(&error), "progress read from the pool's store failed");
                None
            }
        }
    }

    /// Up to `max` events of submission `id` after event `after`, the chunks of
    /// partial output after chunk `partial_after` that come before the next event, or
    /// how to wait for more.
    pub fn follow(&self, id: &str, after: u64, partial_after: u64, max: usize) -> Followed {
        let mut inner = self.lock();
        let Inner {
            records, evicted, ..
        } = &mut *inner;
        let Some(record) = records.get_mut(id) else {
            return if evicted.ids.contains(id) {
                Followed::Evicted
            } else {
                Followed::Unknown
            };
        };
        let kept = record.events.len();
        let start = usize::try_from(after).map_or(kept, |after| after.min(kept));
        let end = start.saturating_add(max).min(kept);
        let events = record.events[start..end].to_vec();
        let partials = record.partials.read(partial_after, end as u64);
        let read_all = end == kept;
        let ended = (read_all && record.is_complete()).then(|| record.view(id));
        let wake = (events.is_empty() && partials.is_empty() && ended.is_none()).then(|| {
            let (sender, receiver) = oneshot::channel();
            record.watchers.retain(|watcher| !watcher.is_closed());
            record.watchers.push(sender);
            receiver
        });
        Followed::Known {
            events,
            partials,
            ended,
            dropped: record.events_dropped,
            wake,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Headers;
    use crate::outcomes::tests::envelope;
    use crate::outcomes::{OutcomeLimits, Status};
    use crate::progress::Stage;
    use crate::progress::event::{At, Hop};
    use crate::records::End;
    use serde_json::json;

    fn event(stage: Stage) -> ProgressEvent {
        let hop = Hop {
            envelope_id: "r".into(),
            branch: String::new(),
            actor: "a".into(),
            index: 0,
            route: vec!["a".into()],
        };
        ProgressEvent::new(Arc::new(hop), stage, At::now())
    }

    /// The wait a follow of `id` offers, with nothing new to read.
    fn wait_offered(outcomes: &Outcomes, id: &str) -> oneshot::Receiver<()> {
        match outcomes.follow(id, 0, 0, 10) {
            Followed::Known {
                wake: Some(wake), ..
            } => wake,
            other => panic!("no wait offered: {other:?}"),
        }
    }

    fn known(followed: Followed) -> (Vec<ProgressEvent>, Option<OutcomeView>, bool) {
        match followed {
            Followed::Known {
                events,
                ended,
                wake,
                ..
            } => (events, ended, wake.is_some()),
            other => panic!("not known: {other:?}"),
        }
    }

    #[tokio::test]
    async fn events_are_numbered_and_read_after_a_cursor() {
        let outcomes = Outcomes::default();
        outcomes.submitted("r").await;
        outcomes.progress("r", [event(Stage::Received), event(Stage::Processing)]);
        let (events, ended, waits) = known(outcomes.follow("r", 0, 0, 10));
        assert_eq!(
            events.iter().map(|event| event.seq).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert!(ended.is_none() && !waits);
        let (events, _, _) = known(outcomes.follow("r", 1, 0, 10));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].stage, Stage::Processing);
    }

    #[tokio::test]
    async fn a_follower_waits_and_is_woken_by_the_next_event() {
        let outcomes = Outcomes::default();
        outcomes.submitted("r").await;
        let wake = wait_offered(&outcomes, "r");
        outcomes.progress("r", [event(Stage::Received)]);
        wake.await.expect("woken by the event");
    }

    #[tokio::test]
    async fn the_outcome_comes_after_every_event_was_read() {
        let outcomes = Outcomes::default();
        outcomes.submitted("r").await;
        outcomes.progress("r", [event(Stage::Received), event(Stage::Completed)]);
        outcomes
            .record(End::Happy, envelope("r", Headers::new(), json!("done")), 10)
            .await
            .expect("recorded");
        let (events, ended, _) = known(outcomes.follow("r", 0, 0, 1));
        assert_eq!(events.len(), 1);
        assert!(ended.is_none(), "an event is still unread");
        let (events, ended, waits) = known(outcomes.follow("r", 1, 0, 10));
        assert_eq!(events.len(), 1);
        assert_eq!(ended.expect("ended").status, Status::Succeeded);
        assert!(!waits);
    }

    #[tokio::test]
    async fn events_past_the_bound_are_counted_not_kept() {
        let outcomes = Outcomes::default();
        outcomes.submitted("r").await;
        outcomes.progress("r", (0..EVENTS_KEPT + 5).map(|_| event(Stage::Received)));
        match outcomes.follow("r", 0, 0, usize::MAX) {
            Followed::Known {
                events, dropped, ..
            } => {
                assert_eq!(events.len(), EVENTS_KEPT);
                assert_eq!(dropped, 5);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn eviction_wakes_a_follower_and_then_reads_as_evicted() {
        let outcomes = Outcomes::bounded(OutcomeLimits {
            count: 1,
            bytes: usize::MAX,
        });
        outcomes.submitted("r").await;
        let wake = wait_offered(&outcomes, "r");
        outcomes.submitted("s").await;
        assert!(wake.await.is_err(), "woken by the record going");
        assert!(matches!(outcomes.follow("r", 0, 0, 10), Followed::Evicted));
        outcomes.progress("r", [event(Stage::Received)]);
        assert!(
            matches!(outcomes.follow("r", 0, 0, 10), Followed::Evicted),
            "a late event does not bring it back"
        );
    }

    #[test]
    fn an_unknown_submission_is_unknown() {
        let outcomes = Outcomes::default();
        assert!(matches!(outcomes.follow("x", 0, 0, 10), Followed::Unknown));
    }
}
