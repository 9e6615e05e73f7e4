//! Deploying, measured: `cargo bench --bench deploy`.
//!
//! A node (embedded queue, HTTP API on loopback, its own data directory) is started in
//! this process with no actors, and driven over HTTP as a user would.
//!
//! 1. Upload-to-serving: from the start of `PUT /v1/actors/{name}` to the first
//!    envelope through the new actor coming back succeeded, for a small component
//!    (`echo`, ~43 KB) and a large one (`grep`, ~1 MB: a regex engine), once with an
//!    empty compile cache (a compile) and once with the component already compiled (a
//!    cache hit: the same bytes under a new name). The baseline, in the same run, is
//!    the same envelope through an actor that is already served.
//! 2. Hot swap under load: clients keep submitting to one actor and waiting for each
//!    outcome; one run swaps the actor's version every 250 ms (echo ↔ upper), the
//!    other does not. Throughput of both, their ratio, and failures (must be 0).
//!
//! Knobs: `WASYA_BENCH_REPEATS` (default 5), `WASYA_BENCH_SWAP_SECONDS` (default 4),
//! `WASYA_BENCH_CLIENTS` (default 32).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::env_usize;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wasya::Node;
use wasya::NodeConfig;

fn guest(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("WASYA_GUESTS_DIR")).join(format!("{name}.wasm")))
        .expect("the example guests are built")
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn upload(&self, name: &str, bytes: Vec<u8>) -> u16 {
        self.http
            .put(format!("{}/v1/actors/{name}", self.base))
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .expect("the node answers")
            .status()
            .as_u16()
    }

    /// Submits one envelope and waits for its outcome; true when it succeeded.
    async fn round_trip(&self, actor: &str, payload: Value) -> bool {
        let submitted: Value = self
            .http
            .post(format!("{}/v1/envelopes", self.base))
            .json(&json!({"route": [actor], "payload": payload}))
            .send()
            .await
            .expect("the node answers")
            .json()
            .await
            .expect("an id");
        let id = submitted["id"].as_str().expect("an id");
        let outcome: Value = self
            .http
            .get(format!("{}/v1/envelopes/{id}?wait=30s", self.base))
            .send()
            .await
            .expect("the node answers")
            .json()
            .await
            .expect("an outcome");
        outcome["status"] == "succeeded"
    }
}

