//! The graceful stop of the routing loop.
//!
//! New envelopes are refused at once. Where what is queued outlives the process (a
//! broker, or the embedded queue with its store), consumers stop taking deliveries at
//! once too, and what is queued stays for the next start. An ephemeral embedded queue
//! keeps nothing across a restart, so there the envelopes already accepted are routed
//! on until the queues being consumed are empty (a queue nobody consumes is not waited
//! for). Either way the stop returns as soon as nothing is in flight: the grace period
//! is a ceiling, not a wait. The report says what happened to what was left.

use super::Router;
use std::time::Duration;

/// How often the drain looks at the queues.
const DRAIN_TICK: Duration = Duration::from_millis(10);

/// What a stop left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopSummary {
    /// Calls still running at the end of the grace period (where the transport keeps
    /// what is queued, their messages are delivered again; otherwise they are lost).
    pub calls_cut_off: usize,
    /// Messages the transport still held, where it can tell.
    pub messages_left: Option<usize>,
    /// Whether those messages outlive the process (kept for the next start).
    pub kept: bool,
}

impl Router {
    /// Stops taking envelopes, lets what must finish finish within `grace`, and stops
    /// the consumers.
    pub async fn shutdown(&self, grace: Duration) -> StopSummary {
        let deadline = tokio::time::Instant::now() + grace;
        self.stopping.cancel();
        let kept = self.transport.keeps_queued();
        if !kept {
            self.drain(deadline).await;
        }
        self.stop_consuming.cancel();
        self.transport.stop_consuming();
        self.consumers.close();
        self.messages.close();
        let finished = tokio::time::timeout_at(deadline, self.messages.wait())
            .await
            .is_ok();
        // The consumers end as soon as they see the stop; what they hold (their
        // subscriptions) is released before the stop returns.
        let _ = tokio::time::timeout_at(deadline, self.consumers.wait()).await;
        StopSummary {
            calls_cut_off: if finished { 0 } else { self.messages.len() },
            messages_left: self.transport.pending(),
            kept,
        }
    }

    /// Waits until every consumed queue is empty and nothing is in flight, or the
    /// deadline.
    async fn drain(&self, deadline: tokio::time::Instant) {
        while tokio::time::Instant::now() < deadline {
            let queued: usize = self
                .consumed_queues()
                .iter()
                .filter_map(|queue| self.transport.depth(queue))
                .sum();
            if queued == 0 && self.messages.is_empty() {
                return;
            }
            tokio::time::sleep(DRAIN_TICK).await;
        }
    }
}
