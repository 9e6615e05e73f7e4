//! One submission as the end actors saw it, and how it reads: `pending` until every
//! branch of its fan-out has ended, then `succeeded` or `failed`.

use crate::branch::{Branch, Completion, Step};
use crate::envelope::Envelope;
use crate::progress::ProgressEvent;
use crate::records::End;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

/// Where a submission stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Some branch of its fan-out has not ended yet.
    Pending,
    /// Every branch ended, and none at `error-end`.
    Succeeded,
    /// Every branch ended, and at least one at `error-end`.
    Failed,
}

/// What is known of one submission.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OutcomeView {
    /// The submission's id.
    pub id: String,
    /// Where the submission stands.
    pub status: Status,
    /// Payloads that reached `happy-end`, in fan-out order.
    pub results: Vec<Value>,
    /// Payloads that reached `error-end` (`{"error", "details", "original_payload"}`).
    pub errors: Vec<Value>,
    /// Every ended envelope with its id, in fan-out order.
    pub ended: Vec<EndedView>,
}

impl OutcomeView {
    /// The result a caller reads: the one happy-end payload, or all of a fan-out's.
    pub fn result(&self) -> Option<Value> {
        match self.results.as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            many => Some(Value::Array(many.to_vec())),
        }
    }

    /// What the first error-end said went wrong, and the actor it failed at.
    pub fn first_failure(&self) -> Option<(&str, Option<&str>)> {
        let first = self.errors.first()?;
        Some((
            crate::route_rules::error_message(first).unwrap_or("failed"),
            crate::route_rules::error_actor(first),
        ))
    }
}

/// One ended envelope in a view: which end actor took it, and the envelope as taken.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EndedView {
    /// The end actor that took the envelope (`happy-end`, `error-end`).
    pub end: &'static str,
    /// The envelope as the end actor took it.
    pub envelope: Envelope,
}

/// An envelope taken by an end actor, with its place in the fan-out tree.
struct EndedBranch {
    path: Vec<Step>,
    end: End,
    envelope: Envelope,
}

/// The ended branches of one submission, and who waits for it to end.
#[derive(Default)]
pub(super) struct Record {
    completion: Completion,
    ended: Vec<EndedBranch>,
    pub(super) waiters: Vec<oneshot::Sender<()>>,
    /// The size of the ended envelopes, as they came off their queue, and of the
    /// progress events kept.
    pub(super) bytes: usize,
    /// Progress events, in order, up to [`crate::progress::EVENTS_KEPT`].
    pub(super) events: Vec<ProgressEvent>,
    /// Events past the bound, counted and not kept.
    pub(super) events_dropped: u64,
    /// The latest chunks of partial output of its calls.
    pub(super) partials: super::partials::PartialRing,
    /// Followers of the progress, woken by every event, the end and eviction.
    pub(super) watchers: Vec<oneshot::Sender<()>>,
    /// What the submission was when this node took it in, where it did.
    pub(super) submission: Option<std::sync::Arc<super::Submission>>,
    /// It missed its tool's deadline: it reads as failed from then on, whatever
    /// reaches the end actors later (that is still recorded).
    pub(super) timed_out: bool,
}

impl Record {
    /// Adds an ended branch; false (and nothing added) when that branch had ended
    /// already: an end message delivered twice counts once.
    pub(super) fn add(&mut self, end: End, envelope: Envelope, size: usize) -> bool {
        let branch = Branch::from_headers(&envelope.headers);
        if !self.completion.end(&branch.path) {
            return false;
        }
        self.ended.push(EndedBranch {
            path: branch.path,
            end,
            envelope,
        });
        self.bytes += size;
        true
    }

    /// How the envelope `id` (a fan-out child of this submission) ended, where it has.
    pub(super) fn ended_envelope(&self, id: &str) -> Option<(End, &Envelope)> {
        self.ended
            .iter()
            .find(|branch| branch.envelope.id == id)
            .map(|branch| (branch.end, &branch.envelope))
    }

    /// No branch has ended yet.
    pub(super) fn is_untouched(&self) -> bool {
        self.ended.is_empty()
    }

    /// Every branch ended, or the deadline passed first.
    pub(super) fn is_complete(&self) -> bool {
        self.timed_out || self.completion.is_complete()
    }

    /// Wakes everyone waiting for the end, and every follower.
    pub(super) fn wake_all(&mut self) {
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(());
        }
        self.wake_followers();
    }

    pub(super) fn wake_followers(&mut self) {
        for watcher in self.watchers.drain(..) {
            let _ = watcher.send(());
        }
    }

    pub(super) fn view(&self, id: &str) -> OutcomeView {
        let mut ended: Vec<_> = self.ended.iter().collect();
        ended.sort_by(|a, b| a.path.cmp(&b.path));
        let payloads = |wanted| {
            ended
                .iter()
                .filter(|branch| branch.end == wanted)
                .map(|branch| branch.envelope.payload.clone())
                .collect::<Vec<_>>()
        };
        let (results, mut errors) = (payloads(End::Happy), payloads(End::Error));
        if self.timed_out {
            errors.insert(0, super::submission::timed_out_error());
        }
        let status = if self.timed_out {
            Status::Failed
        } else if !self.completion.is_complete() {
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

/// A submission's view from its ended branches, as a shared store returns them.
pub fn fold(id: &str, ended: Vec<(End, Envelope)>) -> OutcomeView {
    let mut record = Record::default();
    for (end, envelope) in ended {
        record.add(end, envelope, 0);
    }
    record.view(id)
}