fn payload_for(component: &str) -> Value {
    match component {
        "grep" => json!({"pattern": "o", "text": "one\ntwo\nsix"}),
        _ => json!({"text": "bench"}),
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

async fn upload_to_serving(api: &Api, data_dir: &std::path::Path, repeats: usize) {
    println!("upload-to-serving (median of {repeats}):");
    assert_eq!(api.upload("baseline", guest("echo")).await, 201);
    let mut baseline = Vec::new();
    for _ in 0..repeats * 4 {
        let started = Instant::now();
        assert!(api.round_trip("baseline", payload_for("echo")).await);
        baseline.push(started.elapsed());
    }
    let baseline = median(baseline);
    println!(
        "  baseline: one envelope through a served actor   {}",
        ms(baseline)
    );
    let mut serial = 0;
    for component in ["echo", "grep"] {
        let bytes = guest(component);
        for cached in [false, true] {
            let mut samples = Vec::new();
            for _ in 0..repeats {
                if !cached {
                    let compiled = data_dir.join("compiled");
                    if compiled.exists() {
                        std::fs::remove_dir_all(&compiled).expect("the cache is cleared");
                    }
                }
                serial += 1;
                let name = format!("{component}-{serial}");
                let started = Instant::now();
                assert_eq!(api.upload(&name, bytes.clone()).await, 201);
                assert!(api.round_trip(&name, payload_for(component)).await);
                samples.push(started.elapsed());
            }
            let median = median(samples);
            println!(
                "  {component:<5} {:>8} KiB  {:<9}  {:>10}  ({:.1}x baseline)",
                bytes.len() / 1024,
                if cached { "cache hit" } else { "compile" },
                ms(median),
                median.as_secs_f64() / baseline.as_secs_f64()
            );
        }
    }
}

/// Runs `clients` submit-and-wait loops on `actor` for `seconds`; swaps its version
/// every 250 ms when `swap`. Returns (succeeded, failed, swaps).
async fn steady_load(
    api: Arc<Api>,
    actor: &str,
    seconds: u64,
    clients: usize,
    swap: bool,
) -> (u64, u64, u64) {
    let done = Arc::new(AtomicBool::new(false));
    let succeeded = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (api, done, succeeded, failed) =
            (api.clone(), done.clone(), succeeded.clone(), failed.clone());
        let actor = actor.to_owned();
        tasks.push(tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if api.round_trip(&actor, json!({"text": "x"})).await {
                    succeeded.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let started = Instant::now();
    let mut swaps = 0;
    let versions = [guest("upper"), guest("echo")];
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if swap {
            let status = api
                .upload(actor, versions[swaps as usize % 2].clone())
                .await;
            assert_eq!(status, 201, "a swap");
            swaps += 1;
        }
    }
    done.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("a client");
    }
    (
        succeeded.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        swaps,
    )
}

async fn hot_swap(api: Arc<Api>, seconds: u64, clients: usize) {
    println!(
        "hot swap under load ({clients} clients, 2 x {seconds} s per case, alternating, submit + wait per envelope):"
    );
    assert_eq!(api.upload("steady", guest("echo")).await, 201);
    assert_eq!(api.upload("swapped", guest("echo")).await, 201);
    // Warm both versions' compiled forms so the swaps are what a redeploy costs.
    assert_eq!(api.upload("warm", guest("upper")).await, 201);
    // Alternate the two cases, so a drift of the machine falls on both alike.
    let (mut base_ok, mut base_failed, mut swap_ok, mut swap_failed, mut swaps) = (0, 0, 0, 0, 0);
    for _ in 0..2 {
        let (ok, failed, _) = steady_load(api.clone(), "steady", seconds, clients, false).await;
        base_ok += ok;
        base_failed += failed;
        let (ok, failed, swapped) =
            steady_load(api.clone(), "swapped", seconds, clients, true).await;
        swap_ok += ok;
        swap_failed += failed;
        swaps += swapped;
    }
    let base_rate = base_ok as f64 / (2 * seconds) as f64;
    let swap_rate = swap_ok as f64 / (2 * seconds) as f64;
    println!("  no swap:           {base_rate:>9.0} envelopes/s, failed {base_failed}");
    println!(
        "  swap every 250 ms: {swap_rate:>9.0} envelopes/s, failed {swap_failed}, {swaps} swaps"
    );
    println!("  ratio (swap / no swap): {:.3}", swap_rate / base_rate);
    assert_eq!(base_failed + swap_failed, 0, "a swap failed envelopes");
}

fn main() {
    let runtime = wasya::tokio_runtime().expect("a tokio runtime");
    runtime.block_on(async {
        let data = tempfile::tempdir().expect("a data directory");
        let mut config = NodeConfig {
            data_dir: Some(data.path().to_owned()),
            ..NodeConfig::default()
        };
        config.api.listen = Some("127.0.0.1:0".parse().expect("an address"));
        config.serve.only = Some(Vec::new());
        let node = Node::start(config).await.expect("the node starts");
        let addr = node.local_addr().expect("the API is bound");
        let api = Arc::new(Api {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        });
        upload_to_serving(&api, data.path(), env_usize("WASYA_BENCH_REPEATS", 5)).await;
        hot_swap(
            api,
            env_usize("WASYA_BENCH_SWAP_SECONDS", 4) as u64,
            env_usize("WASYA_BENCH_CLIENTS", 32),
        )
        .await;
        node.stop().await;
    });
}
