//! Python and JavaScript handlers as wasm actors, against the same Python handler in a
//! Python runtime behind the socket, Asya's way: `cargo bench --bench languages`
//! (python3, and the toolchains of `wasya build`: componentize-py, componentize-js).
//!
//! Two handlers (`benches/handlers`): `double` (small) and `tally` (JSON-heavy, 200
//! order lines in, totals and a line per item out). For each, on one router, one run:
//!
//! - the baseline: the Asya-protocol runtime (`runtimes/python`, or the script in
//!   `WASYA_BENCH_RUNTIME`) one connection at a time, as Asya's runtime serves, and the
//!   actor's concurrency 1, as Asya's sidecar runs it by default;
//! - the same runtime serving on threads, 8 connections;
//! - the handler built with `wasya build`: Python and JavaScript at the defaults (no
//!   options: warm instances, the cores' concurrency), with a fresh instance per
//!   message and with warm instances set; warm at concurrency 1 beside the baseline;
//! - the handler as an `async def` (`double_async`: the async world, one instance
//!   entered by many calls), one call at a time and 64 in flight;
//! - the same work in Rust (the bundled `double` and `tally`), fresh instances.
//!
//! Throughput is measured with 256 envelopes in flight, latency one at a time; the
//! ratios are to the baseline (above 1 is faster). `WASYA_BENCH_HANDLERS` (`double,tally`)
//! and `WASYA_BENCH_LANGS` (`python,js,rust`) narrow a run, for profiling.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::hop::{Figures, one_hop};
use common::runtime::{RuntimeProcess, repository};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasya::cli::build::{Mode, build_js, build_python};
use wasya::{ActorLimits, ActorRuntime};
use wasya::{EngineOptions, WasmEngine};
use wasya::{SocketActor, SocketOptions};

type Payload = Arc<dyn Fn(usize) -> Value + Send + Sync>;

fn payload_of(handler: &str) -> Payload {
    match handler {
        "double" => Arc::new(|n| json!({"n": n})),
        _ => Arc::new(|n| {
            let items: Vec<Value> = (0..200)
                .map(|i| {
                    json!({
                        "id": format!("line-{n}-{i}"),
                        "price": 1.25 + (i % 17) as f64,
                        "qty": 1 + i % 5,
                        "tags": ["retail", if i % 2 == 0 { "even" } else { "odd" }, format!("t{}", i % 7)],
                    })
                })
                .collect();
            json!({"order": n, "items": items})
        }),
    }
}

fn socket(path: &Path, connections: usize) -> Arc<dyn ActorRuntime> {
    Arc::new(SocketActor::new(
        "bench",
        SocketOptions {
            path: path.to_owned(),
            timeout: Duration::from_secs(60),
            frame_limit: wasya::defaults::FRAME_LIMIT,
            connections,
        },
        tokio_util::sync::CancellationToken::new(),
    ))
}

/// The handler built with `wasya build` in `lang`; `None` when its toolchain is not
/// installed.
async fn component(lang: &str, handler: &str, out: &Path) -> Option<Arc<[u8]>> {
    let file = out.join(format!("{lang}-{handler}.wasm"));
    let handlers = repository().join("host/benches/handlers");
    let built = match lang {
        "python" => {
            let name = format!("bench_handlers.{handler}");
            build_python(&name, &handlers.join("python"), Mode::Payload, &file).await
        }
        _ => {
            let module = handlers.join("js/bench_handlers.js");
            build_js(&module, handler, Mode::Payload, &file).await
        }
    };
    match built {
        Ok(()) => Some(Arc::from(std::fs::read(&file).expect("the component"))),
        Err(error) => {
            eprintln!("{lang} `{handler}` not measured: {error:#}");
            None
        }
    }
}

async fn wasm(
    engine: &WasmEngine,
    name: &str,
    bytes: Arc<[u8]>,
    reuse: Option<bool>,
) -> Arc<dyn ActorRuntime> {
    let limits = ActorLimits {
        reuse_instances: reuse,
        ..ActorLimits::default()
    };
    let (actor, _) = engine.load(name, bytes, limits).await.expect("loads");
    Arc::new(actor)
}

fn bundled(name: &str) -> Arc<[u8]> {
    let (_, bytes) = wasya::bundled::BUNDLED_ACTORS
        .iter()
        .find(|(bundled, _)| *bundled == name)
        .expect("a bundled actor");
    Arc::from(*bytes)
}

fn ms(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1e3)
}

