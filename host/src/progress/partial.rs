//! Partial output: what an actor emits while its call runs (an LLM's tokens as they
//! arrive), for whoever follows the envelope.
//!
//! A chunk is JSON text, as everything a guest hands the node. It is advisory: a
//! follower may miss some, the call's result is what counts. So it is bounded per call
//! ([`PARTIALS_PER_CALL`] chunks, [`PARTIAL_BYTES_PER_CALL`] bytes; past either, chunks
//! are dropped and counted), never written to the data directory's store, and kept only
//! in a small ring per submission ([`PARTIALS_KEPT`]) for followers to read: an
//! envelope nobody follows costs that ring and nothing more.
//!
//! A runtime gets a [`Partials`] per call, naming the hop; where the chunks go is a
//! [`PartialTarget`] (the node's outcomes), so this module knows nothing of them.

use super::event::{At, Hop};
use crate::metrics::metrics;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Chunks one call may emit; later ones are dropped and counted.
pub const PARTIALS_PER_CALL: usize = 1024;
/// Bytes of chunks one call may emit, in all.
pub const PARTIAL_BYTES_PER_CALL: usize = 1 << 20;
/// Chunks kept per submission for its followers: the latest, oldest dropped first.
pub const PARTIALS_KEPT: usize = 64;

/// One chunk of partial output of one hop.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartialEvent {
    /// The order of this chunk among its submission's chunks, from 1 (a gap says a
    /// follower missed some).
    pub n: u64,
    #[serde(flatten)]
    pub hop: Arc<Hop>,
    /// The chunk, as the actor emitted it.
    pub chunk: Value,
    pub at: At,
    /// How many progress events the submission had when the chunk came: it is read
    /// after those and before the next.
    #[serde(skip)]
    pub after: u64,
    /// The length of the chunk's text as emitted, for the bounds of what is kept.
    #[serde(skip)]
    pub bytes: usize,
}

/// Where chunks go: the record of submission `root`.
pub trait PartialTarget: Send + Sync + 'static {
    /// Keeps `event` for the followers of `root`, numbering it.
    fn partial(&self, root: &str, event: PartialEvent);
}

/// Why a chunk was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// The call emitted [`PARTIALS_PER_CALL`] chunks already.
    Count,
    /// The call's chunks would pass [`PARTIAL_BYTES_PER_CALL`].
    Bytes,
    /// The chunk is not JSON text.
    NotJson,
    /// It names no call in flight (the async world names calls by envelope id).
    NoCall,
    /// Nobody could follow it here (in a pool, followers read the pool's store).
    NoFollower,
}

impl Dropped {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Dropped::Count => "count",
            Dropped::Bytes => "bytes",
            Dropped::NotJson => "not_json",
            Dropped::NoCall => "no_call",
            Dropped::NoFollower => "no_follower",
        }
    }
}

/// Counts a chunk of `actor` dropped for `why`.
pub fn count_dropped(actor: &str, why: Dropped) {
    metrics()
        .partials_dropped
        .with_label_values(&[actor, why.as_str()])
        .inc();
}

/// The partial output of one call: where its chunks go, and what it emitted so far.
/// Cheap to clone (the clones share the call's bounds); [`Partials::none`] drops every
/// chunk uncounted, for calls nobody could follow.
#[derive(Clone, Default)]
pub struct Partials(Option<Arc<Sink>>);

struct Sink {
    target: Arc<dyn PartialTarget>,
    root: String,
    hop: Arc<Hop>,
    emitted: AtomicUsize,
    bytes: AtomicUsize,
}

impl std::fmt::Debug for Partials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(sink) => write!(formatter, "Partials({} at {})", sink.root, sink.hop.actor),
            None => formatter.write_str("Partials(none)"),
        }
    }
}

impl Partials {
    /// Chunks go nowhere.
    pub fn none() -> Partials {
        Partials(None)
    }

    /// The chunks of `hop`'s call go to `target`, in the record of submission `root`.
    pub fn to(target: Arc<dyn PartialTarget>, root: String, hop: Arc<Hop>) -> Partials {
        Partials(Some(Arc::new(Sink {
            target,
            root,
            hop,
            emitted: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
        })))
    }

