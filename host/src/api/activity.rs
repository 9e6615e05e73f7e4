//! `GET /v1/activity`: each actor's throughput and latency over the last minutes.
//!
//! A sampler reads the actors' views every [`INTERVAL`] and keeps, per actor, what
//! changed since the previous reading (messages processed and failed, their mean
//! latency) with the calls in flight and the queue's depth at that moment. The node
//! keeps the history, not the page, so a reloaded page shows the last minutes at
//! once. Memory is bounded: [`SAMPLES`] samples per served actor, and an actor's
//! history goes when it is no longer served.
//!
//! The sampler lives as long as the router that serves the history: it holds only
//! weak references, and ends at the first tick after either is gone.

use crate::deployments::{ActorView, Deployments};
use axum::Extension;
use axum::Json;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

/// How often the actors are sampled.
pub const INTERVAL: Duration = Duration::from_secs(5);
/// Samples kept per actor: ten minutes at [`INTERVAL`].
pub const SAMPLES: usize = 120;

/// One actor over one interval.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Sample {
    /// When the interval ended (RFC 3339, UTC).
    pub at: String,
    /// Messages finished in the interval.
    pub processed: u64,
    /// Of those, the ones that went to error-end.
    pub failed: u64,
    /// Their mean processing time in milliseconds; absent when none finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_ms: Option<f64>,
    /// Calls running when the interval ended.
    pub in_flight: u64,
    /// Messages queued or in flight when the interval ended, where the transport can tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<usize>,
}

/// The answer of `GET /v1/activity`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActivityView {
    /// The length of one sample's interval, in milliseconds.
    pub interval_ms: u64,
    /// Each served actor's samples, oldest first.
    pub actors: BTreeMap<String, Vec<Sample>>,
}

/// Totals of an actor as of the last reading.
#[derive(Default, Clone, Copy)]
struct Totals {
    processed: u64,
    failed: u64,
    processing_ms: f64,
}

#[derive(Default)]
struct History {
    last: Totals,
    samples: VecDeque<Sample>,
}

/// The served actors' recent samples.
#[derive(Default)]
pub struct Activity {
    actors: Mutex<BTreeMap<String, History>>,
}

impl Activity {
    /// A history sampled from `deployments` every [`INTERVAL`] while both live; not
    /// sampled outside a Tokio runtime.
    pub fn start(deployments: &Arc<Deployments>) -> Arc<Activity> {
        let activity = Arc::new(Activity::default());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(sample(
                Arc::downgrade(&activity),
                Arc::downgrade(deployments),
            ));
        }
        activity
    }

    /// Takes one sample of each actor in `actors`, at `at`; forgets the others.
    pub fn record(&self, actors: &[ActorView], at: SystemTime) {
        let at = humantime::format_rfc3339_millis(at).to_string();
        let mut histories = self
            .actors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        histories.retain(|name, _| actors.iter().any(|actor| &actor.name == name));
        for actor in actors {
            let history = histories.entry(actor.name.clone()).or_default();
            let now = Totals {
                processed: actor.processed,
                failed: actor.failed,
                processing_ms: actor.processing_ms,
            };
            // Counts only grow while an actor is served; a smaller total is a
            // fresh start, counted from zero.
            let before = if now.processed < history.last.processed {
                Totals::default()
            } else {
                history.last
            };
            let processed = now.processed - before.processed;
            let spent = (now.processing_ms - before.processing_ms).max(0.0);
            history.samples.push_back(Sample {
                at: at.clone(),
                processed,
                failed: now.failed.saturating_sub(before.failed),
                mean_ms: (processed > 0).then(|| spent / processed as f64),
                in_flight: actor.in_flight,
                queue_depth: actor.queue_depth,
            });
            while history.samples.len() > SAMPLES {
                history.samples.pop_front();
            }
            history.last = now;
        }
    }

    /// Every served actor's samples, oldest first.
    pub fn view(&self) -> ActivityView {
        let histories = self
            .actors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        ActivityView {
            interval_ms: u64::try_from(INTERVAL.as_millis()).unwrap_or(u64::MAX),
            actors: histories
                .iter()
                .map(|(name, history)| (name.clone(), history.samples.iter().cloned().collect()))
                .collect(),
        }
    }
}

async fn sample(activity: Weak<Activity>, deployments: Weak<Deployments>) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + INTERVAL, INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (Some(activity), Some(deployments)) = (activity.upgrade(), deployments.upgrade())
        else {
            return;
        };
        activity.record(&deployments.list(), SystemTime::now());
    }
}

/// `GET /v1/activity`.
#[utoipa::path(
    get, path = "/v1/activity", tag = "actors",
    responses((status = 200, description = "Each served actor's throughput, latency, calls in flight and queue depth, one sample per interval over the last ten minutes, oldest first", body = ActivityView))
)]
pub async fn get(Extension(activity): Extension<Arc<Activity>>) -> Json<ActivityView> {
    Json(activity.view())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{ActorKind, HandlerMode};

    fn actor(name: &str, processed: u64, failed: u64, processing_ms: f64) -> ActorView {
        ActorView {
            name: name.into(),
            kind: ActorKind::Wasm,
            digest: None,
            version: None,
            versions: Vec::new(),
            socket: None,
            connections: None,
            concurrency: 4,
            timeout_ms: 1000,
            memory_limit_bytes: None,
            handler_mode: Some(HandlerMode::default()),
            reuse_instances: None,
            world: None,
            instance_concurrency: None,
            instances: None,
            env: Vec::new(),
            allowed_outbound_hosts: Vec::new(),
            outbound: None,
            processed,
            failed,
            processing_ms,
            in_flight: 1,
            queue_depth: Some(3),
            not_ready: None,
        }
    }

    #[test]
    fn samples_what_changed_in_each_interval() {
        let activity = Activity::default();
        let at = SystemTime::UNIX_EPOCH;
        activity.record(&[actor("a", 4, 1, 8.0)], at);
        activity.record(&[actor("a", 10, 1, 20.0)], at + INTERVAL);
        activity.record(&[actor("a", 10, 1, 20.0)], at + INTERVAL * 2);
        let samples = &activity.view().actors["a"];
        let counts: Vec<_> = samples
            .iter()
            .map(|sample| (sample.processed, sample.failed, sample.mean_ms))
            .collect();
        assert_eq!(counts, [(4, 1, Some(2.0)), (6, 0, Some(2.0)), (0, 0, None)]);
        assert_eq!(samples[0].at, "1970-01-01T00:00:00.000Z");
        assert_eq!((samples[2].in_flight, samples[2].queue_depth), (1, Some(3)));
    }

    #[test]
    fn keeps_a_bounded_history_of_served_actors_only() {
        let activity = Activity::default();
        for n in 0..(SAMPLES as u64 + 30) {
            activity.record(
                &[actor("a", n, 0, 0.0), actor("b", n, 0, 0.0)],
                SystemTime::UNIX_EPOCH,
            );
        }
        assert_eq!(activity.view().actors["a"].len(), SAMPLES);
        activity.record(&[actor("b", 0, 0, 0.0)], SystemTime::UNIX_EPOCH);
        let view = activity.view();
        assert!(!view.actors.contains_key("a"));
        // A total that went down is a fresh start: counted from zero, not negative.
        assert_eq!(view.actors["b"].last().map(|s| s.processed), Some(0));
    }
}
