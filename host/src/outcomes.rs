//! The final outcome of each submitted envelope, as the end actors record it.
//!
//! `happy-end` and `error-end` call [`Outcomes::record`] for every envelope they take.
//! Outcomes are kept per *submission* (the id the node assigned, or the id a producer
//! chose): fan-out children are folded into their root through the branch headers, and
//! the submission is `pending` until every branch has ended (see [`crate::branch`]).
//!
//! The store is bounded: past `capacity` submissions the oldest are forgotten.
//! Waiters (`GET /v1/envelopes/{id}?wait=…`) park on their own submission and are
//! woken only when it completes, so thousands of waiters cost nothing per event.
//!
//! In a pool, any node's end actors may take any branch, so each node alone knows
//! part of a submission. With [`SharedOutcomes`] (the pool's store), every ended
//! branch is written there before its message is acked, and a submission is read
//! from there on any node; the local record answers while the store is unreachable.

use crate::branch::{Branch, Completion, Step};
use crate::envelope::Envelope;
use crate::store::StoreError;
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Default number of submissions remembered.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Which end actor took an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Happy,
    Error,
}

impl End {
    /// The end actor's name (`happy-end`, `error-end`).
    pub fn actor_name(self) -> &'static str {
        match self {
            End::Happy => crate::routing::HAPPY_END,
            End::Error => crate::routing::ERROR_END,
        }
    }

    /// The end named `name`; anything but `happy-end` reads as an error.
    pub fn from_actor_name(name: &str) -> End {
        if name == crate::routing::HAPPY_END {
            End::Happy
        } else {
            End::Error
        }
    }
}

/// Where a pool of nodes keeps the outcomes every node can read.
pub trait SharedOutcomes: Send + Sync + 'static {
    /// Notes a submission, so that every node answers `pending` for it.
    fn submitted(&self, id: String) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Records one ended branch of submission `root` (idempotent per branch).
    fn ended<'a>(
        &'a self,
        root: String,
        branch: String,
        end: End,
        envelope: &Envelope,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The ended branches of submission `id`, or `None` when it is unknown.
    #[allow(clippy::type_complexity)]
    fn outcome(
        &self,
        id: String,
    ) -> BoxFuture<'_, Result<Option<Vec<(End, Envelope)>>, StoreError>>;

    /// The most recent submissions with a branch at error-end, newest first, with
    /// their ended branches.
    #[allow(clippy::type_complexity)]
    fn recent_failures(
        &self,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<(String, Vec<(End, Envelope)>)>, StoreError>>;
}

/// How often a wait polls the shared store, at first and at most.
const POLL_FIRST: Duration = Duration::from_millis(10);
const POLL_MAX: Duration = Duration::from_millis(200);

/// Where a submission stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Succeeded,
    Failed,
}

/// What is known of one submission.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OutcomeView {
    pub id: String,
    pub status: Status,
    /// Payloads that reached `happy-end`, in fan-out order.
    pub results: Vec<Value>,
    /// Payloads that reached `error-end` (`{"error", "details", "original_payload"}`).
    pub errors: Vec<Value>,
    /// Every ended envelope with its id, in fan-out order.
    pub ended: Vec<EndedView>,
}

/// One ended envelope in a view: which end actor took it, and the envelope as taken.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EndedView {
    pub end: &'static str,
    pub envelope: Envelope,
}

/// An envelope taken by an end actor, with its place in the fan-out tree.
struct EndedBranch {
    path: Vec<Step>,
    end: End,
    envelope: Envelope,
}

#[derive(Default)]
struct Record {
    completion: Completion,
    ended: Vec<EndedBranch>,
    waiters: Vec<oneshot::Sender<()>>,
}