    /// Hands one chunk on, or says why not (counted).
    pub fn emit(&self, chunk: &str) -> Result<(), Dropped> {
        let Some(sink) = &self.0 else {
            return Ok(());
        };
        let dropped = |why| {
            count_dropped(&sink.hop.actor, why);
            Err(why)
        };
        if sink.emitted.fetch_add(1, Ordering::Relaxed) >= PARTIALS_PER_CALL {
            return dropped(Dropped::Count);
        }
        let before = sink.bytes.fetch_add(chunk.len(), Ordering::Relaxed);
        if before.saturating_add(chunk.len()) > PARTIAL_BYTES_PER_CALL {
            return dropped(Dropped::Bytes);
        }
        let bytes = chunk.len();
        let Ok(chunk) = serde_json::from_str::<Value>(chunk) else {
            return dropped(Dropped::NotJson);
        };
        metrics()
            .partials
            .with_label_values(&[&sink.hop.actor])
            .inc();
        sink.target.partial(
            &sink.root,
            PartialEvent {
                n: 0,
                hop: sink.hop.clone(),
                chunk,
                at: At::now(),
                after: 0,
                bytes,
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Kept(Mutex<Vec<(String, PartialEvent)>>);

    impl PartialTarget for Kept {
        fn partial(&self, root: &str, event: PartialEvent) {
            self.0.lock().unwrap().push((root.to_owned(), event));
        }
    }

    fn hop(actor: &str) -> Arc<Hop> {
        Arc::new(Hop {
            envelope_id: "e".into(),
            branch: String::new(),
            actor: actor.into(),
            index: 1,
            route: vec!["a".into(), actor.into()],
        })
    }

    /// A call of `actor` whose chunks are kept for the test to read.
    fn call_of(actor: &str) -> (Arc<Kept>, Partials) {
        let kept = Arc::new(Kept::default());
        let partials = Partials::to(kept.clone(), "root".into(), hop(actor));
        (kept, partials)
    }

    fn dropped(actor: &str, why: Dropped) -> u64 {
        metrics()
            .partials_dropped
            .with_label_values(&[actor, why.as_str()])
            .get()
    }

    #[test]
    fn chunks_reach_the_target_as_json_with_their_hop() {
        let (kept, partials) = call_of("partial-test-json");
        partials.emit(r#""Hello""#).unwrap();
        partials.emit(r#"{"delta": " world"}"#).unwrap();
        let kept = kept.0.lock().unwrap();
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].0, "root");
        assert_eq!(kept[0].1.chunk, Value::from("Hello"));
        assert_eq!(kept[1].1.chunk["delta"], " world");
        assert_eq!(kept[1].1.hop.index, 1);
    }

    #[test]
    fn a_runaway_call_is_cut_at_its_bound_and_counted() {
        let actor = "partial-test-runaway";
        let (kept, partials) = call_of(actor);
        for _ in 0..PARTIALS_PER_CALL + 10 {
            let _ = partials.emit("1");
        }
        assert_eq!(kept.0.lock().unwrap().len(), PARTIALS_PER_CALL);
        assert_eq!(dropped(actor, Dropped::Count), 10);
    }

    #[test]
    fn the_bytes_of_a_call_are_bounded_too() {
        let actor = "partial-test-bytes";
        let (kept, partials) = call_of(actor);
        let big = format!("\"{}\"", "x".repeat(PARTIAL_BYTES_PER_CALL / 2));
        assert_eq!(partials.emit(&big), Ok(()));
        assert_eq!(partials.emit(&big), Err(Dropped::Bytes));
        assert_eq!(kept.0.lock().unwrap().len(), 1);
        assert_eq!(dropped(actor, Dropped::Bytes), 1);
    }

    #[test]
    fn text_that_is_not_json_is_dropped_and_counted() {
        let actor = "partial-test-text";
        let (kept, partials) = call_of(actor);
        assert_eq!(partials.emit("not json"), Err(Dropped::NotJson));
        assert!(kept.0.lock().unwrap().is_empty());
        assert_eq!(dropped(actor, Dropped::NotJson), 1);
    }

    #[test]
    fn without_a_target_chunks_go_nowhere() {
        assert_eq!(Partials::none().emit("not even json"), Ok(()));
    }
}
