//! Following envelopes, measured: `cargo bench --bench follow`.
//!
//! 1. What following costs a hop: the 3-actor `echo` pipeline of `benches/pipeline.rs`
//!    (native and wasm echo) with progress kept off, kept on (the default), and kept on
//!    with every hop's span exported over OTLP/HTTP to a local receiver that answers
//!    at once. Throughput in hops/s, each a ratio to the run with neither.
//! 2. 10,000 clients each following its own envelope through a 3-hop route on one node
//!    over Server-Sent Events, beside the same envelopes followed by long-poll
//!    (`GET /v1/envelopes/{id}?wait=60s`): whether every client got every event and the
//!    outcome, wall time, the node's peak RSS, and its event-loop lag. The route's first
//!    actor is a socket actor whose asyncio runtime holds each call
//!    (`benches/runtimes/sleepy_runtime.py`, `WASYA_BENCH_HOLD_MS`, 200 ms by default)
//!    with 200 calls at once, so envelopes queue and their followers wait live, as
//!    behind a busy model; the other two are wasm `echo`.
//!
//! The node, the clients and the OTLP receiver each run in a process of their own
//! (this binary, started again with `WASYA_BENCH_ROLE`), so the node's RSS is its own.
//! `WASYA_BENCH_FOLLOWERS` and `WASYA_BENCH_ENVELOPES` size the runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::env_usize;
use common::pipeline::{HOPS, NativeEcho, echo_component, pipeline};
use common::runtime::{RuntimeProcess, repository};
use futures::StreamExt;
use http_body_util::Full;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use wasya::ActorRuntime;
use wasya::LagMonitor;
use wasya::Node;
use wasya::RouterSettings;
use wasya::config::{ActorOverrides, NodeConfig};
use wasya::trace::Exporter;

const ROLE: &str = "WASYA_BENCH_ROLE";

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// A child process of this binary in `role`; its first stdout line is returned.
fn child(role: &str, env: &[(&str, String)]) -> (Child, String) {
    let mut command = Command::new(std::env::current_exe().expect("this binary"));
    command
        .env(ROLE, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("the role starts");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("a first line");
    (child, line.trim().to_owned())
}

/// The next stdout line of a role.
fn next_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("a line");
    line.trim().to_owned()
}

// ---- 1. the cost on the hop ----

/// The OTLP receiver role: answers every POST at once; prints its port, then the
/// bytes received so far after each request.
async fn receive_spans() {
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    println!("{}", listener.local_addr().expect("an address").port());
    let received = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let received = received.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let received = received.clone();
                async move {
                    let body = http_body_util::BodyExt::collect(request.into_body())
                        .await
                        .map(|body| body.to_bytes().len())
                        .unwrap_or(0);
                    let total = received.fetch_add(body, Ordering::SeqCst) + body;
                    println!("{total}");
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::new())))
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn hop_cost(envelopes: usize, rounds: usize) {
    let (mut receiver, port) = child("spans", &[]);
    // The bytes the receiver has had, as it reports them.
    let received = Arc::new(AtomicUsize::new(0));
    let stdout = receiver.stdout.take().expect("stdout");
    let total = received.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(bytes) = line.parse() {
                total.store(bytes, Ordering::SeqCst);
            }
        }
    });
    let url = format!("http://127.0.0.1:{port}/v1/traces");
    let runtime = tokio::runtime::Handle::current();
    let exporter = tokio::task::spawn_blocking(move || Exporter::to_url(&url, runtime))
        .await
        .expect("a task")
        .expect("an exporter");
    let settings = |progress: bool, traces: bool| RouterSettings {
        keep_progress: progress,
        tracer: traces.then(|| exporter.clone()),
        ..RouterSettings::default()
    };
    println!(
        "## What following costs a hop: 3-actor echo pipeline, embedded transport ({envelopes} envelopes, best of {rounds})\n"
    );
    println!(
        "| actor | progress off | progress kept (default) | ratio | progress + OTLP traces | ratio |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, actor) in [
        (
            "native Rust echo",
            Arc::new(NativeEcho) as Arc<dyn ActorRuntime>,
        ),
        ("wasm echo", echo_component(true).await),
    ] {
        let mut best = [0.0f64; 3];
        // Alternate the three settings, so drift on a shared machine hits all alike.
        for _ in 0..rounds {
            for (slot, (progress, traces)) in [(false, false), (true, false), (true, true)]
                .into_iter()
                .enumerate()
            {
                let figure = pipeline(actor.clone(), settings(progress, traces), envelopes, 0)
                    .await
                    .hops_per_second;
                best[slot] = best[slot].max(figure);
            }
        }
        println!(
            "| {name} | {:.0} | {:.0} | {:.2} | {:.0} | {:.2} |",
            best[0],
            best[1],
            best[1] / best[0],
            best[2],
            best[2] / best[0],
        );
    }
    exporter.shutdown().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let traced_hops = rounds * envelopes * (HOPS + 1) * 2;
    let bytes = received.load(Ordering::SeqCst);
    println!(
        "\nSpans of {traced_hops} hops (3 actors and happy-end per envelope, both actors' runs) exported: {:.1} MB reached the OTLP receiver, {:.0} bytes per hop.",
        bytes as f64 / 1e6,
        bytes as f64 / traced_hops as f64
    );
    let _ = receiver.kill();
    let _ = receiver.wait();
}

