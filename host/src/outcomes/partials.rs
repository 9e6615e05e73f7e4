//! The partial output of a submission's calls, for its followers: a small ring of the
//! latest chunks per record, numbered, never journaled.
//!
//! Each chunk notes how many progress events the record held when it came
//! ([`PartialEvent::after`]), so a follower reads it after the hop's `processing` and
//! before its `completed`, whatever batch either falls in. The ring is bounded in count
//! ([`PARTIALS_KEPT`]) and bytes ([`PARTIAL_BYTES_KEPT`]); its bytes count toward the
//! record's, so the outcome store's own bound still holds. In a pool, followers read a
//! submission's events from the pool's store, where chunks are not carried: there they
//! are dropped and counted (`no_follower`).

use super::Outcomes;
use crate::progress::partial::{PARTIALS_KEPT, PartialEvent, PartialTarget};
use std::collections::VecDeque;

/// Bytes of chunks kept per submission (the newest chunk is kept whatever its size).
pub const PARTIAL_BYTES_KEPT: usize = 256 * 1024;

/// The latest chunks of one submission.
#[derive(Debug, Default)]
pub(super) struct PartialRing {
    kept: VecDeque<(PartialEvent, usize)>,
    /// The number the next chunk gets, less one.
    emitted: u64,
    bytes: usize,
}

impl PartialRing {
    /// Keeps `event` (its chunk `size` bytes), read after event `after`; the bytes kept
    /// now less those before, as (added, removed).
    fn push(&mut self, mut event: PartialEvent, size: usize, after: u64) -> (usize, usize) {
        self.emitted += 1;
        event.n = self.emitted;
        event.after = after;
        self.kept.push_back((event, size));
        self.bytes += size;
        let mut removed = 0;
        while self.kept.len() > PARTIALS_KEPT
            || (self.bytes > PARTIAL_BYTES_KEPT && self.kept.len() > 1)
        {
            if let Some((_, size)) = self.kept.pop_front() {
                self.bytes -= size;
                removed += size;
            }
        }
        (size, removed)
    }

    /// The chunks numbered after `after_n` that come after no more than `events` progress
    /// events, oldest first.
    pub(super) fn read(&self, after_n: u64, events: u64) -> Vec<PartialEvent> {
        self.kept
            .iter()
            .map(|(event, _)| event)
            .filter(|event| event.n > after_n && event.after <= events)
            .cloned()
            .collect()
    }

    /// The bytes of the chunks kept.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// What a kept chunk counts for beyond its text (its hop is shared with the events).
const OVERHEAD: usize = 64;

impl PartialTarget for Outcomes {
    fn partial(&self, root: &str, event: PartialEvent) {
        if self.progress_queue.is_some() {
            crate::progress::partial::count_dropped(
                &event.hop.actor,
                crate::progress::partial::Dropped::NoFollower,
            );
            return;
        }
        let size = OVERHEAD + event.bytes;
        let mut inner = self.lock();
        let Some(record) = inner.records.get_mut(root) else {
            return;
        };
        let after = record.events.len() as u64;
        let (added, removed) = record.partials.push(event, size, after);
        record.bytes = record.bytes + added - removed;
        record.wake_followers();
        inner.bytes = inner.bytes + added - removed;
        self.evict(&mut inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::event::{At, Hop};
    use serde_json::Value;
    use std::sync::Arc;

    fn chunk(text: &str) -> PartialEvent {
        PartialEvent {
            n: 0,
            hop: Arc::new(Hop {
                envelope_id: "e".into(),
                branch: String::new(),
                actor: "a".into(),
                index: 0,
                route: vec!["a".into()],
            }),
            chunk: Value::from(text),
            at: At::now(),
            after: 0,
            bytes: text.len(),
        }
    }

    #[test]
    fn chunks_are_numbered_and_read_after_their_events() {
        let mut ring = PartialRing::default();
        ring.push(chunk("a"), 1, 2);
        ring.push(chunk("b"), 1, 2);
        ring.push(chunk("c"), 1, 3);
        let numbers = |events: Vec<PartialEvent>| events.iter().map(|e| e.n).collect::<Vec<_>>();
        assert_eq!(numbers(ring.read(0, 2)), vec![1, 2]);
        assert_eq!(numbers(ring.read(0, 3)), vec![1, 2, 3]);
        assert_eq!(numbers(ring.read(2, 3)), vec![3]);
        assert!(ring.read(0, 1).is_empty());
    }

    #[test]
    fn the_ring_keeps_the_latest_within_its_count_and_bytes() {
        let mut ring = PartialRing::default();
        for _ in 0..PARTIALS_KEPT + 5 {
            ring.push(chunk("x"), 10, 0);
        }
        let kept = ring.read(0, 0);
        assert_eq!(kept.len(), PARTIALS_KEPT);
        assert_eq!(kept[0].n, 6);
        assert_eq!(ring.bytes(), PARTIALS_KEPT * 10);
        let (added, removed) = ring.push(chunk("big"), PARTIAL_BYTES_KEPT, 0);
        assert_eq!(added, PARTIAL_BYTES_KEPT);
        assert_eq!(removed, PARTIALS_KEPT * 10);
        assert_eq!(ring.read(0, 0).len(), 1);
    }
}
