//! The embedded queue on disk against the same queue in memory, run with
//! `cargo bench --bench durable`.
//!
//! The 3-actor `echo` pipeline (the bundled wasm component, the node's default
//! router settings, progress kept) on:
//!
//! 1. ephemeral queues and outcomes (`wasya up --ephemeral`): the baseline;
//! 2. durable ones (the default `wasya up`): every hop's outputs on disk before its
//!    input is acked, outcomes and progress in the same store, commits grouped;
//! 3. durable with one commit per write, to show what grouping buys.
//!
//! Throughput (hops/s with a window of 1024 envelopes in flight), latency of one
//! envelope at a time (p50/p99 end to end and per hop), bytes the process wrote to
//! storage per hop (`write_bytes` of `/proc/self/io`, over the throughput run), and
//! the writes each commit carried. `WASYA_BENCH_ENVELOPES` (default 20000) and
//! `WASYA_BENCH_SAMPLES` (default 1000) size the runs; the ungrouped run takes a
//! tenth of the envelopes. The data directory is a temporary directory (on the disk
//! of `TMPDIR`). Output is a Markdown table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::env_usize;
use common::pipeline::{HOPS, PipelineFigures, QUEUE_CAPACITY, echo_component, pipeline_on};
use std::sync::Arc;
use std::time::Duration;
use wasya::ActorRuntime;
use wasya::EmbeddedTransport;
use wasya::Outcomes;
use wasya::RouterSettings;
use wasya::data_dir::journal::{Journal, JournalOptions};

/// Bytes this process has had written to storage so far.
fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("write_bytes:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

/// The store's commits so far and the writes they carried, from the metrics.
fn commits() -> (u64, f64) {
    let histogram = &wasya::metrics::metrics().store_group_entries;
    (histogram.get_sample_count(), histogram.get_sample_sum())
}

struct Run {
    label: &'static str,
    figures: PipelineFigures,
    bytes_per_hop: f64,
    writes_per_commit: f64,
}

async fn run_once(
    label: &'static str,
    echo: Arc<dyn ActorRuntime>,
    durable: Option<JournalOptions>,
    envelopes: usize,
    samples: usize,
) -> Run {
    let outcomes = Outcomes::new(envelopes + samples + 16);
    let dir = tempfile::tempdir().expect("a data directory");
    let (transport, outcomes) = match durable {
        Some(options) => {
            let (journal, _) = Journal::open_with(dir.path(), options)
                .await
                .expect("the store opens");
            (
                EmbeddedTransport::durable(QUEUE_CAPACITY, journal.clone(), Vec::new()),
                outcomes.with_journal(journal),
            )
        }
        None => (EmbeddedTransport::new(QUEUE_CAPACITY), outcomes),
    };
    let (commits_before, writes_before) = commits();
    let written = written_bytes();
    let figures = pipeline_on(
        echo,
        RouterSettings::default(),
        transport,
        outcomes,
        envelopes,
        samples,
    )
    .await;
    let bytes = written_bytes().saturating_sub(written);
    let (commits_after, writes_after) = commits();
    let commits = commits_after.saturating_sub(commits_before);
    Run {
        label,
        figures,
        bytes_per_hop: bytes as f64 / ((envelopes + samples) * HOPS) as f64,
        writes_per_commit: if commits == 0 {
            0.0
        } else {
            (writes_after - writes_before) / commits as f64
        },
    }
}

fn micros(duration: Duration) -> String {
    format!("{:.0} µs", duration.as_secs_f64() * 1e6)
}

async fn run() {
    let envelopes = env_usize("WASYA_BENCH_ENVELOPES", 20_000);
    let samples = env_usize("WASYA_BENCH_SAMPLES", 1_000);
    let echo = echo_component(true).await;
    // Warm the engine and the allocator before the first measured run.
    run_once("warm-up", echo.clone(), None, 1_000, 10).await;
    let ephemeral = run_once(
        "ephemeral (`--ephemeral`)",
        echo.clone(),
        None,
        envelopes,
        samples,
    )
    .await;
    let grouped = run_once(
        "durable, group commit (default)",
        echo.clone(),
        Some(JournalOptions::default()),
        envelopes,
        samples,
    )
    .await;
    let single = run_once(
        "durable, one commit per write",
        echo.clone(),
        Some(JournalOptions { max_group: 1 }),
        envelopes / 10,
        samples / 10,
    )
    .await;

    println!(
        "## 3-actor echo pipeline: durable embedded queue vs ephemeral ({envelopes} envelopes, {samples} latency samples)\n"
    );
    println!(
        "| queues | hops/s | ratio to ephemeral | e2e p50 | e2e p99 | per hop p50 | per hop p99 | bytes written per hop | writes per commit |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for run in [&ephemeral, &grouped, &single] {
        let figures = run.figures;
        println!(
            "| {} | {:.0} | {:.2}× | {} | {} | {} | {} | {:.0} | {:.1} |",
            run.label,
            figures.hops_per_second,
            figures.hops_per_second / ephemeral.figures.hops_per_second,
            micros(figures.p50),
            micros(figures.p99),
            micros(figures.p50 / HOPS as u32),
            micros(figures.p99 / HOPS as u32),
            run.bytes_per_hop,
            run.writes_per_commit,
        );
    }
    println!(
        "\ngroup commit: {:.1}× the throughput of one commit per write",
        grouped.figures.hops_per_second / single.figures.hops_per_second
    );
}

fn main() {
    wasya::tokio_runtime().expect("runtime").block_on(run());
}
