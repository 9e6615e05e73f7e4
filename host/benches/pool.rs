//! A pool sharing a control plane, measured: `cargo bench --bench pool` (needs the
//! local RabbitMQ and PostgreSQL, as the tests do).
//!
//! Real `wasya` processes on a RabbitMQ virtual host and a PostgreSQL schema of the
//! run's own.
//!
//! 1. Start to serving: a node with an empty data directory starts while the store
//!    records 10 deployed actors (then 100: the same ten components under ninety more
//!    names); from spawning the process to its API listening
//!    (which it does once every recorded actor is served). With the compiled forms
//!    shared in the store, against the same start after they were deleted from it (so
//!    the node compiles all 10), alternating.
//! 2. Deploy to served everywhere: with three nodes up, a new version is uploaded to
//!    one; the time until all three serve it (polling every 2 ms), against the upload's
//!    own answer time on the node that took it.
//!
//! Knobs: `WASYA_BENCH_REPEATS` (default 3 starts per case, 10 deploys).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::env_usize;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ACTORS: [&str; 10] = [
    "echo", "upper", "split", "drop", "fail", "leak", "grep", "env", "route", "spin",
];

fn guest(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("WASYA_GUESTS_DIR")).join(format!("{name}.wasm")))
        .expect("the example guests are built")
}

fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("{program} runs: {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn psql(sql: &str) -> String {
    run(
        "psql",
        &[
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-v",
            "ON_ERROR_STOP=1",
            "-qtAc",
            sql,
        ],
    )
}

struct Pool {
    name: String,
}

impl Pool {
    fn new() -> Pool {
        let name = format!("wasya_bench_{}", std::process::id());
        psql(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
        run("rabbitmqctl", &["-q", "add_vhost", &name]);
        run(
            "rabbitmqctl",
            &[
                "-q",
                "set_permissions",
                "-p",
                &name,
                "guest",
                ".*",
                ".*",
                ".*",
            ],
        );
        Pool { name }
    }

    /// Starts a node with an empty data directory; returns it once its API listens.
    fn start(&self) -> (Node, Duration) {
        let data = tempfile::tempdir().expect("a data directory");
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_wasya"))
            .args([
                "--log-format",
                "json",
                "up",
                "--listen",
                "127.0.0.1:0",
                "--serve",
                "none",
            ])
            .arg("--amqp")
            .arg(format!("amqp://guest:guest@127.0.0.1:5672/{}", self.name))
            .arg("--store")
            .arg("postgres://postgres@127.0.0.1:5432/test")
            .arg("--store-schema")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the wasya binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        let address = loop {
            let line = lines
                .next()
                .expect("the node logs until it listens")
                .expect("a log line");
            if let Ok(event) = serde_json::from_str::<Value>(&line)
                && event["message"] == "HTTP API listening"
            {
                break event["address"].as_str().expect("an address").to_owned();
            }
        };
        let elapsed = started.elapsed();
        // Keep draining the log so the node never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        (
            Node {
                child,
                base: format!("http://{address}"),
                _data: data,
            },
            elapsed,
        )
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-q", "delete_vhost", &self.name])
            .output();
        let _ = psql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

struct Node {
    child: Child,
    base: String,
    _data: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn upload(http: &reqwest::blocking::Client, node: &Node, name: &str, bytes: Vec<u8>) -> Value {
    let response = http
        .put(format!("{}/v1/actors/{name}", node.base))
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .expect("the node answers");
    assert!(
        response.status().is_success(),
        "upload of {name}: {}",
        response.status()
    );
    response.json().expect("a deployment")
}

fn digest_on(http: &reqwest::blocking::Client, node: &Node, name: &str) -> Option<String> {
    let response = http
        .get(format!("{}/v1/actors/{name}", node.base))
        .send()
        .ok()?;
    let actor: Value = response.json().ok()?;
    actor["digest"].as_str().map(str::to_owned)
}

/// How many of the bench's actors `node` serves.
fn served(http: &reqwest::blocking::Client, node: &Node) -> usize {
    let actors: Value = http
        .get(format!("{}/v1/actors", node.base))
        .send()
        .expect("the node answers")
        .json()
        .expect("the actors");
    actors
        .as_array()
        .into_iter()
        .flatten()
        .filter(|actor| {
            actor["name"]
                .as_str()
                .is_some_and(|name| name.starts_with("b-"))
        })
        .count()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// Starts a node on the pool while the store records `count` actors, with the
/// compiled forms shared and without them, alternating; prints the medians.
fn cold_starts(pool: &Pool, http: &reqwest::blocking::Client, repeats: usize, count: usize) {
    println!(
        "start to serving {count} recorded actors, empty data directory (median of {repeats}):"
    );
    let (mut shared, mut compiled) = (Vec::new(), Vec::new());
    for _ in 0..repeats {
        let (node, took) = pool.start();
        assert_eq!(served(http, &node), count, "every recorded actor is served");
        shared.push(took);
        drop(node);
        psql(&format!("DELETE FROM {}.artifacts", pool.name));
        let (node, took) = pool.start();
        assert_eq!(served(http, &node), count, "every recorded actor is served");
        compiled.push(took);
        drop(node);
    }
    let (shared, compiled) = (median(shared), median(compiled));
    println!("  compiled here (no shared artifacts): {}", ms(compiled));
    println!("  shared artifacts:                    {}", ms(shared));
    println!(
        "  ratio (shared / compiled): {:.3}",
        shared.as_secs_f64() / compiled.as_secs_f64()
    );
}

fn main() {
    let repeats = env_usize("WASYA_BENCH_REPEATS", 3);
    let http = reqwest::blocking::Client::new();
    let pool = Pool::new();
    let (first, _) = pool.start();
    for actor in ACTORS {
        upload(&http, &first, &format!("b-{actor}"), guest(actor));
    }
    cold_starts(&pool, &http, repeats, ACTORS.len());
    // The same ten components under ninety more names: a hundred actors to serve.
    for copy in 1..10 {
        for actor in ACTORS {
            upload(&http, &first, &format!("b-{actor}-{copy}"), guest(actor));
        }
    }
    cold_starts(&pool, &http, repeats, ACTORS.len() * 10);

    let (second, _) = pool.start();
    let (third, _) = pool.start();
    let nodes = [&first, &second, &third];
    let deploys = repeats.max(1) * 10 / 3;
    let (mut answered, mut everywhere) = (Vec::new(), Vec::new());
    for n in 0..deploys {
        let bytes = guest(if n % 2 == 0 { "upper" } else { "echo" });
        let started = Instant::now();
        let deployed = upload(&http, &first, "b-swap", bytes);
        answered.push(started.elapsed());
        let digest = deployed["digest"].as_str().expect("a digest").to_owned();
        while !nodes
            .iter()
            .all(|node| digest_on(&http, node, "b-swap").as_deref() == Some(digest.as_str()))
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "not served everywhere"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        everywhere.push(started.elapsed());
    }
    let worst = everywhere.iter().max().copied().unwrap_or_default();
    let (answered, everywhere) = (median(answered), median(everywhere));
    println!("deploy to served on all 3 nodes (median of {deploys}):");
    println!(
        "  upload answered by the node that took it: {}",
        ms(answered)
    );
    println!(
        "  served on every node:                     {} (worst {})",
        ms(everywhere),
        ms(worst)
    );
    println!(
        "  ratio (everywhere / answered): {:.2}",
        everywhere.as_secs_f64() / answered.as_secs_f64()
    );
}
