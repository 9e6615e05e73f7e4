//! The final outcome of each submitted envelope, as the end actors record it.
//!
//! `happy-end` and `error-end` call [`Outcomes::record`] for every envelope they take.
//! Outcomes are kept per *submission* (the id the node assigned, or the id a producer
//! chose): fan-out children are folded into their root through the branch headers, and
//! the submission is `pending` until every branch has ended ([`record`]).
//!
//! The store is bounded twice: by the number of submissions and by the bytes of the
//! envelopes it keeps; past either, the oldest submissions go first. An id that went
//! is remembered for a while as evicted, so that a reader learns its outcome is gone
//! rather than that it never existed. Waiters (`GET /v1/envelopes/{id}?wait=…`) park on
//! their own submission and are woken only when it completes or goes, so thousands of
//! waiters cost nothing per event.
//!
//! With a pool's store ([`shared`]), every ended branch is written there before its
//! message is acked, and a submission is read from there on any node; the local record
//! answers while the store is unreachable.
//!
//! With the data directory's store ([`crate::data_dir::journal`]), what is kept here is also
//! written there: an ended branch before its message is acked, submissions, progress
//! and evictions behind. At start [`Outcomes::restore`] reads it back, oldest first,
//! within the same bounds, so outcomes recorded before a crash are still answered.

pub mod deadlines;
pub mod details;
pub mod follow;
pub mod partials;
pub mod record;
pub mod shared;
pub mod submission;

use crate::branch::Branch;
use crate::data_dir::journal::{Journal, JournalError, StoredSubmission};
use crate::data_dir::outcome_writes::OutcomeJournal;
use crate::envelope::Envelope;
use crate::metrics::metrics;
use crate::records::End;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

pub use details::Details;
pub use follow::Followed;
pub use record::{EndedView, OutcomeView, Status, fold};
pub use shared::{SharedError, SharedOutcomes};
pub use submission::{Deadline, Submission};

use record::Record;

/// Why an outcome could not be kept: the message stays queued until it can be.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The pool's shared store could not keep it.
    #[error(transparent)]
    Shared(#[from] SharedError),
    /// The data directory's store could not keep it.
    #[error("the outcome could not be kept in the data directory")]
    Journal(#[source] JournalError),
}

/// Failed submissions listed, at most.
const FAILED_LISTED: usize = 1000;

/// How much the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutcomeLimits {
    /// Submissions.
    pub count: usize,
    /// Bytes of ended envelopes.
    pub bytes: usize,
}

impl Default for OutcomeLimits {
    fn default() -> Self {
        OutcomeLimits {
            count: crate::defaults::OUTCOME_CAPACITY,
            bytes: crate::defaults::OUTCOME_MEMORY,
        }
    }
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// What is known of the submission.
    Found(OutcomeView),
    /// Known once, and dropped to stay within the store's bounds.
    Evicted,
    /// Never known here.
    Unknown,
}

impl Lookup {
    /// The view, when one was found.
    pub fn view(self) -> Option<OutcomeView> {
        match self {
            Lookup::Found(view) => Some(view),
            _ => None,
        }
    }
}