fn row(name: &str, concurrency: usize, figures: &Figures, baseline: &Figures) {
    println!(
        "| {name} | {concurrency} | {:.0} | {:.2} | {} | {} | {:.2} |",
        figures.per_second,
        figures.per_second / baseline.per_second,
        ms(figures.p50),
        ms(figures.p99),
        baseline.p50.as_secs_f64() / figures.p50.as_secs_f64(),
    );
}

async fn run() {
    let envelopes = common::env_usize("WASYA_BENCH_ENVELOPES", 2_000);
    let samples = common::env_usize("WASYA_BENCH_SAMPLES", 500);
    let cores = wasya::config::default_concurrency();
    let engine = WasmEngine::new(&EngineOptions::default()).expect("an engine");
    let out = tempfile::tempdir().expect("a directory");
    println!(
        "runtime script: {}; {envelopes} envelopes (256 in flight), {samples} one at a time; {cores} cores",
        common::runtime::runtime_script().display()
    );
    let listed = |name: &str, default: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| default.to_owned())
            .split(',')
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let langs = listed("WASYA_BENCH_LANGS", "python,js,rust");
    for handler in listed("WASYA_BENCH_HANDLERS", "double,tally") {
        let handler = handler.as_str();
        let payload = payload_of(handler);
        let handlers: PathBuf = repository().join("host/benches/handlers/python");
        let asya_handler = format!("bench_handlers.{handler}");
        println!("\n## `{handler}`\n");
        println!(
            "| actor | concurrency | envelopes/s | throughput ratio | p50 | p99 | p50 ratio |"
        );
        println!("|---|---|---|---|---|---|---|");
        let sequential = RuntimeProcess::serving(&asya_handler, &handlers, false);
        let baseline = one_hop(
            socket(&sequential.socket(), 1),
            1,
            envelopes,
            samples,
            payload.clone(),
        )
        .await;
        row(
            "Python, socket, one at a time (baseline)",
            1,
            &baseline,
            &baseline,
        );
        drop(sequential);
        let threaded = RuntimeProcess::serving(&asya_handler, &handlers, true);
        let figures = one_hop(
            socket(&threaded.socket(), 8),
            8,
            envelopes,
            samples,
            payload.clone(),
        )
        .await;
        row("Python, socket, threads", 8, &figures, &baseline);
        drop(threaded);
        for lang in ["python", "js"]
            .into_iter()
            .filter(|lang| langs.iter().any(|l| l == lang))
        {
            let Some(bytes) = component(lang, handler, out.path()).await else {
                continue;
            };
            let label = if lang == "python" {
                "Python"
            } else {
                "JavaScript"
            };
            let defaults = wasm(&engine, handler, bytes.clone(), None).await;
            let figures = one_hop(defaults, cores, envelopes, samples, payload.clone()).await;
            row(
                &format!("{label}, wasm, the defaults (no options)"),
                cores,
                &figures,
                &baseline,
            );
            let fresh = wasm(&engine, handler, bytes.clone(), Some(false)).await;
            let figures = one_hop(fresh, cores, envelopes, samples, payload.clone()).await;
            row(
                &format!("{label}, wasm, fresh instance per message"),
                cores,
                &figures,
                &baseline,
            );
            for concurrency in [cores, 1] {
                let warm = wasm(&engine, handler, bytes.clone(), Some(true)).await;
                let figures = one_hop(warm, concurrency, envelopes, samples, payload.clone()).await;
                row(
                    &format!("{label}, wasm, warm instances"),
                    concurrency,
                    &figures,
                    &baseline,
                );
            }
        }
        let async_handler = format!("{handler}_async");
        if handler == "double"
            && langs.iter().any(|lang| lang == "python")
            && let Some(bytes) = component("python", &async_handler, out.path()).await
        {
            // One instance, many calls at once: one at a time, then 64 in flight.
            for concurrency in [1, 64] {
                let actor = wasm(&engine, &async_handler, bytes.clone(), None).await;
                let figures =
                    one_hop(actor, concurrency, envelopes, samples, payload.clone()).await;
                row(
                    "Python, wasm, `async def` (async world)",
                    concurrency,
                    &figures,
                    &baseline,
                );
            }
        }
        if langs.iter().any(|lang| lang == "rust") {
            let rust = wasm(&engine, handler, bundled(handler), Some(false)).await;
            let figures = one_hop(rust, cores, envelopes, samples, payload.clone()).await;
            row(
                "Rust, wasm, fresh instance per message",
                cores,
                &figures,
                &baseline,
            );
        }
    }
}

fn main() {
    let runtime = wasya::tokio_runtime().expect("tokio runtime");
    runtime.block_on(run());
}
