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
//! size the runs. `WASYA_BENCH_NATIVE_ONLY=1` runs the native pipeline alone (no
//! component compiled), for a profiler or `valgrind --tool=callgrind` to read the
//! routing loop by itself. Output is a Markdown table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pipeline::{HOPS, NativeEcho, echo_component, pipeline};
use common::{env_usize, envelope};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasya::ActorRuntime;
use wasya::Outcome;
use wasya::RouterSettings;

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
    let native: Arc<dyn ActorRuntime> = Arc::new(NativeEcho);
    if env_usize("WASYA_BENCH_NATIVE_ONLY", 0) == 1 {
        let figures = pipeline(native, RouterSettings::default(), envelopes, samples).await;
        println!(
            "native Rust echo, {envelopes} envelopes: {:.0} hops/s, e2e p50 {}, p99 {}",
            figures.hops_per_second,
            micros(figures.p50),
            micros(figures.p99)
        );
        return;
    }
    let pooled = echo_component(true).await;
    let on_demand = echo_component(false).await;

    println!(
        "## 3-actor echo pipeline, embedded transport ({envelopes} envelopes, {samples} latency samples)\n"
    );
    println!(
        "| actor runtime | hops/s | ratio to native | e2e p50 | e2e p99 | per hop p50 (e2e ÷ 3) | per hop p99 |"
    );
    println!("|---|---|---|---|---|---|---|");
    let baseline = pipeline(native, RouterSettings::default(), envelopes, samples).await;
    for (name, runtime) in [
        ("native Rust echo (baseline)", None),
        ("wasm echo, pooling on", Some(pooled.clone())),
        ("wasm echo, pooling off", Some(on_demand.clone())),
    ] {
        let figures = match runtime {
            None => baseline,
            Some(runtime) => pipeline(runtime, RouterSettings::default(), envelopes, samples).await,
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
