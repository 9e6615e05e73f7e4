//! Hot-path benchmarks of the node core, run with `cargo bench --bench pipeline`.
//!
//! 1. A 3-actor `echo` pipeline on the embedded transport: throughput in actor hops
//!    per second (many envelopes in flight) and end-to-end latency of one envelope at a
//!    time (p50/p99, and that divided by the 3 hops). Run with the wasm `echo` component
//!    (pooling allocator on and off) and, as the baseline, a native Rust echo actor
//!    behind the same runtime trait: the ratio is the price of the sandbox.
//! 2. The bare cost of one call of the `echo` component (fresh store + instantiate +
//!    call), pooling allocator on and off.
//!
//! `WASYA_BENCH_ENVELOPES` (default 20000) and `WASYA_BENCH_SAMPLES` (default 2000)
//! size the runs. Output is a Markdown table.

mod common;

use common::{env_usize, envelope};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasya::actors::ActorSlot;
use wasya::envelope::Envelope;
use wasya::outcomes::{Outcomes, Status};
use wasya::router::Router;
use wasya::routing::{Outcome, Output};
use wasya::runtime::wasm::{EngineOptions, WasmEngine};
use wasya::runtime::{ActorLimits, ActorRuntime, Unavailable};
use wasya::transport::memory::MemoryTransport;

const HOPS: usize = 3;

/// The baseline: an echo actor in native Rust, behind the same trait.
struct NativeEcho;

impl ActorRuntime for NativeEcho {
    fn call<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Result<Outcome, Unavailable>> {
        Box::pin(async move {
            Ok(Outcome::Outputs(vec![Output::payload(
                envelope.payload.clone(),
            )]))
        })
    }
}

async fn echo_component(pooling: bool) -> Arc<dyn ActorRuntime> {
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

#[derive(Clone, Copy)]
struct PipelineFigures {
    hops_per_second: f64,
    p50: Duration,
    p99: Duration,
}

async fn pipeline(
    runtime: Arc<dyn ActorRuntime>,
    envelopes: usize,
    samples: usize,
) -> PipelineFigures {
    let concurrency = std::thread::available_parallelism().map_or(1, usize::from);
    let transport = Arc::new(MemoryTransport::new(10_000));
    let outcomes = Arc::new(Outcomes::new(envelopes + samples + 16));
    let router = Router::new(transport, outcomes.clone());
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
    PipelineFigures {
        hops_per_second: (envelopes * HOPS) as f64 / elapsed.as_secs_f64(),
        p50: latencies[latencies.len() / 2],
        p99: latencies[latencies.len() * 99 / 100],
    }
}

async fn bare_calls(runtime: &dyn ActorRuntime, calls: usize) -> (Duration, Duration) {
    let actors = vec!["echo".to_owned()];
    let envelope = envelope(0, &actors);
    for _ in 0..100 {
        let _ = runtime.call(&envelope).await;
    }
    let mut each = Vec::with_capacity(calls);
    let started = Instant::now();
    for _ in 0..calls {
        let call = Instant::now();
        let outcome = runtime.call(&envelope).await;
        each.push(call.elapsed());
        assert!(matches!(outcome, Ok(Outcome::Outputs(_))));
    }
    let mean = started.elapsed() / calls as u32;
    each.sort();
    (mean, each[each.len() / 2])
}

fn micros(duration: Duration) -> String {
    format!("{:.1} µs", duration.as_secs_f64() * 1e6)
}

async fn run() {
    let envelopes = env_usize("WASYA_BENCH_ENVELOPES", 20_000);
    let samples = env_usize("WASYA_BENCH_SAMPLES", 2_000);
    let pooled = echo_component(true).await;
    let on_demand = echo_component(false).await;
    let native: Arc<dyn ActorRuntime> = Arc::new(NativeEcho);

    println!(
        "## 3-actor echo pipeline, embedded transport ({envelopes} envelopes, {samples} latency samples)\n"
    );
    println!(
        "| actor runtime | hops/s | ratio to native | e2e p50 | e2e p99 | per hop p50 (e2e ÷ 3) | per hop p99 |"
    );
    println!("|---|---|---|---|---|---|---|");
    let baseline = pipeline(native, envelopes, samples).await;
    for (name, runtime) in [
        ("native Rust echo (baseline)", None),
        ("wasm echo, pooling on", Some(pooled.clone())),
        ("wasm echo, pooling off", Some(on_demand.clone())),
    ] {
        let figures = match runtime {
            None => baseline,
            Some(runtime) => pipeline(runtime, envelopes, samples).await,
        };
        println!(
            "| {name} | {:.0} | {:.2} | {} | {} | {} | {} |",
            figures.hops_per_second,
            figures.hops_per_second / baseline.hops_per_second,
            micros(figures.p50),
            micros(figures.p99),
            micros(figures.p50 / HOPS as u32),
            micros(figures.p99 / HOPS as u32),
        );
    }

    let calls = envelopes;
    println!(
        "\n## One call of the echo component: fresh store + instantiate + call ({calls} calls)\n"
    );
    println!("| allocator | mean | p50 | ratio to pooling |");
    println!("|---|---|---|---|");
    let (pooled_mean, pooled_p50) = bare_calls(&*pooled, calls).await;
    let (demand_mean, demand_p50) = bare_calls(&*on_demand, calls).await;
    println!(
        "| pooling on | {} | {} | 1.00 |",
        micros(pooled_mean),
        micros(pooled_p50)
    );
    println!(
        "| pooling off | {} | {} | {:.2} |",
        micros(demand_mean),
        micros(demand_p50),
        demand_mean.as_secs_f64() / pooled_mean.as_secs_f64()
    );
}

fn main() {
    let runtime = wasya::tokio_runtime().expect("tokio runtime");
    runtime.block_on(run());
}
