//! Test harness: starts the real `wasya` binary and talks to it over HTTP.
//!
//! A node is started with `--listen 127.0.0.1:0` and JSON logs; the harness reads the
//! bound address from the log, so tests run in parallel without port clashes. The
//! process is killed when the handle is dropped, and its log is printed when a test
//! fails (it goes to the captured test output).

#![allow(dead_code)]

/// Runs each named case, an `async fn(Kind)`, once per transport.
macro_rules! on_both_transports {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test]
            async fn $case() {
                super::$case(crate::support::Kind::Embedded).await
            })*
        }
        mod amqp {
            $(#[tokio::test]
            async fn $case() {
                super::$case(crate::support::Kind::Amqp).await
            })*
        }
    };
}

mod broker;
pub mod browser;
pub mod manifests;
mod postgres;
pub mod python;
mod runtime;
pub mod s3;
pub mod sse;
mod tls_postgres;
pub mod web;
pub use broker::Broker;
pub use postgres::Postgres;
pub use runtime::Runtime;
pub use tls_postgres::TlsPostgres;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs `wasya --log-format json up` on a free port in a fresh data directory with
/// `extra` flags and `env` (the variables in `unset` removed), reads its log lines
/// until one satisfies `until`, the process ends, or 20 s pass, then stops it; the
/// lines read. For what a node logs when it starts, or refuses to.
pub fn up_log_until(
    extra: &[&str],
    env: &[(&str, &str)],
    unset: &[&str],
    until: impl Fn(&str) -> bool,
) -> Vec<String> {
    let data = tempfile::tempdir().expect("a data directory");
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasya"));
    command
        .args(["--log-format", "json", "up", "--listen", "127.0.0.1:0"])
        .args(extra)
        .arg("--data-dir")
        .arg(data.path())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for name in unset {
        command.env_remove(name);
    }
    let mut child = command.spawn().expect("the wasya binary starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = Vec::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        let done = until(&line);
        lines.push(line);
        if done || Instant::now() > deadline {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

/// Runs `wasya --log-format json sidecar` with `env` alone (plus `WASYA_LOG=info`),
/// reads its log lines until one satisfies `until`, the process ends, or `limit`
/// passes; then stops it. The lines read, and the exit code if it ended by itself.
pub fn sidecar_log_until(
    env: &[(&str, &str)],
    limit: Duration,
    until: impl Fn(&str) -> bool,
) -> (Vec<String>, Option<i32>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasya"));
    command
        .args(["--log-format", "json", "sidecar"])
        .env("WASYA_LOG", "info")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("the wasya binary starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (line_tx, line_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + limit;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match line_rx.recv_timeout(left) {
            Ok(line) => {
                let done = until(&line);
                lines.push(line);
                if done {
                    break;
                }
            }
            // The process closed stderr (it ended), or the time is up.
            Err(_) => break,
        }
    }
    let ended = match child.try_wait() {
        Ok(Some(status)) => status.code(),
        _ => {
            // Give a process that is on its way out a moment to end by itself.
            std::thread::sleep(Duration::from_millis(200));
            match child.try_wait() {
                Ok(Some(status)) => status.code(),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    None
                }
            }
        }
    };
    (lines, ended)
}

/// A data directory of a node's own, whose compiled-component cache is shared by
/// every node the tests start (so only the first compiles); deployments and queues
/// stay apart.
pub fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a data directory");
    link_compile_cache(dir.path());
    dir
}

/// Points `dir/compiled` at the compile cache the test nodes share.
pub fn link_compile_cache(dir: &std::path::Path) {
    let shared = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wasya-e2e-compiled");
    std::fs::create_dir_all(&shared).expect("the shared compile cache");
    std::os::unix::fs::symlink(&shared, dir.join("compiled")).expect("a link to the cache");
}

/// Which transport a node runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Embedded,
    Amqp,
}

