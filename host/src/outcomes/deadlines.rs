//! Tool deadlines: a submission made through a tool fails at its tool's `timeout`,
//! wherever its envelope is, as Asya's gateway fails it ("envelope timed out").
//!
//! The deadlines live in the outcome store beside the records they belong to (one
//! entry per record at most, gone with it when it is evicted), soonest first, and one
//! task waits for the soonest; a new sooner deadline wakes it. So a thousand tool
//! calls in flight cost a thousand set entries, not a thousand timers.
//!
//! A submission that timed out reads as failed from then on: what its envelopes bring
//! to the end actors later is still recorded (the outcome lists it), but does not turn
//! it back to succeeded. Asya's gateway lets a late report overwrite the timeout; a
//! caller that was told "timed out" is not told otherwise here.

use super::{Outcomes, Submission};
use crate::metrics::metrics;
use std::sync::{Arc, Weak};
use std::time::Duration;

impl Outcomes {
    /// Fails submission `id` at `timeout` from now unless it ended before. The
    /// submission must be known here (just submitted); the deadline goes with it.
    pub fn set_deadline(self: &Arc<Self>, id: &str, timeout: Duration) {
        let deadline = super::Deadline::after(timeout);
        {
            let mut inner = self.lock();
            let Some(record) = inner.records.get_mut(id) else {
                return;
            };
            if record.is_complete() {
                return;
            }
            let mut submission = record
                .submission
                .as_deref()
                .cloned()
                .unwrap_or_else(Submission::unknown);
            if let Some(earlier) = submission.deadline {
                inner.deadlines.remove(&(earlier.due, id.to_owned()));
            }
            submission.deadline = Some(deadline);
            let Some(record) = inner.records.get_mut(id) else {
                return;
            };
            record.submission = Some(Arc::new(submission));
            inner.deadlines.insert((deadline.due, id.to_owned()));
        }
        self.deadline_task.get_or_init(|| {
            tokio::spawn(expire_all(Arc::downgrade(self), self.deadline_wake.clone()));
        });
        self.deadline_wake.notify_one();
    }

    /// Fails what is due; the next deadline, if any.
    fn expire_due(&self) -> Option<tokio::time::Instant> {
        let now = tokio::time::Instant::now();
        let mut inner = self.lock();
        loop {
            let (due, id) = inner.deadlines.first()?.clone();
            if due > now {
                return Some(due);
            }
            inner.deadlines.pop_first();
            let Some(record) = inner.records.get_mut(&id) else {
                continue;
            };
            if record.is_complete() {
                continue;
            }
            record.timed_out = true;
            record.wake_all();
            inner.failed.push_back(id.clone());
            while inner.failed.len() > self.limits.count.min(super::FAILED_LISTED) {
                inner.failed.pop_front();
            }
            metrics().envelopes_timed_out.inc();
            tracing::info!(envelope_id = id, "{}", super::submission::TIMED_OUT);
        }
    }
}

/// Fails submissions as their deadlines pass, for as long as the store lives.
async fn expire_all(outcomes: Weak<Outcomes>, wake: Arc<tokio::sync::Notify>) {
    loop {
        let woken = wake.notified();
        let Some(strong) = outcomes.upgrade() else {
            return;
        };
        let next = strong.expire_due();
        drop(strong);
        match next {
            Some(due) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = woken => {}
                }
            }
            None => woken.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcomes::tests::envelope;
    use crate::outcomes::{Lookup, Status};
    use crate::records::End;
    use serde_json::json;

    #[tokio::test(start_paused = true)]
    async fn a_submission_fails_at_its_deadline_and_a_late_result_does_not_revive_it() {
        let outcomes = Arc::new(Outcomes::default());
        outcomes.submitted("r").await;
        outcomes.set_deadline("r", Duration::from_secs(10));
        tokio::time::sleep(Duration::from_secs(9)).await;
        let Lookup::Found(view) = outcomes.get("r").await else {
            panic!("known")
        };
        assert_eq!(view.status, Status::Pending);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let Lookup::Found(view) = outcomes.get("r").await else {
            panic!("known")
        };
        assert_eq!(view.status, Status::Failed);
        assert_eq!(
            view.first_failure(),
            Some((super::super::submission::TIMED_OUT, None))
        );
        outcomes
            .record(End::Happy, envelope("r", Default::default(), json!(1)), 1)
            .await
            .unwrap();
        let Lookup::Found(view) = outcomes.get("r").await else {
            panic!("known")
        };
        assert_eq!(view.status, Status::Failed);
        assert_eq!(view.results, vec![json!(1)], "the late result is recorded");
    }

    #[tokio::test(start_paused = true)]
    async fn a_submission_that_ended_in_time_keeps_its_outcome() {
        let outcomes = Arc::new(Outcomes::default());
        outcomes.submitted("r").await;
        outcomes.set_deadline("r", Duration::from_secs(10));
        outcomes
            .record(End::Happy, envelope("r", Default::default(), json!(1)), 1)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(11)).await;
        let Lookup::Found(view) = outcomes.get("r").await else {
            panic!("known")
        };
        assert_eq!(view.status, Status::Succeeded);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_is_woken_at_the_deadline() {
        let outcomes = Arc::new(Outcomes::default());
        outcomes.submitted("r").await;
        outcomes.set_deadline("r", Duration::from_secs(5));
        let start = tokio::time::Instant::now();
        let Lookup::Found(view) = outcomes.wait("r", Duration::from_secs(60)).await else {
            panic!("known")
        };
        assert_eq!(view.status, Status::Failed);
        assert!(
            start.elapsed() < Duration::from_secs(6),
            "{:?}",
            start.elapsed()
        );
    }
}
