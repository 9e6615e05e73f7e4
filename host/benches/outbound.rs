//! Outbound HTTP from wasm actors, measured: `cargo bench --bench outbound`.
//!
//! 1. 10,000 envelopes in flight at once to the bundled `fetch` actor, against a local
//!    server that holds every request 1 s: wall time until all have ended, the node's
//!    peak RSS (and so the memory of one waiting instance), and the event-loop lag
//!    while they wait. Beside it, the same load through a socket actor whose runtime
//!    is an asyncio Asya-protocol runtime doing the same GET
//!    (`benches/runtimes/fetch_runtime.py`), with as many connections open to it.
//!    And the same for a Python handler making one OpenAI-compatible chat-completions
//!    request each (`benches/handlers/python/bench_handlers.py`, built with `wasya
//!    build`): `async def` on the async world (many calls per instance), and `def` on
//!    today's world with fresh and with warm instances (one instance per call in
//!    flight: those run at `WASYA_BENCH_SYNC_IN_FLIGHT`, 1,000, as 10,000 CPython
//!    instances do not fit in this machine's memory).
//! 2. The cost a request pays for going through a guest: `fetch` one call at a time
//!    against a server that answers at once, against the same GET from a native Rust
//!    client (hyper-util, pooled) in the same process.
//!
//! Every scenario runs in a process of its own (this binary, started again with
//! `WASYA_BENCH_ROLE`), so each peak RSS is its own; the HTTP server is one more
//! process. `WASYA_BENCH_IN_FLIGHT` and `WASYA_BENCH_HOLD_MS` change the load,
//! `WASYA_BENCH_INSTANCE_CONCURRENCY` the calls one async instance takes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::runtime::{RuntimeProcess, repository};
use common::{env_usize, envelope, peak_rss_mib};
use http_body_util::{BodyExt, Empty, Full};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasya::ActorSlot;
use wasya::EmbeddedTransport;
use wasya::LagMonitor;
use wasya::Router;
use wasya::outbound::{Grant, OutboundLimits};
use wasya::outcomes::{Outcomes, Status};
use wasya::{ActorLimits, ActorRuntime};
use wasya::{EngineOptions, WasmEngine};
use wasya::{SocketActor, SocketOptions};

const ROLE: &str = "WASYA_BENCH_ROLE";