/// A running `wasya up` process.
pub struct NodeProcess {
    child: Option<Child>,
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
    broker: Option<Arc<Broker>>,
    data: Option<tempfile::TempDir>,
}

impl NodeProcess {
    /// Starts a node on `kind`; on RabbitMQ in a virtual host of its own.
    pub fn start_on(kind: Kind, extra: &[&str]) -> NodeProcess {
        match kind {
            Kind::Embedded => Self::start(extra),
            Kind::Amqp => Self::start_on_broker(&Arc::new(Broker::new()), extra),
        }
    }

    /// Starts a node on `kind` with extra flags and environment variables.
    pub fn start_on_with(kind: Kind, extra: &[&str], env: &[(&str, &str)]) -> NodeProcess {
        match kind {
            Kind::Embedded => Self::start_with(extra, env),
            Kind::Amqp => Self::start_on_broker_with(&Arc::new(Broker::new()), extra, env),
        }
    }

    /// Starts a node on `broker` (several nodes may share one).
    pub fn start_on_broker(broker: &Arc<Broker>, extra: &[&str]) -> NodeProcess {
        let url = broker.url();
        let mut args = vec!["--amqp", url.as_str()];
        args.extend_from_slice(extra);
        let mut node = Self::start(&args);
        node.broker = Some(broker.clone());
        node
    }

