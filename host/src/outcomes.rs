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

use crate::branch::{Branch, Completion, Step};
use crate::envelope::Envelope;
use serde::Serialize;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
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
                    end: match branch.end {
                        End::Happy => crate::routing::HAPPY_END,
                        End::Error => crate::routing::ERROR_END,
                    },
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

/// Outcomes of submissions, bounded.
pub struct Outcomes {
    inner: Mutex<Inner>,
    capacity: usize,
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
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain data behind; keep serving it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes a submission so that it reads as `pending` until it ends.
    pub fn submitted(&self, id: &str) {
        let mut inner = self.lock();
        self.entry(&mut inner, id);
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

    /// Records an envelope taken by an end actor.
    pub fn record(&self, end: End, envelope: Envelope) {
        let branch = Branch::from_headers(&envelope.headers);
        let root = branch.root_id(&envelope.id).to_owned();
        let mut inner = self.lock();
        let record = self.entry(&mut inner, &root);
        record.completion.end(&branch.path);
        record.ended.push(EndedBranch {
            path: branch.path,
            end,
            envelope,
        });
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

    /// The outcome of submission `id`, if known.
    pub fn get(&self, id: &str) -> Option<OutcomeView> {
        self.lock().records.get(id).map(|record| record.view(id))
    }

    /// Waits up to `timeout` for submission `id` to end; returns what is known then.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Option<OutcomeView> {
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
        self.get(id)
    }

    /// The most recent failed submissions, newest first.
    pub fn recent_failures(&self, limit: usize) -> Vec<OutcomeView> {
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

    #[test]
    fn pending_until_every_branch_ends() {
        let outcomes = Outcomes::default();
        outcomes.submitted("r");
        assert_eq!(outcomes.get("r").unwrap().status, Status::Pending);
        outcomes.record(End::Happy, envelope("r-1", child("r", 1, 2), json!("b")));
        assert_eq!(outcomes.get("r").unwrap().status, Status::Pending);
        outcomes.record(End::Happy, envelope("r", child("r", 0, 2), json!("a")));
        let view = outcomes.get("r").unwrap();
        assert_eq!(view.status, Status::Succeeded);
        assert_eq!(
            view.results,
            vec![json!("a"), json!("b")],
            "in fan-out order"
        );
    }

    #[test]
    fn one_failed_branch_fails_the_submission() {
        let outcomes = Outcomes::default();
        outcomes.record(End::Happy, envelope("r", child("r", 0, 2), json!(1)));
        outcomes.record(
            End::Error,
            envelope("r-1", child("r", 1, 2), json!({"error": "x"})),
        );
        let view = outcomes.get("r").unwrap();
        assert_eq!(view.status, Status::Failed);
        assert_eq!(view.errors.len(), 1);
        assert_eq!(outcomes.recent_failures(10)[0].id, "r");
    }

    #[test]
    fn forgets_the_oldest_past_capacity() {
        let outcomes = Outcomes::new(2);
        for id in ["a", "b", "c"] {
            outcomes.submitted(id);
        }
        assert!(outcomes.get("a").is_none());
        assert!(outcomes.get("c").is_some());
    }

    #[tokio::test]
    async fn wait_returns_when_the_submission_ends() {
        let outcomes = std::sync::Arc::new(Outcomes::default());
        outcomes.submitted("r");
        let waiter = tokio::spawn({
            let outcomes = outcomes.clone();
            async move { outcomes.wait("r", Duration::from_secs(5)).await }
        });
        tokio::task::yield_now().await;
        outcomes.record(End::Happy, envelope("r", Headers::new(), json!(1)));
        let view = waiter.await.unwrap().unwrap();
        assert_eq!(view.status, Status::Succeeded);
    }
}
