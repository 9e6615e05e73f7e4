//! The 3-actor echo pipeline on the embedded transport, shared by the pipeline and
//! follow benchmarks: throughput in hops/s with a window of envelopes in flight, then
//! latency one envelope at a time, under the router settings a benchmark gives.

use super::envelope;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasya::ActorSlot;
use wasya::EmbeddedTransport;
use wasya::Envelope;
use wasya::Transport;
use wasya::outcomes::{Outcomes, Status};
use wasya::runtime::{ActorLimits, ActorRuntime, Unavailable};
use wasya::{EngineOptions, WasmEngine};
use wasya::{Outcome, Output};
use wasya::{Router, RouterSettings};

/// Actors in the pipeline.
pub const HOPS: usize = 3;

/// The baseline: an echo actor in native Rust, behind the same trait.
pub struct NativeEcho;

impl ActorRuntime for NativeEcho {
    fn call<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Result<Outcome, Unavailable>> {
        Box::pin(async move {
            Ok(Outcome::Outputs(vec![Output::payload(
                envelope.payload.clone(),
            )]))
        })
    }
}

/// The bundled `echo` component, with the pooling allocator on or off.
pub async fn echo_component(pooling: bool) -> Arc<dyn ActorRuntime> {
    let engine = WasmEngine::new(&EngineOptions {
        pooling,
        ..EngineOptions::default()
    })
    .expect("engine");
    let bytes = wasya::bundled::BUNDLED_ACTORS
        .iter()
        .find(|(name, _)| *name == "echo")
        .expect("echo is bundled")
        .1;
    let (actor, _) = engine
        .load("echo", Arc::from(bytes), ActorLimits::default())
        .await
        .expect("echo loads");
    Arc::new(actor)
}

/// Throughput, and latency of one envelope at a time (zero without samples).
#[derive(Clone, Copy)]
pub struct PipelineFigures {
    pub hops_per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// Queues the embedded pipeline holds in this run.
pub const QUEUE_CAPACITY: usize = 10_000;

/// Runs `envelopes` through the pipeline of `runtime`, then `samples` one at a time,
/// on ephemeral embedded queues.
pub async fn pipeline(
    runtime: Arc<dyn ActorRuntime>,
    settings: RouterSettings,
    envelopes: usize,
    samples: usize,
) -> PipelineFigures {
    let transport = EmbeddedTransport::new(QUEUE_CAPACITY);
    let outcomes = Outcomes::new(envelopes + samples + 16);
    pipeline_on(runtime, settings, transport, outcomes, envelopes, samples).await
}

/// [`pipeline`] on the queues and outcomes given (durable ones, say).
pub async fn pipeline_on(
    runtime: Arc<dyn ActorRuntime>,
    settings: RouterSettings,
    transport: EmbeddedTransport,
    outcomes: Outcomes,
    envelopes: usize,
    samples: usize,
) -> PipelineFigures {
    let concurrency = std::thread::available_parallelism().map_or(1, usize::from);
    let transport = Arc::new(transport);
    let outcomes = Arc::new(outcomes);
    let router = Router::configured(transport.clone(), outcomes.clone(), settings);
    router.serve_end_actors().await.expect("end actors");
    let actors: Vec<String> = (0..HOPS).map(|hop| format!("echo-{hop}")).collect();
    for name in &actors {
        let slot = ActorSlot::new(name.clone(), runtime.clone(), concurrency);
        router.serve(Arc::new(slot)).await.expect("serve");
    }

    // Throughput: keep a window of envelopes in flight.
    let window = Arc::new(Semaphore::new(1024));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..envelopes {
        let permit = window.clone().acquire_owned().await.expect("window");
        let (router, outcomes, envelope) = (router.clone(), outcomes.clone(), envelope(n, &actors));
        tasks.spawn(async move {
            router.submit(&envelope).await.expect("submit");
            let view = outcomes.wait(&envelope.id, Duration::from_secs(60)).await;
            drop(permit);
            view.view().map(|view| view.status)
        });
    }
    let mut succeeded = 0;
    while let Some(status) = tasks.join_next().await {
        succeeded += usize::from(status.expect("task") == Some(Status::Succeeded));
    }
    let elapsed = started.elapsed();
    assert_eq!(succeeded, envelopes, "every envelope must succeed");

    // Latency: one envelope at a time.
    let mut latencies = Vec::with_capacity(samples);
    for n in 0..samples {
        let envelope = envelope(n, &actors);
        let started = Instant::now();
        router.submit(&envelope).await.expect("submit");
        let view = outcomes.wait(&envelope.id, Duration::from_secs(60)).await;
        latencies.push(started.elapsed());
        assert_eq!(view.view().map(|view| view.status), Some(Status::Succeeded));
    }
    latencies.sort();
    router.shutdown(Duration::from_secs(5)).await;
    transport.close().await;
    let quantile = |q: f64| {
        latencies
            .get((latencies.len() as f64 * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    PipelineFigures {
        hops_per_second: (envelopes * HOPS) as f64 / elapsed.as_secs_f64(),
        p50: quantile(0.5),
        p99: quantile(0.99),
    }
}