impl Record {
    fn view(&self, id: &str) -> OutcomeView {
        let mut ended: Vec<_> = self.ended.iter().collect();
        ended.sort_by(|a, b| a.path.cmp(&b.path));
        let payloads = |wanted| {
            ended
                .iter()
                .filter(|branch| branch.end == wanted)
                .map(|branch| branch.envelope.payload.clone())
                .collect::<Vec<_>>()
        };
        let (results, errors) = (payloads(End::Happy), payloads(End::Error));
        let status = if !self.completion.is_complete() {
            Status::Pending
        } else if errors.is_empty() {
            Status::Succeeded
        } else {
            Status::Failed
        };
        OutcomeView {
            id: id.to_owned(),
            status,
            results,
            errors,
            ended: ended
                .iter()
                .map(|branch| EndedView {
                    end: branch.end.actor_name(),
                    envelope: branch.envelope.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Default)]
struct Inner {
    records: HashMap<String, Record>,
    order: VecDeque<String>,
    failed: VecDeque<String>,
}

impl Record {
    /// Adds an ended branch; false (and nothing added) when that branch had ended
    /// already: an end message delivered twice counts once.
    fn add(&mut self, end: End, envelope: Envelope) -> bool {
        let branch = Branch::from_headers(&envelope.headers);
        if !self.completion.end(&branch.path) {
            return false;
        }
        self.ended.push(EndedBranch {
            path: branch.path,
            end,
            envelope,
        });
        true
    }
}

/// A submission's view from its ended branches, as a shared store returns them.
pub fn fold(id: &str, ended: Vec<(End, Envelope)>) -> OutcomeView {
    let mut record = Record::default();
    for (end, envelope) in ended {
        record.add(end, envelope);
    }
    record.view(id)
}

/// Outcomes of submissions, bounded.
pub struct Outcomes {
    inner: Mutex<Inner>,
    capacity: usize,
    shared: Option<Arc<dyn SharedOutcomes>>,
}

impl Default for Outcomes {
    fn default() -> Self {
        Outcomes::new(DEFAULT_CAPACITY)
    }
}

impl Outcomes {
    pub fn new(capacity: usize) -> Self {
        Outcomes {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
            shared: None,
        }
    }

    /// Outcomes also written to, and read from, a pool's store.
    pub fn with_shared(mut self, shared: Arc<dyn SharedOutcomes>) -> Self {
        self.shared = Some(shared);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain data behind; keep serving it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes a submission so that it reads as `pending` until it ends.
    pub async fn submitted(&self, id: &str) {
        {
            let mut inner = self.lock();
            self.entry(&mut inner, id);
        }
        if let Some(shared) = &self.shared
            && let Err(error) = shared.submitted(id.to_owned()).await
        {
            tracing::warn!(envelope_id = id, %error, "the submission is not in the store: other nodes answer for it once it ends");
        }
    }

    fn entry<'a>(&self, inner: &'a mut Inner, id: &str) -> &'a mut Record {
        if !inner.records.contains_key(id) {
            inner.order.push_back(id.to_owned());
            while inner.order.len() > self.capacity {
                if let Some(oldest) = inner.order.pop_front() {
                    inner.records.remove(&oldest);
                }
            }
        }
        inner.records.entry(id.to_owned()).or_default()
    }

    /// Records an envelope taken by an end actor: in the shared store first (a
    /// failure there is returned, so the message can stay queued), then here.
    pub async fn record(&self, end: End, envelope: Envelope) -> Result<(), StoreError> {
        let branch = Branch::from_headers(&envelope.headers);
        let root = branch.root_id(&envelope.id).to_owned();
        if let Some(shared) = &self.shared {
            shared
                .ended(root.clone(), branch.path_text(), end, &envelope)
                .await?;
        }
        self.record_here(root, end, envelope);
        Ok(())
    }

    fn record_here(&self, root: String, end: End, envelope: Envelope) {
        let mut inner = self.lock();
        let record = self.entry(&mut inner, &root);
        if !record.add(end, envelope) {
            return;
        }
        if record.completion.is_complete() {
            for waiter in record.waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
        if end == End::Error {
            inner.failed.push_back(root);
            while inner.failed.len() > self.capacity.min(1000) {
                inner.failed.pop_front();
            }
        }
    }

    /// The outcome of submission `id` as this node saw it, if known.
    pub fn get_here(&self, id: &str) -> Option<OutcomeView> {
        self.lock().records.get(id).map(|record| record.view(id))
    }

    /// The outcome of submission `id`, if known: from the pool's store where there
    /// is one and it answers, else as this node saw it.
    pub async fn get(&self, id: &str) -> Option<OutcomeView> {
        if let Some(shared) = &self.shared {
            match shared.outcome(id.to_owned()).await {
                Ok(Some(ended)) => return Some(fold(id, ended)),
                Ok(None) => return self.get_here(id),
                Err(error) => {
                    tracing::debug!(%error, "outcome read from this node only");
                }
            }
        }
        self.get_here(id)
    }

    /// Waits up to `timeout` for submission `id` to end; returns what is known then.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Option<OutcomeView> {
        if self.shared.is_some() {
            return self.poll(id, timeout).await;
        }
        self.wait_here(id, timeout).await
    }

    /// Polls the shared store, backing off, until the submission ends.
    async fn poll(&self, id: &str, timeout: Duration) -> Option<OutcomeView> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = POLL_FIRST;
        loop {
            let view = self.get(id).await;
            let ended = view
                .as_ref()
                .is_some_and(|view| view.status != Status::Pending);
            let now = tokio::time::Instant::now();
            if ended || now >= deadline {
                return view;
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    async fn wait_here(&self, id: &str, timeout: Duration) -> Option<OutcomeView> {
        let completed = {
            let mut inner = self.lock();
            let record = inner.records.get_mut(id)?;
            if record.completion.is_complete() {
                return Some(record.view(id));
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
                Err(error) => tracing::debug!(%error, "failures listed from this node only"),
            }
        }
        self.recent_failures_here(limit)
    }

    fn recent_failures_here(&self, limit: usize) -> Vec<OutcomeView> {
        let inner = self.lock();
        let mut seen = std::collections::HashSet::new();
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
mod tests {
    use super::*;
    use crate::envelope::{Headers, Route};
    use serde_json::json;

    fn envelope(id: &str, headers: Headers, payload: Value) -> Envelope {
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

    #[tokio::test]
    async fn pending_until_every_branch_ends() {
        let outcomes = Outcomes::default();
        outcomes.submitted("r").await;
        assert_eq!(outcomes.get("r").await.unwrap().status, Status::Pending);
        outcomes
            .record(End::Happy, envelope("r-1", child("r", 1, 2), json!("b")))
            .await
            .unwrap();
        assert_eq!(outcomes.get("r").await.unwrap().status, Status::Pending);
        outcomes
            .record(End::Happy, envelope("r", child("r", 0, 2), json!("a")))
            .await
            .unwrap();
        let view = outcomes.get("r").await.unwrap();
        assert_eq!(view.status, Status::Succeeded);
        assert_eq!(
            view.results,
            vec![json!("a"), json!("b")],
            "in fan-out order"
        );
    }

    #[tokio::test]
    async fn a_redelivered_end_message_counts_once() {
        let outcomes = Outcomes::default();
        for _ in 0..2 {
            outcomes
                .record(End::Happy, envelope("r", child("r", 0, 2), json!("a")))
                .await
                .unwrap();
        }
        outcomes
            .record(End::Happy, envelope("r-1", child("r", 1, 2), json!("b")))
            .await
            .unwrap();
        let view = outcomes.get("r").await.unwrap();
        assert_eq!(view.results, vec![json!("a"), json!("b")]);
    }

    #[tokio::test]
    async fn one_failed_branch_fails_the_submission() {
        let outcomes = Outcomes::default();
        outcomes
            .record(End::Happy, envelope("r", child("r", 0, 2), json!(1)))
            .await
            .unwrap();
        outcomes
            .record(
                End::Error,
                envelope("r-1", child("r", 1, 2), json!({"error": "x"})),
            )
            .await
            .unwrap();
        let view = outcomes.get("r").await.unwrap();
        assert_eq!(view.status, Status::Failed);
        assert_eq!(view.errors.len(), 1);
        assert_eq!(outcomes.recent_failures(10).await[0].id, "r");
    }

    #[tokio::test]
    async fn forgets_the_oldest_past_capacity() {
        let outcomes = Outcomes::new(2);
        for id in ["a", "b", "c"] {
            outcomes.submitted(id).await;
        }
        assert!(outcomes.get("a").await.is_none());
        assert!(outcomes.get("c").await.is_some());
    }

    #[tokio::test]
    async fn wait_returns_when_the_submission_ends() {
        let outcomes = std::sync::Arc::new(Outcomes::default());
        outcomes.submitted("r").await;
        let waiter = tokio::spawn({
            let outcomes = outcomes.clone();
            async move { outcomes.wait("r", Duration::from_secs(5)).await }
        });
        tokio::task::yield_now().await;
        outcomes
            .record(End::Happy, envelope("r", Headers::new(), json!(1)))
            .await
            .unwrap();
        let view = waiter.await.unwrap().unwrap();
        assert_eq!(view.status, Status::Succeeded);
    }
}
