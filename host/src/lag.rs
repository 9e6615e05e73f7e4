//! Event-loop lag: how late a periodic tick on the tokio runtime fires.
//!
//! A task asks to wake every `interval` and records by how much each wake-up was late.
//! When something blocks a worker thread (a long compile on the runtime, a busy guest
//! that does not yield), ticks come late: this is the async health of the node in one
//! number. Samples are kept in a bounded ring, so memory stays fixed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Samples kept for quantiles.
const SAMPLES: usize = 16_384;

/// Lateness of the runtime's periodic tick.
pub struct LagMonitor {
    samples: Mutex<VecDeque<Duration>>,
}

impl LagMonitor {
    /// Starts ticking every `interval` on the current runtime.
    pub fn spawn(interval: Duration) -> Arc<LagMonitor> {
        let monitor = Arc::new(LagMonitor {
            samples: Mutex::new(VecDeque::with_capacity(SAMPLES)),
        });
        let weak = Arc::downgrade(&monitor);
        tokio::spawn(async move {
            let mut due = tokio::time::Instant::now() + interval;
            loop {
                tokio::time::sleep_until(due).await;
                let late = tokio::time::Instant::now().saturating_duration_since(due);
                let Some(monitor) = weak.upgrade() else { break };
                monitor.record(late);
                due = tokio::time::Instant::now() + interval;
            }
        });
        monitor
    }

    fn record(&self, late: Duration) {
        crate::metrics::metrics()
            .event_loop_lag
            .observe(late.as_secs_f64());
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back(late);
    }

    /// The `q` quantile (0.0..=1.0) of the recent samples.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let mut sorted: Vec<Duration> = self
            .samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort();
        let index = ((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
        Some(sorted[index])
    }

    /// Forgets the samples so far.
    pub fn reset(&self) {
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_blocked_worker_shows_as_lag() {
        let monitor = LagMonitor::spawn(Duration::from_millis(5));
        tokio::time::sleep(Duration::from_millis(30)).await;
        // Block the only thread the runtime has, on purpose.
        std::thread::sleep(Duration::from_millis(120));
        tokio::time::sleep(Duration::from_millis(30)).await;
        let worst = monitor.quantile(1.0).unwrap();
        assert!(worst >= Duration::from_millis(80), "worst lag {worst:?}");
    }
}