    /// Starts a node on `broker` with extra flags and environment variables.
    pub fn start_on_broker_with(
        broker: &Arc<Broker>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> NodeProcess {
        let url = broker.url();
        let mut args = vec!["--amqp", url.as_str()];
        args.extend_from_slice(extra);
        let mut node = Self::start_with(&args, env);
        node.broker = Some(broker.clone());
        node
    }

    /// The broker this node runs on, if any.
    pub fn broker(&self) -> Option<&Arc<Broker>> {
        self.broker.as_ref()
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts `wasya up` with extra flags; returns once its API is listening.
    pub fn start(extra: &[&str]) -> NodeProcess {
        Self::start_with(extra, &[])
    }

    /// Starts `wasya up` with extra flags and environment variables.
    pub fn start_with(extra: &[&str], env: &[(&str, &str)]) -> NodeProcess {
        let data = (!extra.contains(&"--data-dir")).then(data_dir);
        Self::start_in(data, extra, env)
    }

    /// Starts `wasya up` in a data directory entirely its own (no shared compile
    /// cache), so a test can tell what the node itself wrote there.
    pub fn start_alone(extra: &[&str]) -> NodeProcess {
        let data = tempfile::tempdir().expect("a data directory");
        Self::start_in(Some(data), extra, &[])
    }

    fn start_in(
        data: Option<tempfile::TempDir>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> NodeProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wasya"));
        command.args(["--log-format", "json", "up", "--listen", "127.0.0.1:0"]);
        if let Some(data) = &data {
            command.arg("--data-dir").arg(data.path());
        }
        command.args(extra);
        let mut node = Self::spawn(command, env);
        node.data = data;
        node
    }

    /// Starts `wasya up` listening on `address` (where an earlier node listened, to
    /// restart it there), with extra flags and environment variables.
    pub fn start_at(address: &str, extra: &[&str], env: &[(&str, &str)]) -> NodeProcess {
        let data = data_dir();
        let mut command = Command::new(env!("CARGO_BIN_EXE_wasya"));
        command.args(["--log-format", "json", "up", "--listen", address]);
        command.arg("--data-dir").arg(data.path());
        command.args(extra);
        let mut node = Self::spawn(command, env);
        node.data = Some(data);
        node
    }

    /// The address the API listens on (`127.0.0.1:PORT`).
    pub fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// Starts `wasya sidecar` configured by `env` alone.
    pub fn sidecar(env: &[(&str, &str)]) -> NodeProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wasya"));
        command.args(["--log-format", "json", "sidecar"]);
        Self::spawn(command, env)
    }

    /// Starts `wasya sidecar` with metrics off (`ASYA_METRICS_ENABLED=false`): nothing
    /// listens, so this returns once it logs `node up`; `base` is empty.
    pub fn sidecar_without_listener(env: &[(&str, &str)]) -> NodeProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wasya"));
        command.args(["--log-format", "json", "sidecar"]);
        Self::spawn_until(command, env, false)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn spawn(command: Command, env: &[(&str, &str)]) -> NodeProcess {
        Self::spawn_until(command, env, true)
    }

    /// Spawns the node and waits until its API listens (`listening`), else until it
    /// logs `node up`.
    fn spawn_until(mut command: Command, env: &[(&str, &str)], listening: bool) -> NodeProcess {
        command
            .env("WASYA_LOG", "info,wasya::guest=debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the wasya binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Ok(event) = serde_json::from_str::<Value>(&line) {
                        if listening
                            && event["message"] == "HTTP API listening"
                            && let Some(address) = event["address"].as_str()
                        {
                            let _ = address_tx.send(format!("http://{address}"));
                        }
                        if !listening && event["message"] == "node up" {
                            let _ = address_tx.send(String::new());
                        }
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let address = address_rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| {
                panic!(
                    "the node did not start listening; log:\n{}",
                    log.lock().unwrap().join("\n")
                )
            });
        NodeProcess {
            child: Some(child),
            base: address,
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
            broker: None,
            data: None,
        }
    }

    /// The sum of the samples of metric `name` whose labels include `labels`, as
    /// `/metrics` gives them now (0 where none has been counted yet).
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let (status, text) = self.get_text("/metrics").await;
        assert_eq!(status, 200, "/metrics: {text}");
        prometheus_parse::Scrape::parse(BufReader::new(text.as_bytes()).lines())
            .expect("the Prometheus parser reads /metrics")
            .samples
            .iter()
            .filter(|sample| {
                sample.metric == name
                    && labels
                        .iter()
                        .all(|(label, value)| sample.labels.get(label) == Some(value))
            })
            .map(|sample| match &sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                other => panic!("{name} is not a counter or a gauge: {other:?}"),
            })
            .sum()
    }

    /// Waits up to 10 s for a log line matching `predicate` (the log is read from a
    /// pipe, so a line can arrive after the HTTP answer it preceded).
    pub async fn wait_for_log(&self, predicate: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log().iter().any(|line| predicate(line)) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// The log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Submits an envelope; returns its id.
    pub async fn submit(&self, route: &[&str], payload: Value) -> String {
        self.submit_body(json!({"route": route, "payload": payload}))
            .await
    }

    /// Submits a full request body; returns the id.
    pub async fn submit_body(&self, body: Value) -> String {
        let (status, answer) = self.post_json("/v1/envelopes", &body).await;
        assert_eq!(status, 202, "submit answered {status}: {answer}");
        answer["id"].as_str().expect("an id").to_owned()
    }

    /// POSTs JSON; returns the status and body.
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("the node answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POSTs raw bytes onto an actor's queue.
    pub async fn publish_raw(&self, actor: &str, body: impl Into<reqwest::Body>) -> u16 {
        self.http
            .post(format!("{}/v1/queues/{actor}/messages", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the node answers")
            .status()
            .as_u16()
    }

    /// GETs a path; returns status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let (status, text) = self.get_text(path).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Uploads a component as actor `name`; the status and the answer. A client of
    /// its own: a node that refuses an oversized body closes that connection.
    pub async fn upload(&self, name: &str, bytes: Vec<u8>) -> (u16, Value) {
        let request = reqwest::Client::new()
            .put(format!("{}/v1/actors/{name}", self.base))
            .header("content-type", "application/wasm")
            .body(bytes);
        answer(request).await
    }

    /// Sets actor `name`'s options (or registers a socket actor); the status and the answer.
    pub async fn put_json(&self, name: &str, body: Value) -> (u16, Value) {
        let request = self
            .http
            .put(format!("{}/v1/actors/{name}", self.base))
            .json(&body);
        answer(request).await
    }

    /// PATCHes an actor's options with JSON; the status and the answer.
    pub async fn patch_json(&self, name: &str, body: Value) -> (u16, Value) {
        let request = self
            .http
            .patch(format!("{}/v1/actors/{name}", self.base))
            .json(&body);
        answer(request).await
    }

    /// GETs `path`; the status and the body as text.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the node answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// Waits for submission `id` to end and returns its outcome.
    pub async fn outcome(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, view) = self.get(&format!("/v1/envelopes/{id}?wait=30s")).await;
            assert_eq!(status, 200, "outcome of {id}: {view}");
            if view["status"] != "pending" {
                return view;
            }
            assert!(Instant::now() < deadline, "{id} still pending: {view}");
        }
    }

    /// Waits for the outcome of an envelope a producer put on a queue (the node knows
    /// its id only once an end actor took it).
    pub async fn published_outcome(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, view) = self.get(&format!("/v1/envelopes/{id}")).await;
            if status == 200 && view["status"] != "pending" {
                return view;
            }
            assert!(
                matches!(status, 200 | 404),
                "outcome of {id}: {status} {view}"
            );
            assert!(Instant::now() < deadline, "{id} did not end: {view}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until a recent failure matches `predicate`; returns it.
    pub async fn failure_matching(&self, predicate: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, failures) = self.get("/v1/envelopes?status=failed&limit=1000").await;
            if let Some(found) = failures
                .as_array()
                .and_then(|list| list.iter().find(|view| predicate(view)))
            {
                return found.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no failure matched; recent: {failures}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal_term();
        self.wait()
    }

    /// Sends SIGTERM and returns at once.
    pub fn signal_term(&self) {
        let pid = self.pid().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Waits for the process to exit; its exit status.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the node is running");
        child.wait().expect("the node exits")
    }

    /// The first logged event whose message starts with `message`.
    pub fn log_event(&self, message: &str) -> Option<Value> {
        self.log()
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|event| {
                event["message"]
                    .as_str()
                    .is_some_and(|text| text.starts_with(message))
            })
    }

    /// The node's data directory (its compile cache is shared between test nodes).
    pub fn data_dir(&self) -> PathBuf {
        self.data
            .as_ref()
            .expect("a data directory the harness made")
            .path()
            .to_owned()
    }

    /// DELETEs a path; the status.
    pub async fn delete(&self, path: &str) -> u16 {
        self.http
            .delete(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the node answers")
            .status()
            .as_u16()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- node log ----\n{}", self.log().join("\n"));
        }
    }
}

/// The bytes of an example guest, as built for the node.
pub fn guest(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("WASYA_GUESTS_DIR")).join(format!("{name}.wasm")))
        .expect("the example guests are built")
}

async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the node answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Counts the submissions answered by each of two versions of an actor during a hot
/// swap: submission `n` sent `{"text": "m{n}"}`; `echo` answers it as it is (v1),
/// `upper` as `M{n}` (v2). Every submission must have succeeded on one of them.
pub async fn tally_swap(node: &NodeProcess, ids: &[String]) -> (usize, usize) {
    let (mut v1, mut v2) = (0, 0);
    for (n, id) in ids.iter().enumerate() {
        let view = node.outcome(id).await;
        assert_eq!(view["status"], "succeeded", "{view}");
        let text = view["results"][0]["text"].as_str().unwrap_or_default();
        if text == format!("m{n}") {
            v1 += 1;
        } else {
            assert_eq!(text, format!("M{n}"), "neither version's answer");
            v2 += 1;
        }
    }
    (v1, v2)
}

/// The only error payload of a failed outcome.
pub fn single_error(view: &Value) -> &Value {
    assert_eq!(view["status"], "failed", "{view}");
    let errors = view["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{view}");
    &errors[0]
}
