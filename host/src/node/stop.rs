//! The node's stop as an ordered list of named steps.
//!
//! Each part the builder started adds the step that ends it, in the order the stop
//! must take: readiness off before the routing stops, the routing before what it
//! queued for others is flushed, the flushes before the API closes, the API before the
//! transport. A step is a future (lazy until the stop runs it); its name appears in the
//! log with how long it took, and [`StopSequence::names`] lets a test read the order.

use crate::outcomes::Outcomes;
use crate::router::stop::StopSummary;
use futures::future::BoxFuture;
use std::future::Future;
use std::sync::{Arc, OnceLock};

/// Named steps run one after another at stop.
#[derive(Default)]
pub struct StopSequence {
    steps: Vec<(&'static str, BoxFuture<'static, ()>)>,
    report: Arc<OnceLock<StopSummary>>,
}

impl StopSequence {
    /// No steps yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `step`, run after those added before it.
    pub fn then(&mut self, name: &'static str, step: impl Future<Output = ()> + Send + 'static) {
        self.steps.push((name, Box::pin(step)));
    }

    /// Where the routing step puts what it left behind, for [`StopSequence::run`] to
    /// return.
    pub fn report_slot(&self) -> Arc<OnceLock<StopSummary>> {
        self.report.clone()
    }

    /// The steps' names, in the order they run.
    pub fn names(&self) -> Vec<&'static str> {
        self.steps.iter().map(|(name, _)| *name).collect()
    }

    /// Runs every step in order; returns what the routing step reported (an empty
    /// report where no step routed).
    pub async fn run(self) -> StopSummary {
        for (name, step) in self.steps {
            let started = std::time::Instant::now();
            step.await;
            tracing::debug!(
                step = name,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "stop step done"
            );
        }
        tracing::info!("node stopped");
        self.report.get().copied().unwrap_or(StopSummary {
            calls_cut_off: 0,
            messages_left: None,
            kept: true,
        })
    }
}

/// Says what a stop left behind, in counts that match what happened to each message.
pub(super) fn log_stop(transport: &str, report: &StopSummary, outcomes: &Outcomes) {
    if report.calls_cut_off > 0 {
        tracing::warn!(
            calls = report.calls_cut_off,
            "grace period over with calls still running"
        );
    }
    match (report.kept, report.messages_left) {
        (true, Some(messages_kept)) => tracing::info!(
            transport,
            calls_cut_off = report.calls_cut_off,
            messages_kept,
            "stopped routing (the data directory keeps what is queued for the next start; calls cut off are delivered again)"
        ),
        (true, None) => tracing::info!(
            transport,
            calls_cut_off = report.calls_cut_off,
            "stopped routing (the broker keeps what is queued, and redelivers what was cut off)"
        ),
        (false, messages_lost) => tracing::info!(
            transport,
            calls_cut_off = report.calls_cut_off,
            messages_lost = messages_lost.unwrap_or(0),
            submissions_lost = outcomes.unfinished(),
            "stopped routing (the ephemeral embedded queue keeps nothing across a restart)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn steps_run_in_the_order_added_and_the_routing_report_is_returned() {
        let ran = Arc::new(Mutex::new(Vec::new()));
        let mut sequence = StopSequence::new();
        let report = sequence.report_slot();
        for name in ["readiness", "routing", "http api"] {
            let ran = ran.clone();
            let report = report.clone();
            sequence.then(name, async move {
                ran.lock().unwrap().push(name);
                if name == "routing" {
                    let _ = report.set(StopSummary {
                        calls_cut_off: 2,
                        messages_left: Some(5),
                        kept: true,
                    });
                }
            });
        }
        assert!(
            ran.lock().unwrap().is_empty(),
            "nothing runs before the stop"
        );
        assert_eq!(sequence.names(), ["readiness", "routing", "http api"]);
        let returned = sequence.run().await;
        assert_eq!(*ran.lock().unwrap(), ["readiness", "routing", "http api"]);
        assert_eq!(returned.calls_cut_off, 2);
        assert_eq!(returned.messages_left, Some(5));
    }
}