// ---- 2. 10,000 followers ----

/// The node role: a node with the sleepy socket actor and the bundled actors; prints
/// its port, then its figures when stdin closes.
async fn node(hold_ms: u64) {
    let _ = wasya::cli::open_files::raise_limit();
    let mut python = Command::new("python3");
    python
        .arg(repository().join("host/benches/runtimes/sleepy_runtime.py"))
        .arg(format!("{}", hold_ms as f64 / 1000.0));
    let runtime = RuntimeProcess::start(&mut python);
    let mut per_actor = std::collections::BTreeMap::new();
    per_actor.insert(
        "sleepy".to_owned(),
        ActorOverrides {
            concurrency: Some(200),
            ..ActorOverrides::default()
        },
    );
    let mut config = NodeConfig {
        data_dir: None,
        ..NodeConfig::default()
    };
    config.api.listen = "127.0.0.1:0".parse().ok();
    config.serve.sockets = vec![("sleepy".to_owned(), runtime.socket())];
    config.actors.per_actor = per_actor;
    config.transport.queue_capacity = 100_000;
    let node = Node::start(config).await.expect("the node starts");
    let lag = LagMonitor::spawn(Duration::from_millis(10));
    let rss_before = common::status_mib("self", "VmRSS:");
    println!("{}", node.local_addr().expect("listening").port());
    // The orchestrator closes stdin when the clients are done.
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await;
    let figures = json!({
        "rss_before_mib": rss_before,
        "peak_rss_mib": common::peak_rss_mib(),
        "lag_p50_ms": ms(lag.quantile(0.5).unwrap_or_default()),
        "lag_p99_ms": ms(lag.quantile(0.99).unwrap_or_default()),
        "lag_max_ms": ms(lag.quantile(1.0).unwrap_or_default()),
    });
    println!("{figures}");
    let _ = std::io::stdout().flush();
    node.stop().await;
}

/// Events a follower saw: progress events and whether the outcome came, succeeded.
async fn follow_sse(client: &reqwest::Client, base: &str, id: &str) -> (usize, bool) {
    let Ok(response) = client
        .get(format!("{base}/v1/envelopes/{id}/events"))
        .send()
        .await
    else {
        return (0, false);
    };
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let (mut progress, mut ended) = (0, false);
    while let Some(Ok(chunk)) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            if block.contains("event: progress") {
                progress += 1;
            } else if block.contains("event: outcome") {
                ended = block.contains("\"status\":\"succeeded\"");
            }
        }
    }
    (progress, ended)
}

async fn follow_long_poll(client: &reqwest::Client, base: &str, id: &str) -> (usize, bool) {
    loop {
        let Ok(response) = client
            .get(format!("{base}/v1/envelopes/{id}?wait=60s"))
            .send()
            .await
        else {
            return (0, false);
        };
        let view: Value = response.json().await.unwrap_or(Value::Null);
        if view["status"] != "pending" {
            return (0, view["status"] == "succeeded");
        }
    }
}

/// The clients role: `followers` envelopes, each submitted and followed by its own
/// client task; prints one JSON line.
async fn clients(port: u16, followers: usize, mode: &str) {
    let _ = wasya::cli::open_files::raise_limit();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .expect("a client");
    let open = Arc::new(AtomicUsize::new(0));
    let most_open = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..followers {
        let (client, base, mode) = (client.clone(), base.clone(), mode.to_owned());
        let (open, most_open) = (open.clone(), most_open.clone());
        tasks.spawn(async move {
            let submitted = client
                .post(format!("{base}/v1/envelopes"))
                .json(&json!({"route": ["sleepy", "echo", "echo"], "payload": {"n": n}}))
                .send()
                .await
                .ok()?
                .json::<Value>()
                .await
                .ok()?;
            let id = submitted["id"].as_str()?.to_owned();
            let now = open.fetch_add(1, Ordering::SeqCst) + 1;
            most_open.fetch_max(now, Ordering::SeqCst);
            let seen = if mode == "sse" {
                follow_sse(&client, &base, &id).await
            } else {
                follow_long_poll(&client, &base, &id).await
            };
            open.fetch_sub(1, Ordering::SeqCst);
            Some(seen)
        });
        if n % 64 == 63 {
            tokio::task::yield_now().await;
        }
    }
    let (mut complete, mut events) = (0, 0);
    while let Some(seen) = tasks.join_next().await {
        if let Ok(Some((progress, ended))) = seen {
            events += progress;
            let all_events = mode != "sse" || progress == 3 * HOPS;
            complete += usize::from(ended && all_events);
        }
    }
    println!(
        "{}",
        json!({
            "complete": complete,
            "events": events,
            "wall_s": started.elapsed().as_secs_f64(),
            "most_open": most_open.load(Ordering::SeqCst),
        })
    );
}