fn rss_mib() -> f64 {
    common::status_mib("self", "VmRSS:")
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// The HTTP server role: answers every request after `hold_ms`, prints its port.
async fn serve(hold_ms: u64) {
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    println!("{}", listener.local_addr().expect("an address").port());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let service = service_fn(move |_request| async move {
                if hold_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(hold_ms)).await;
                }
                Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(
                    "{\"answer\": \"a small body\", \"choices\": [{\"message\": {\"role\": \"assistant\", \"content\": \"a small answer\"}}]}",
                ))))
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A child process of this binary in `role`; its first stdout line is returned.
fn child(role: &str, env: &[(&str, String)]) -> (Child, String) {
    let mut command = Command::new(std::env::current_exe().expect("this binary"));
    command.env(ROLE, role).stdout(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("a child process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a line from the child");
    (child, line.trim().to_owned())
}

/// A server process holding each request `hold_ms`; its port.
fn server(hold_ms: u64) -> (Child, u16) {
    let (child, port) = child("server", &[("WASYA_BENCH_HOLD_MS", hold_ms.to_string())]);
    (child, port.parse().expect("a port"))
}

async fn fetch_actor(engine: &WasmEngine, in_flight: usize) -> Arc<dyn ActorRuntime> {
    let bytes = wasya::bundled::BUNDLED_ACTORS
        .iter()
        .find(|(name, _)| *name == "fetch")
        .expect("the bundled fetch actor")
        .1;
    let limits = ActorLimits {
        timeout: Duration::from_secs(60),
        outbound: OutboundLimits {
            grant: Grant::parse(&["http://127.0.0.1:*"]).expect("a grant"),
            concurrency: in_flight,
            ..OutboundLimits::default()
        },
        ..ActorLimits::default()
    };
    let (actor, _) = engine
        .load("fetch", Arc::from(bytes), limits)
        .await
        .expect("fetch loads");
    Arc::new(actor)
}

/// The bench's chat handler built with `wasya build` (`chat` or `chat_async`).
async fn python_chat(handler: &str) -> Arc<[u8]> {
    let out = tempfile::tempdir().expect("a build directory");
    let file = out.path().join(format!("{handler}.wasm"));
    wasya::cli::build::build_python(
        &format!("bench_handlers.{handler}"),
        &repository().join("host/benches/handlers/python"),
        wasya::cli::build::Mode::Payload,
        &file,
    )
    .await
    .expect("the Python handler builds (componentize-py)");
    Arc::from(std::fs::read(&file).expect("the component"))
}

/// A Python chat actor: `python-async` (the async world), `python-fresh` or
/// `python-warm` (a plain def, fresh or warm instances).
async fn python_actor(engine: &WasmEngine, kind: &str, in_flight: usize) -> Arc<dyn ActorRuntime> {
    let handler = if kind == "python-async" {
        "chat_async"
    } else {
        "chat"
    };
    let limits = ActorLimits {
        timeout: Duration::from_secs(60),
        reuse_instances: Some(kind == "python-warm"),
        instance_concurrency: env_usize(
            "WASYA_BENCH_INSTANCE_CONCURRENCY",
            wasya::defaults::INSTANCE_CONCURRENCY,
        ),
        outbound: OutboundLimits {
            grant: Grant::parse(&["http://127.0.0.1:*"]).expect("a grant"),
            concurrency: in_flight,
            ..OutboundLimits::default()
        },
        ..ActorLimits::default()
    };
    let (actor, _) = engine
        .load(handler, python_chat(handler).await, limits)
        .await
        .expect("the Python actor loads");
    Arc::new(actor)
}

/// The in-flight role: `in_flight` envelopes through `kind` (`wasm`, `socket`, or a
/// Python actor) at once; prints one JSON line of figures.
async fn in_flight_run(kind: &str, port: u16, in_flight: usize) {
    let _ = wasya::cli::open_files::raise_limit();
    let (actor, _runtime): (Arc<dyn ActorRuntime>, Option<RuntimeProcess>) = match kind {
        "wasm" => {
            let engine = WasmEngine::new(&EngineOptions {
                max_instances: in_flight as u32,
                ..EngineOptions::default()
            })
            .expect("engine");
            (fetch_actor(&engine, in_flight).await, None)
        }
        python if python.starts_with("python") => {
            let engine = WasmEngine::new(&EngineOptions {
                max_instances: in_flight as u32,
                ..EngineOptions::default()
            })
            .expect("engine");
            (python_actor(&engine, kind, in_flight).await, None)
        }
        _ => {
            let mut python = Command::new("python3");
            python.arg(repository().join("host/benches/runtimes/fetch_runtime.py"));
            let runtime = RuntimeProcess::start(&mut python);
            let actor: Arc<dyn ActorRuntime> = Arc::new(SocketActor::new(
                "fetch",
                SocketOptions {
                    path: runtime.socket(),
                    timeout: Duration::from_secs(60),
                    frame_limit: wasya::defaults::FRAME_LIMIT,
                    connections: in_flight,
                },
                tokio_util::sync::CancellationToken::new(),
            ));
            (actor, Some(runtime))
        }
    };
    let transport = Arc::new(EmbeddedTransport::new(in_flight * 2));
    let outcomes = Arc::new(Outcomes::new(in_flight + 16));
    let router = Router::new(transport, outcomes.clone());
    router.serve_end_actors().await.expect("end actors");
    router
        .serve(Arc::new(ActorSlot::new("fetch", actor, in_flight)))
        .await
        .expect("serve");
    let lag = LagMonitor::spawn(Duration::from_millis(10));
    let rss_before = rss_mib();
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
    let started = Instant::now();
    let mut ids = Vec::with_capacity(in_flight);
    for n in 0..in_flight {
        let mut envelope = envelope(n, &["fetch".to_owned()]);
        envelope.payload = json!({"url": url});
        router.submit(&envelope).await.expect("submit");
        ids.push(envelope.id);
        // Submissions reach a node one request at a time; a loop that never yields
        // would be a load generator blocking the runtime it measures.
        if n % 64 == 63 {
            tokio::task::yield_now().await;
        }
    }
    let submitted = started.elapsed();
    let mut succeeded = 0;
    for id in &ids {
        let view = outcomes.wait(id, Duration::from_secs(120)).await;
        succeeded += usize::from(view.view().map(|view| view.status) == Some(Status::Succeeded));
    }
    let wall = started.elapsed();
    let runtime_peak = _runtime.as_ref().map_or(0.0, RuntimeProcess::peak_rss_mib);
    let figures = json!({
        "runtime_peak_rss_mib": runtime_peak,
        "succeeded": succeeded,
        "submitted_ms": ms(submitted),
        "wall_s": wall.as_secs_f64(),
        "rss_before_mib": rss_before,
        "peak_rss_mib": peak_rss_mib(),
        "lag_p50_ms": ms(lag.quantile(0.5).unwrap_or_default()),
        "lag_p99_ms": ms(lag.quantile(0.99).unwrap_or_default()),
        "lag_max_ms": ms(lag.quantile(1.0).unwrap_or_default()),
    });
    println!("{figures}");
    router.shutdown(Duration::from_secs(5)).await;
}

/// The overhead role: `samples` calls of `fetch` one at a time, and as many GETs from a
/// native pooled client, alternating in rounds; prints one JSON line of p50s and p99s.
async fn overhead_run(port: u16, samples: usize) {
    let engine = WasmEngine::new(&EngineOptions::default()).expect("engine");
    let actor = fetch_actor(&engine, 16).await;
    let url = format!("http://127.0.0.1:{port}/now");
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let uri: hyper::Uri = url.parse().expect("a uri");
    let mut wasm = Vec::with_capacity(samples);
    let mut native = Vec::with_capacity(samples);
    // Warm both: the pool's connection and the guest's first instance.
    for _ in 0..50 {
        let mut envelope = envelope(0, &["fetch".to_owned()]);
        envelope.payload = json!({"url": url});
        actor.call(&envelope).await.expect("a call");
        let response = client.get(uri.clone()).await.expect("a GET");
        response.into_body().collect().await.expect("a body");
    }
    for round in 0..samples {
        let mut envelope = envelope(round, &["fetch".to_owned()]);
        envelope.payload = json!({"url": url});
        let started = Instant::now();
        let outcome = actor.call(&envelope).await.expect("a call");
        wasm.push(started.elapsed());
        assert!(
            matches!(outcome, wasya::route_rules::Outcome::Outputs(_)),
            "fetch failed: {outcome:?}"
        );
        let started = Instant::now();
        let response = client.get(uri.clone()).await.expect("a GET");
        let body = response.into_body().collect().await.expect("a body");
        std::hint::black_box(body.to_bytes());
        native.push(started.elapsed());
    }
    wasm.sort();
    native.sort();
    let q = |sorted: &[Duration], q: f64| ms(sorted[((sorted.len() - 1) as f64 * q) as usize]);
    println!(
        "{}",
        json!({
            "wasm_p50_ms": q(&wasm, 0.5), "wasm_p99_ms": q(&wasm, 0.99),
            "native_p50_ms": q(&native, 0.5), "native_p99_ms": q(&native, 0.99),
        })
    );
}

fn figures(role: &str, env: &[(&str, String)]) -> Value {
    let (mut child, line) = child(role, env);
    let _ = child.wait();
    serde_json::from_str(&line).unwrap_or_else(|_| panic!("{role} printed `{line}`"))
}

/// The cells of a table row after `succeeded`: wall, memory and lag of one in-flight
/// run of `calls` calls.
fn load_cells(f: &Value, calls: usize) -> String {
    let get = |key: &str| f[key].as_f64().unwrap_or(0.0);
    let per_call_kib = (get("peak_rss_mib") - get("rss_before_mib")) * 1024.0 / calls as f64;
    format!(
        "{:.2} s | {:.0} MiB | {:.0} MiB | {per_call_kib:.0} KiB | {:.2} ms | {:.2} ms | {:.2} ms |",
        get("wall_s"),
        get("peak_rss_mib"),
        get("rss_before_mib"),
        get("lag_p50_ms"),
        get("lag_p99_ms"),
        get("lag_max_ms"),
    )
}

fn orchestrate() {
    let in_flight = env_usize("WASYA_BENCH_IN_FLIGHT", 10_000);
    let hold_ms = env_usize("WASYA_BENCH_HOLD_MS", 1000) as u64;
    let (mut holding, port) = server(hold_ms);
    let env_for = |kind: &str, calls: usize| {
        vec![
            ("WASYA_BENCH_KIND", kind.to_owned()),
            ("WASYA_BENCH_PORT", port.to_string()),
            ("WASYA_BENCH_IN_FLIGHT", calls.to_string()),
        ]
    };
    let env = |kind: &str| env_for(kind, in_flight);
    let wasm = figures("in-flight", &env("wasm"));
    let socket = figures("in-flight", &env("socket"));
    let python_async = figures("in-flight", &env("python-async"));
    let sync_in_flight = env_usize("WASYA_BENCH_SYNC_IN_FLIGHT", 1000);
    let sync_env = |kind: &str| env_for(kind, sync_in_flight);
    let python_fresh = figures("in-flight", &sync_env("python-fresh"));
    let python_warm = figures("in-flight", &sync_env("python-warm"));
    let _ = holding.kill();
    let _ = holding.wait();

    println!(
        "## {in_flight} envelopes in flight at once, the server holds each request {hold_ms} ms\n"
    );
    println!(
        "| actor | succeeded | wall | peak RSS | RSS before | per waiting call | lag p50 | lag p99 | lag max |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, f) in [
        ("wasm `fetch` (in-process component)", &wasm),
        (
            "socket actor, asyncio Asya-protocol runtime (node process)",
            &socket,
        ),
    ] {
        println!(
            "| {name} | {}/{in_flight} | {}",
            f["succeeded"],
            load_cells(f, in_flight)
        );
    }
    println!("\n## A Python handler making one chat-completions request each\n");
    println!(
        "| handler | in flight | succeeded | wall | peak RSS | RSS before | per waiting call | lag p50 | lag p99 | lag max |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, calls, f) in [
        (
            "`async def`, async world (one instance per 256 calls)",
            in_flight,
            &python_async,
        ),
        (
            "`def`, fresh instance per call",
            sync_in_flight,
            &python_fresh,
        ),
        ("`def`, warm instances", sync_in_flight, &python_warm),
    ] {
        println!(
            "| {name} | {calls} | {} | {}",
            f["succeeded"],
            load_cells(f, calls)
        );
    }
    let runtime_rss = socket["runtime_peak_rss_mib"].as_f64().unwrap_or(0.0);
    println!(
        "\nThe asyncio runtime process peaked at {runtime_rss:.0} MiB beside its node: {:.0} MiB in all.",
        runtime_rss + socket["peak_rss_mib"].as_f64().unwrap_or(0.0)
    );
    println!(
        "socket / wasm wall time: {:.2}",
        socket["wall_s"].as_f64().unwrap_or(0.0) / wasm["wall_s"].as_f64().unwrap_or(1.0)
    );

    let samples = env_usize("WASYA_BENCH_SAMPLES", 2000);
    let (mut quick, port) = server(0);
    let overhead = figures(
        "overhead",
        &[
            ("WASYA_BENCH_PORT", port.to_string()),
            ("WASYA_BENCH_SAMPLES", samples.to_string()),
        ],
    );
    let _ = quick.kill();
    let _ = quick.wait();
    let get = |key: &str| overhead[key].as_f64().unwrap_or(0.0);
    println!("\n## One request at a time, the server answers at once ({samples} samples each)\n");
    println!("| path | p50 | p99 |");
    println!("|---|---|---|");
    println!(
        "| `fetch` actor call (fresh instance, guest HTTP through wasi:http) | {:.3} ms | {:.3} ms |",
        get("wasm_p50_ms"),
        get("wasm_p99_ms")
    );
    println!(
        "| native hyper-util client, same process | {:.3} ms | {:.3} ms |",
        get("native_p50_ms"),
        get("native_p99_ms")
    );
    println!(
        "\nfetch / native p50: {:.2}x; the guest adds {:.3} ms per request",
        get("wasm_p50_ms") / get("native_p50_ms"),
        get("wasm_p50_ms") - get("native_p50_ms")
    );
}

fn main() {
    let role = std::env::var(ROLE).unwrap_or_default();
    if role.is_empty() {
        orchestrate();
        return;
    }
    let runtime = wasya::tokio_runtime().expect("tokio runtime");
    let port = env_usize("WASYA_BENCH_PORT", 0) as u16;
    runtime.block_on(async {
        match role.as_str() {
            "server" => serve(env_usize("WASYA_BENCH_HOLD_MS", 1000) as u64).await,
            "in-flight" => {
                let kind = std::env::var("WASYA_BENCH_KIND").unwrap_or_default();
                in_flight_run(&kind, port, env_usize("WASYA_BENCH_IN_FLIGHT", 10_000)).await
            }
            "overhead" => overhead_run(port, env_usize("WASYA_BENCH_SAMPLES", 2000)).await,
            other => panic!("unknown role {other}"),
        }
    });
}
