//! The socket runtime path, measured: `cargo bench --bench socket` (needs python3).
//!
//! 1. One socket hop against one wasm hop doing the same work (echo) on the same
//!    router, same run: throughput with many envelopes in flight, and latency of one
//!    at a time. The socket hop runs against the reference runtime twice: serving one
//!    call at a time, as Asya's runtime does (the baseline a user would otherwise run),
//!    and on threads.
//! 2. The node's per-message overhead on the socket path: the latency of a socket hop
//!    through the node against a bare client that only frames, sends and reads on the
//!    same runtime.
//! 3. 10,000 envelopes in flight at once against a runtime that holds every call about
//!    1 s and serves connections concurrently: all must succeed; the process's peak
//!    RSS and the event-loop lag p99 while they are in flight.
//!
//! The runtimes are the repository's reference runtime (`runtimes/python`; another
//! Asya-protocol runtime script through `WASYA_BENCH_RUNTIME`) with the `echo` handler,
//! and an asyncio runtime that sleeps (`benches/runtimes`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::hop::one_hop;
use common::peak_rss_mib;
use common::runtime::{RuntimeProcess, repository};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UnixStream;
use wasya::ActorSlot;
use wasya::EmbeddedTransport;
use wasya::Envelope;
use wasya::LagMonitor;
use wasya::Router;
use wasya::outcomes::{Outcomes, Status};
use wasya::runtime::socket::frame::{read_frame, write_frame};
use wasya::{ActorLimits, ActorRuntime};
use wasya::{EngineOptions, WasmEngine};
use wasya::{SocketActor, SocketOptions};

fn reference_echo(concurrent: bool) -> RuntimeProcess {
    RuntimeProcess::serving(
        "handlers.echo",
        &repository().join("tests/runtimes"),
        concurrent,
    )
}

fn envelope(n: usize, actor: &str) -> Envelope {
    common::envelope(n, &[actor.to_owned()])
}

fn socket_actor(path: &Path, connections: usize, timeout: Duration) -> Arc<dyn ActorRuntime> {
    Arc::new(SocketActor::new(
        "s-echo",
        SocketOptions {
            path: path.to_owned(),
            timeout,
            frame_limit: wasya::defaults::FRAME_LIMIT,
            connections,
        },
        tokio_util::sync::CancellationToken::new(),
    ))
}

/// A bare client: connect, frame, send, read, close; one at a time.
async fn bare_client(socket: &Path, samples: usize) -> (Duration, Duration) {
    let request = envelope(0, "s-echo").to_bytes();
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        let mut stream = UnixStream::connect(socket).await.expect("connect");
        write_frame(&mut stream, &request).await.expect("write");
        read_frame(&mut stream, 64 << 20).await.expect("read");
        drop(stream);
        latencies.push(started.elapsed());
    }
    latencies.sort();
    (latencies[samples / 2], latencies[samples * 99 / 100])
}

fn ms(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1e3)
}