/// Ids that were evicted, remembered up to a bound of their own.
#[derive(Default)]
struct Evicted {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Evicted {
    fn remember(&mut self, id: String, bound: usize) {
        if self.ids.insert(id.clone()) {
            self.order.push_back(id);
        }
        while self.order.len() > bound {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
    }
}

#[derive(Default)]
struct Inner {
    records: HashMap<String, Record>,
    order: VecDeque<String>,
    failed: VecDeque<String>,
    bytes: usize,
    evicted: Evicted,
    /// Deadlines of tool calls, soonest first; each belongs to a record here.
    deadlines: std::collections::BTreeSet<(tokio::time::Instant, String)>,
    /// Fan-out children a sidecar registered (`POST /envelopes`), with their parent,
    /// oldest first, at most as many as submissions.
    parents: HashMap<String, String>,
    parents_order: VecDeque<String>,
}

/// Outcomes of submissions, bounded.
pub struct Outcomes {
    inner: Mutex<Inner>,
    limits: OutcomeLimits,
    shared: Option<Arc<dyn SharedOutcomes>>,
    /// With a pool's store: progress events on their way to it.
    progress_queue: Option<tokio::sync::mpsc::Sender<(String, crate::progress::ProgressEvent)>>,
    /// The task writing them, flushed at stop.
    progress_writer: Option<crate::background::Flushed>,
    /// The data directory's store, where outcomes outlive the process.
    journal: Option<OutcomeJournal>,
    /// Wakes the task that fails submissions at their deadline ([`deadlines`]).
    deadline_wake: Arc<tokio::sync::Notify>,
    /// Set once that task runs.
    deadline_task: std::sync::OnceLock<()>,
}

impl Default for Outcomes {
    fn default() -> Self {
        Outcomes::bounded(OutcomeLimits::default())
    }
}

impl Outcomes {
    /// Writes the progress events still queued for the pool's store, waiting up to
    /// `within`; called once, when the node stops.
    pub async fn flush_progress(&self, within: std::time::Duration) {
        if let Some(writer) = &self.progress_writer
            && !writer.flush(within).await
        {
            tracing::warn!(
                "progress events still queued for the pool's store after {within:?} were dropped"
            );
        }
    }

    /// At most `count` submissions, and the default bytes.
    pub fn new(count: usize) -> Self {
        Outcomes::bounded(OutcomeLimits {
            count,
            ..OutcomeLimits::default()
        })
    }

    /// An empty store that keeps at most `limits` (at least one submission).
    pub fn bounded(limits: OutcomeLimits) -> Self {
        Outcomes {
            inner: Mutex::new(Inner::default()),
            limits: OutcomeLimits {
                count: limits.count.max(1),
                bytes: limits.bytes,
            },
            shared: None,
            progress_queue: None,
            progress_writer: None,
            journal: None,
            deadline_wake: Arc::new(tokio::sync::Notify::new()),
            deadline_task: std::sync::OnceLock::new(),
        }
    }

    /// Outcomes and progress also kept in the data directory's store.
    pub fn with_journal(mut self, journal: Journal) -> Self {
        self.journal = Some(OutcomeJournal::new(journal));
        self
    }

    /// Takes back what the data directory's store kept (oldest first), within the
    /// bounds; what no longer fits is dropped from the store too.
    pub fn restore(&self, submissions: Vec<StoredSubmission>) {
        let mut inner = self.lock();
        for submission in submissions {
            let mut added = 0;
            let mut failed = false;
            let record = self.entry_noted(&mut inner, &submission.id, false);
            for ended in submission.ended {
                match Envelope::parse(&ended.envelope) {
                    Ok(envelope) => {
                        if record.add(ended.end, envelope, ended.size) {
                            added += ended.size;
                            failed |= ended.end == End::Error;
                        }
                    }
                    Err(rejected) => tracing::warn!(
                        envelope_id = %submission.id,
                        "an ended branch in the store cannot be read: {}", rejected.error
                    ),
                }
            }
            added += follow::restore_events(record, submission.events);
            inner.bytes += added;
            if failed {
                inner.failed.push_back(submission.id);
            }
        }
        while inner.failed.len() > self.limits.count.min(FAILED_LISTED) {
            inner.failed.pop_front();
        }
        self.evict(&mut inner);
    }

    /// Outcomes (and progress) also written to, and read from, a pool's store. Starts
    /// the task that writes progress there: call it on the node's runtime.
    pub fn with_shared(mut self, shared: Arc<dyn SharedOutcomes>) -> Self {
        let (queue, writer) = follow::start_progress_writer(shared.clone());
        self.progress_queue = Some(queue);
        self.progress_writer = Some(writer);
        self.shared = Some(shared);
        self
    }