fn followers_run(followers: usize, hold_ms: u64, mode: &str) -> (Value, Value) {
    let (mut node, port) = child("node", &[("WASYA_BENCH_HOLD_MS", hold_ms.to_string())]);
    let (mut clients, line) = child(
        "clients",
        &[
            ("WASYA_BENCH_PORT", port),
            ("WASYA_BENCH_FOLLOWERS", followers.to_string()),
            ("WASYA_BENCH_MODE", mode.to_owned()),
        ],
    );
    let _ = clients.wait();
    let client_figures: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
    drop(node.stdin.take());
    let node_figures: Value = serde_json::from_str(&next_line(&mut node)).unwrap_or(Value::Null);
    let _ = node.wait();
    (client_figures, node_figures)
}

fn orchestrate() {
    let envelopes = env_usize("WASYA_BENCH_ENVELOPES", 20_000);
    let rounds = env_usize("WASYA_BENCH_ROUNDS", 3);
    // The cost role prints its own table.
    // The span queue is made large enough to keep every span of a run (the SDK's
    // default, 2048, drops most of them at this rate).
    let status = Command::new(std::env::current_exe().expect("this binary"))
        .env(ROLE, "cost")
        .env("OTEL_BSP_MAX_QUEUE_SIZE", "262144")
        .env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "8192")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("WASYA_BENCH_ENVELOPES", envelopes.to_string())
        .env("WASYA_BENCH_ROUNDS", rounds.to_string())
        .status()
        .expect("the cost role runs");
    assert!(status.success(), "the cost role failed");

    let followers = env_usize("WASYA_BENCH_FOLLOWERS", 10_000);
    let hold_ms = env_usize("WASYA_BENCH_HOLD_MS", 200) as u64;
    println!(
        "\n## {followers} clients each following its own envelope (sleepy {hold_ms} ms, 200 at once → echo → echo)\n"
    );
    println!(
        "| followed by | complete | events | most open at once | wall | node peak RSS | RSS before | lag p50 | lag p99 | lag max |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, mode) in [
        ("SSE `/v1/envelopes/{id}/events`", "sse"),
        ("long-poll `?wait=60s`", "poll"),
    ] {
        let (clients, node) = followers_run(followers, hold_ms, mode);
        let f = |value: &Value, key: &str| value[key].as_f64().unwrap_or(0.0);
        println!(
            "| {name} | {}/{followers} | {} | {} | {:.2} s | {:.0} MiB | {:.0} MiB | {:.2} ms | {:.2} ms | {:.2} ms |",
            clients["complete"],
            clients["events"],
            clients["most_open"],
            f(&clients, "wall_s"),
            f(&node, "peak_rss_mib"),
            f(&node, "rss_before_mib"),
            f(&node, "lag_p50_ms"),
            f(&node, "lag_p99_ms"),
            f(&node, "lag_max_ms"),
        );
    }
}

fn main() {
    let role = std::env::var(ROLE).unwrap_or_default();
    if role.is_empty() {
        orchestrate();
        return;
    }
    let runtime = wasya::tokio_runtime().expect("a runtime");
    let port = env_usize("WASYA_BENCH_PORT", 0) as u16;
    runtime.block_on(async {
        match role.as_str() {
            "spans" => receive_spans().await,
            "cost" => {
                hop_cost(
                    env_usize("WASYA_BENCH_ENVELOPES", 20_000),
                    env_usize("WASYA_BENCH_ROUNDS", 3),
                )
                .await
            }
            "node" => node(env_usize("WASYA_BENCH_HOLD_MS", 200) as u64).await,
            "clients" => {
                let mode = std::env::var("WASYA_BENCH_MODE").unwrap_or_default();
                clients(port, env_usize("WASYA_BENCH_FOLLOWERS", 10_000), &mode).await
            }
            other => panic!("unknown role {other}"),
        }
    });
}