async fn run() {
    let envelopes = 5_000;
    let samples = 1_000;
    let engine = WasmEngine::new(&EngineOptions::default()).expect("engine");
    let bytes = wasya::bundled::BUNDLED_ACTORS
        .iter()
        .find(|(name, _)| *name == "echo")
        .expect("echo")
        .1;
    let (wasm, _) = engine
        .load("echo", Arc::from(bytes), ActorLimits::default())
        .await
        .expect("echo");
    let wasm: Arc<dyn ActorRuntime> = Arc::new(wasm);
    // The runtime Asya users run serves one call at a time; the threaded one is ours.
    let sequential = reference_echo(false);
    let runtime = reference_echo(true);
    let socket_sequential = socket_actor(&sequential.socket(), 8, Duration::from_secs(30));
    let socket = socket_actor(&runtime.socket(), 8, Duration::from_secs(30));

    println!(
        "## One hop, same work (echo), same router, same run ({envelopes} envelopes, 8 at once; {samples} latency samples)\n"
    );
    println!(
        "| actor | envelopes/s | e2e p50 | e2e p99 | wasm ÷ this, throughput | this ÷ wasm, p50 |"
    );
    println!("|---|---|---|---|---|---|");
    let payload: Arc<dyn Fn(usize) -> Value + Send + Sync> =
        Arc::new(|n| serde_json::json!({"n": n, "text": "a small payload of a few dozen bytes"}));
    let wasm_figures = one_hop(wasm, 8, envelopes, samples, payload.clone()).await;
    let sequential_figures =
        one_hop(socket_sequential, 8, envelopes, samples, payload.clone()).await;
    let socket_figures = one_hop(socket.clone(), 8, envelopes, samples, payload).await;
    for (name, figures) in [
        ("wasm `echo` (in-process component)", &wasm_figures),
        (
            "socket `echo`, reference Python runtime one call at a time (as Asya's)",
            &sequential_figures,
        ),
        (
            "socket `echo`, reference Python runtime on threads",
            &socket_figures,
        ),
    ] {
        println!(
            "| {name} | {:.0} | {} | {} | {:.1}× | {:.1}× |",
            figures.per_second,
            ms(figures.p50),
            ms(figures.p99),
            wasm_figures.per_second / figures.per_second,
            figures.p50.as_secs_f64() / wasm_figures.p50.as_secs_f64(),
        );
    }

    let (bare_p50, bare_p99) = bare_client(&runtime.socket(), samples).await;
    let (serial_bare_p50, _) = bare_client(&sequential.socket(), samples).await;
    println!(
        "\n## Per-message overhead of the node on the socket path ({samples} calls, one at a time)\n"
    );
    println!("| path | p50 | p99 |");
    println!("|---|---|---|");
    println!(
        "| bare client: connect, frame, send, read (threaded runtime) | {} | {} |",
        ms(bare_p50),
        ms(bare_p99)
    );
    println!(
        "| bare client, one-at-a-time runtime | {} | - |",
        ms(serial_bare_p50)
    );
    println!(
        "| node: submit → socket hop → happy-end recorded | {} | {} |",
        ms(socket_figures.p50),
        ms(socket_figures.p99)
    );
    println!(
        "\nnode overhead per message at p50: {} ({:.2}x the bare round trip)",
        ms(socket_figures.p50.saturating_sub(bare_p50)),
        socket_figures.p50.as_secs_f64() / bare_p50.as_secs_f64()
    );

    // 10,000 in flight against a slow, concurrent runtime.
    let in_flight = 10_000;
    let mut sleepy = Command::new("python3");
    sleepy
        .arg(repository().join("host/benches/runtimes/sleepy_runtime.py"))
        .arg("1.0");
    let slow = RuntimeProcess::start(&mut sleepy);
    let transport = Arc::new(EmbeddedTransport::new(in_flight * 2));
    let outcomes = Arc::new(Outcomes::new(in_flight + 16));
    let router = Router::new(transport, outcomes.clone());
    router.serve_end_actors().await.expect("end actors");
    let actor = socket_actor(&slow.socket(), in_flight, Duration::from_secs(60));
    router
        .serve(Arc::new(ActorSlot::new("hop", actor, in_flight)))
        .await
        .expect("serve");
    let lag = LagMonitor::spawn(Duration::from_millis(10));
    let rss_before = peak_rss_mib();
    let started = Instant::now();
    let ids: Vec<String> = {
        let mut ids = Vec::with_capacity(in_flight);
        for n in 0..in_flight {
            let envelope = envelope(n, "hop");
            router.submit(&envelope).await.expect("submit");
            ids.push(envelope.id);
        }
        ids
    };
    let mut succeeded = 0;
    for id in &ids {
        let view = outcomes.wait(id, Duration::from_secs(120)).await;
        succeeded += usize::from(view.view().map(|view| view.status) == Some(Status::Succeeded));
    }
    let elapsed = started.elapsed();
    println!("\n## {in_flight} envelopes in flight at once, runtime holds each call ~1 s\n");
    println!(
        "| succeeded | wall | peak RSS of the process | RSS before | event-loop lag p50 | p99 | max |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {succeeded}/{in_flight} | {:.2} s | {:.1} MiB | {:.1} MiB | {} | {} | {} |",
        elapsed.as_secs_f64(),
        peak_rss_mib(),
        rss_before,
        ms(lag.quantile(0.5).unwrap_or_default()),
        ms(lag.quantile(0.99).unwrap_or_default()),
        ms(lag.quantile(1.0).unwrap_or_default()),
    );
    assert_eq!(succeeded, in_flight, "every envelope must succeed");
    router.shutdown(Duration::from_secs(5)).await;
}

fn main() {
    let runtime = wasya::tokio_runtime().expect("tokio runtime");
    runtime.block_on(run());
}
