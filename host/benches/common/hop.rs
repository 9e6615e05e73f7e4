//! One actor measured on its own: throughput with many envelopes in flight, then
//! latency one at a time, on a router of the embedded transport. Shared by the socket
//! and language benchmarks, so their figures are measured the same way.

use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasya::ActorRuntime;
use wasya::ActorSlot;
use wasya::EmbeddedTransport;
use wasya::Router;
use wasya::envelope::{Envelope, Headers, Route};
use wasya::outcomes::{Outcomes, Status};

/// Envelopes in flight at once while throughput is measured.
const WINDOW: usize = 256;

/// What one actor did.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// Envelope `n` for the actor `hop`, with the payload `payload(n)`.
fn envelope(n: usize, payload: &dyn Fn(usize) -> Value) -> Envelope {
    Envelope {
        id: format!("bench-{n}-{}", uuid::Uuid::new_v4()),
        parent_id: None,
        route: Route {
            actors: vec!["hop".to_owned()],
            current: 0,
            metadata: None,
        },
        headers: Headers::new(),
        payload: payload(n),
    }
}

/// `envelopes` through `runtime` at `concurrency`, up to 256 in flight; then
/// `samples` one at a time for latency.
pub async fn one_hop(
    runtime: Arc<dyn ActorRuntime>,
    concurrency: usize,
    envelopes: usize,
    samples: usize,
    payload: Arc<dyn Fn(usize) -> Value + Send + Sync>,
) -> Figures {
    let transport = Arc::new(EmbeddedTransport::new(envelopes + WINDOW));
    let outcomes = Arc::new(Outcomes::new(envelopes + samples + 16));
    let router = Router::new(transport, outcomes.clone());
    router.serve_end_actors().await.expect("end actors");
    router
        .serve(Arc::new(ActorSlot::new("hop", runtime, concurrency)))
        .await
        .expect("serve");
    let window = Arc::new(Semaphore::new(WINDOW));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..envelopes {
        let permit = window.clone().acquire_owned().await.expect("window");
        let (router, outcomes) = (router.clone(), outcomes.clone());
        let envelope = envelope(n, &*payload);
        tasks.spawn(async move {
            router.submit(&envelope).await.expect("submit");
            let view = outcomes.wait(&envelope.id, Duration::from_secs(120)).await;
            drop(permit);
            view.view().map(|view| view.status)
        });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.expect("task"), Some(Status::Succeeded));
    }
    let per_second = envelopes as f64 / started.elapsed().as_secs_f64();
    let mut latencies = Vec::with_capacity(samples);
    for n in 0..samples {
        let envelope = envelope(n, &*payload);
        let started = Instant::now();
        router.submit(&envelope).await.expect("submit");
        let view = outcomes.wait(&envelope.id, Duration::from_secs(60)).await;
        latencies.push(started.elapsed());
        assert_eq!(view.view().map(|view| view.status), Some(Status::Succeeded));
    }
    latencies.sort();
    router.shutdown(Duration::from_secs(5)).await;
    Figures {
        per_second,
        p50: latencies[latencies.len() / 2],
        p99: latencies[latencies.len() * 99 / 100],
    }
}