    /// Whether outcomes are also kept in a pool's store (and may end on another node).
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain data behind; keep serving it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes a submission so that it reads as `pending` until it ends.
    pub async fn submitted(&self, id: &str) {
        self.submitted_as(id, None).await;
    }

    /// Notes a submission, with what it was as it was taken in.
    pub async fn submitted_as(&self, id: &str, submission: Option<Submission>) {
        {
            let mut inner = self.lock();
            let record = self.entry(&mut inner, id);
            if let Some(submission) = submission {
                let size = submission.size();
                if record.submission.is_none() {
                    record.bytes += size;
                    record.submission = Some(Arc::new(submission));
                    inner.bytes += size;
                }
            }
            self.evict(&mut inner);
        }
        if let Some(shared) = &self.shared
            && let Err(error) = shared.submitted(id.to_owned()).await
        {
            tracing::warn!(envelope_id = id, error = %crate::error_chain::chain(&error), "the submission is not in the store: other nodes answer for it once it ends");
        }
    }

    fn entry<'a>(&self, inner: &'a mut Inner, id: &str) -> &'a mut Record {
        self.entry_noted(inner, id, true)
    }

    /// The record of `id`, made when missing (and, with `note`, noted in the store).
    fn entry_noted<'a>(&self, inner: &'a mut Inner, id: &str, note: bool) -> &'a mut Record {
        if !inner.records.contains_key(id) {
            inner.order.push_back(id.to_owned());
            inner.evicted.ids.remove(id);
            if note && let Some(journal) = &self.journal {
                journal.submitted(id);
            }
        }
        inner.records.entry(id.to_owned()).or_default()
    }

    /// Drops the oldest submissions until both bounds hold (the newest always stays).
    fn evict(&self, inner: &mut Inner) {
        while inner.order.len() > self.limits.count
            || (inner.bytes > self.limits.bytes && inner.order.len() > 1)
        {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(record) = inner.records.remove(&oldest) {
                inner.bytes -= record.bytes;
                if let Some(deadline) = record
                    .submission
                    .as_ref()
                    .and_then(|kept| kept.deadline)
                    .map(|deadline| deadline.due)
                {
                    inner.deadlines.remove(&(deadline, oldest.clone()));
                }
                // Dropping the waiters' senders wakes them.
                drop(record);
            }
            if let Some(journal) = &self.journal {
                journal.forget(&oldest);
            }
            inner.evicted.remember(oldest, self.limits.count);
            metrics().outcomes_evicted.inc();
        }
        metrics()
            .outcomes_bytes
            .set(i64::try_from(inner.bytes).unwrap_or(i64::MAX));
    }

    /// Records an envelope taken by an end actor (`size`: its bytes on the queue): in
    /// the shared store or the data directory's first (a failure there is returned,
    /// so the message can stay queued), then here.
    pub async fn record(
        &self,
        end: End,
        envelope: Envelope,
        size: usize,
    ) -> Result<(), RecordError> {
        let branch = Branch::from_headers(&envelope.headers);
        let root = branch.root_id(&envelope.id).to_owned();
        if let Some(shared) = &self.shared {
            shared
                .ended(root.clone(), branch.path_text(), end, &envelope)
                .await?;
        }
        if let Some(journal) = &self.journal {
            journal
                .ended(&root, branch.path_text(), end, size, envelope.to_bytes())
                .await
                .map_err(RecordError::Journal)?;
        }
        self.record_here(root, end, envelope, size);
        Ok(())
    }

    fn record_here(&self, root: String, end: End, envelope: Envelope, size: usize) {
        let mut inner = self.lock();
        let record = self.entry(&mut inner, &root);
        if !record.add(end, envelope, size) {
            return;
        }
        if record.is_complete() {
            record.wake_all();
        } else {
            record.wake_followers();
        }
        inner.bytes += size;
        if end == End::Error {
            inner.failed.push_back(root);
            while inner.failed.len() > self.limits.count.min(FAILED_LISTED) {
                inner.failed.pop_front();
            }
        }
        self.evict(&mut inner);
    }

    /// Submission `id` as this node saw it.
    pub fn get_here(&self, id: &str) -> Lookup {
        let inner = self.lock();
        match inner.records.get(id) {
            Some(record) => Lookup::Found(record.view(id)),
            None if inner.evicted.ids.contains(id) => Lookup::Evicted,
            None => Lookup::Unknown,
        }
    }

    /// Submission `id`: from the pool's store where there is one and it answers, else
    /// as this node saw it.
    pub async fn get(&self, id: &str) -> Lookup {
        if let Some(shared) = &self.shared {
            match shared.outcome(id.to_owned()).await {
                Ok(Some(ended)) => return Lookup::Found(self.timed_out_here(fold(id, ended))),
                Ok(None) => return self.get_here(id),
                Err(error) => {
                    tracing::debug!(error = %crate::error_chain::chain(&error), "outcome read from this node only");
                }
            }
        }
        self.get_here(id)
    }

    /// A view read from the pool's store, failed if the submission missed its deadline
    /// on this node (the deadline lives where the call was taken).
    fn timed_out_here(&self, mut view: OutcomeView) -> OutcomeView {
        let timed_out = self
            .lock()
            .records
            .get(&view.id)
            .is_some_and(|record| record.timed_out);
        if timed_out {
            view.status = Status::Failed;
            view.errors.insert(0, submission::timed_out_error());
        }
        view
    }

    /// Waits up to `timeout` for submission `id` to end; returns what is known then.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Lookup {
        if self.shared.is_some() {
            return self.poll(id, timeout).await;
        }
        self.wait_here(id, timeout).await
    }

    /// Polls the shared store, backing off, until the submission ends.
    async fn poll(&self, id: &str, timeout: Duration) -> Lookup {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut backoff = crate::backoff::OUTCOME_POLL.start();
        loop {
            let lookup = self.get(id).await;
            let ended = !matches!(&lookup, Lookup::Found(view) if view.status == Status::Pending);
            let now = tokio::time::Instant::now();
            if ended || now >= deadline {
                return lookup;
            }
            tokio::time::sleep(backoff.next_pause().min(deadline - now)).await;
        }
    }

    async fn wait_here(&self, id: &str, timeout: Duration) -> Lookup {
        let completed = {
            let mut inner = self.lock();
            let Some(record) = inner.records.get_mut(id) else {
                drop(inner);
                return self.get_here(id);
            };
            if record.is_complete() {
                return Lookup::Found(record.view(id));
            }
            let (sender, receiver) = oneshot::channel();
            record.waiters.retain(|waiter| !waiter.is_closed());
            record.waiters.push(sender);
            receiver
        };
        // Woken on completion, on eviction (the sender is dropped), or at the timeout.
        let _ = tokio::time::timeout(timeout, completed).await;
        self.get_here(id)
    }

    /// Forgets a submission that was not taken in after all (its send failed), so
    /// it does not read as pending forever. A submission with an ended branch stays.
    pub fn withdraw(&self, id: &str) {
        let mut inner = self.lock();
        if inner.records.get(id).is_some_and(Record::is_untouched) {
            inner.records.remove(id);
            inner.order.retain(|known| known != id);
            if let Some(journal) = &self.journal {
                journal.forget(id);
            }
        }
    }

    /// Submissions this node knows that have not ended.
    pub fn unfinished(&self) -> usize {
        self.lock()
            .records
            .values()
            .filter(|record| !record.is_complete())
            .count()
    }

    /// The most recent failed submissions, newest first: the pool's, from its store,
    /// where there is one and it answers; else those this node saw.
    pub async fn recent_failures(&self, limit: usize) -> Vec<OutcomeView> {
        if let Some(shared) = &self.shared {
            match shared.recent_failures(limit).await {
                Ok(failures) => {
                    return failures
                        .into_iter()
                        .map(|(id, ended)| fold(&id, ended))
                        .collect();
                }
                Err(error) => {
                    tracing::debug!(error = %crate::error_chain::chain(&error), "failures listed from this node only")
                }
            }
        }
        self.recent_failures_here(limit)
    }

    fn recent_failures_here(&self, limit: usize) -> Vec<OutcomeView> {
        let inner = self.lock();
        let mut seen = HashSet::new();
        inner
            .failed
            .iter()
            .rev()
            .filter(|id| seen.insert(id.as_str()))
            .filter_map(|id| inner.records.get(id).map(|record| record.view(id)))
            .take(limit)
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::envelope::{Headers, Route};
    use serde_json::{Value, json};

    pub(crate) fn envelope(id: &str, headers: Headers, payload: Value) -> Envelope {
        Envelope {
            id: id.into(),
            parent_id: None,
            route: Route {
                actors: vec!["a".into()],
                current: 1,
                metadata: None,
            },
            headers,
            payload,
        }
    }

    fn child(root: &str, index: u32, count: u32) -> Headers {
        let mut headers = Headers::new();
        Branch::default()
            .child(root, index, count)
            .write_to(&mut headers);
        headers
    }

    fn found(lookup: Lookup) -> OutcomeView {
        lookup.view().expect("a known submission")
    }

    #[tokio::test]
    async fn pending_until_every_branch_ends() {
        let outcomes = Outcomes::default();
        outcomes.submitted("r").await;
        assert_eq!(found(outcomes.get("r").await).status, Status::Pending);
        outcomes
            .record(End::Happy, envelope("r-1", child("r", 1, 2), json!("b")), 1)
            .await
            .unwrap();
        assert_eq!(found(outcomes.get("r").await).status, Status::Pending);
        assert_eq!(outcomes.unfinished(), 1);
        outcomes
            .record(End::Happy, envelope("r", child("r", 0, 2), json!("a")), 1)
            .await
            .unwrap();
        let view = found(outcomes.get("r").await);
        assert_eq!(view.status, Status::Succeeded);
        assert_eq!(
            view.results,
            vec![json!("a"), json!("b")],
            "in fan-out order"
        );
        assert_eq!(outcomes.unfinished(), 0);
    }

    #[tokio::test]
    async fn a_redelivered_end_message_counts_once() {
        let outcomes = Outcomes::default();
        for _ in 0..2 {
            outcomes
                .record(End::Happy, envelope("r", child("r", 0, 2), json!("a")), 1)
                .await
                .unwrap();
        }
        outcomes
            .record(End::Happy, envelope("r-1", child("r", 1, 2), json!("b")), 1)
            .await
            .unwrap();
        let view = found(outcomes.get("r").await);
        assert_eq!(view.results, vec![json!("a"), json!("b")]);
    }

    #[tokio::test]
    async fn one_failed_branch_fails_the_submission() {
        let outcomes = Outcomes::default();
        outcomes
            .record(End::Happy, envelope("r", child("r", 0, 2), json!(1)), 1)
            .await
            .unwrap();
        outcomes
            .record(
                End::Error,
                envelope("r-1", child("r", 1, 2), json!({"error": "x"})),
                1,
            )
            .await
            .unwrap();
        let view = found(outcomes.get("r").await);
        assert_eq!(view.status, Status::Failed);
        assert_eq!(view.errors.len(), 1);
        assert_eq!(outcomes.recent_failures(10).await[0].id, "r");
    }

    #[tokio::test]
    async fn forgets_the_oldest_past_capacity_and_says_so() {
        let outcomes = Outcomes::new(2);
        for id in ["a", "b", "c"] {
            outcomes.submitted(id).await;
        }
        assert_eq!(outcomes.get("a").await, Lookup::Evicted);
        assert!(matches!(outcomes.get("c").await, Lookup::Found(_)));
        assert_eq!(outcomes.get("never").await, Lookup::Unknown);
    }

    #[tokio::test]
    async fn forgets_the_oldest_past_the_bytes_but_keeps_the_newest() {
        let outcomes = Outcomes::bounded(OutcomeLimits {
            count: 100,
            bytes: 1000,
        });
        for id in ["a", "b", "c"] {
            outcomes
                .record(End::Happy, envelope(id, Headers::new(), json!(id)), 400)
                .await
                .unwrap();
        }
        assert_eq!(outcomes.get("a").await, Lookup::Evicted);
        assert!(matches!(outcomes.get("b").await, Lookup::Found(_)));
        outcomes
            .record(End::Happy, envelope("huge", Headers::new(), json!(0)), 5000)
            .await
            .unwrap();
        assert!(matches!(outcomes.get("huge").await, Lookup::Found(_)));
        assert_eq!(outcomes.get("c").await, Lookup::Evicted);
    }

    #[tokio::test]
    async fn a_waiter_learns_its_submission_was_evicted() {
        let outcomes = Arc::new(Outcomes::new(1));
        outcomes.submitted("r").await;
        let waiter = tokio::spawn({
            let outcomes = outcomes.clone();
            async move { outcomes.wait("r", Duration::from_secs(30)).await }
        });
        tokio::task::yield_now().await;
        outcomes.submitted("s").await;
        assert_eq!(waiter.await.unwrap(), Lookup::Evicted);
    }

    #[tokio::test]
    async fn a_withdrawn_submission_is_unknown_again() {
        let outcomes = Outcomes::default();
        outcomes.submitted("r").await;
        outcomes.withdraw("r");
        assert_eq!(outcomes.get("r").await, Lookup::Unknown);
        assert_eq!(outcomes.unfinished(), 0);
    }

    #[tokio::test]
    async fn wait_returns_when_the_submission_ends() {
        let outcomes = Arc::new(Outcomes::default());
        outcomes.submitted("r").await;
        let waiter = tokio::spawn({
            let outcomes = outcomes.clone();
            async move { outcomes.wait("r", Duration::from_secs(5)).await }
        });
        tokio::task::yield_now().await;
        outcomes
            .record(End::Happy, envelope("r", Headers::new(), json!(1)), 1)
            .await
            .unwrap();
        let view = found(waiter.await.unwrap());
        assert_eq!(view.status, Status::Succeeded);
    }

    #[tokio::test]
    async fn outcomes_kept_in_the_data_directory_come_back_within_the_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path()).await.unwrap();
        let outcomes = Outcomes::new(2).with_journal(journal.clone());
        for id in ["old", "kept", "pending"] {
            outcomes.submitted(id).await;
        }
        outcomes
            .record(End::Happy, envelope("kept", Headers::new(), json!("k")), 1)
            .await
            .unwrap();
        let hop = Arc::new(crate::progress::event::Hop {
            envelope_id: "kept".into(),
            branch: String::new(),
            actor: "a".into(),
            index: 0,
            route: vec!["a".into()],
        });
        outcomes.progress(
            "kept",
            [crate::progress::ProgressEvent::new(
                hop,
                crate::progress::event::Stage::Received,
                crate::progress::event::At::now(),
            )],
        );
        journal.close().await;

        let (journal, recovered) = Journal::open(dir.path()).await.unwrap();
        let outcomes = Outcomes::new(2).with_journal(journal.clone());
        outcomes.restore(recovered.submissions);
        assert_eq!(
            outcomes.get("old").await,
            Lookup::Unknown,
            "evicted before the restart, and dropped from the store"
        );
        let kept = found(outcomes.get("kept").await);
        assert_eq!(
            (kept.status, kept.results),
            (Status::Succeeded, vec![json!("k")])
        );
        assert_eq!(outcomes.events("kept").await.len(), 1);
        assert_eq!(found(outcomes.get("pending").await).status, Status::Pending);
        journal.close().await;
    }
}
