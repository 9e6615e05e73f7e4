//! The Python the tests drive real clients and receivers with: the official MCP SDK
//! (`mcp`) and an OTLP receiver decoding with `opentelemetry-proto`.
//!
//! It is `WASYA_TEST_PYTHON` (`.ci/run` sets it to its virtual environment's). Where it
//! is not set the test says so and passes, unless `WASYA_REQUIRE_TOOLCHAINS` is set,
//! as `.ci/run` does: there it fails.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The Python with the test packages, or `None` (the test is skipped).
pub fn python() -> Option<PathBuf> {
    match std::env::var_os("WASYA_TEST_PYTHON") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            assert!(
                std::env::var_os("WASYA_REQUIRE_TOOLCHAINS").is_none(),
                "WASYA_TEST_PYTHON is not set, and this run requires it (a Python with mcp and opentelemetry-proto)"
            );
            eprintln!(
                "skipped: WASYA_TEST_PYTHON is not set (a Python with mcp and opentelemetry-proto)"
            );
            None
        }
    }
}

/// A script of `tests/runtimes/`.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/runtimes")
        .join(name)
}

/// A Python process whose stdout lines are collected as they come.
pub struct PythonProcess {
    child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for PythonProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PythonProcess {
    pub fn spawn(python: &PathBuf, script_name: &str, args: &[&str]) -> PythonProcess {
        let mut child = Command::new(python)
            .arg(script(script_name))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python starts");
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().expect("a lock").push(line);
            }
        });
        PythonProcess { child, lines }
    }

    /// Waits for a line that `matches` says is the one; its value.
    pub async fn line<T>(&self, matches: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(found) = self
                .lines
                .lock()
                .expect("a lock")
                .iter()
                .find_map(|line| matches(line))
            {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no such line from python: {:?}",
                self.lines.lock().expect("a lock")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Runs a script to its end; its stdout and whether it succeeded.
pub async fn run(
    python: &PathBuf,
    script_name: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let mut command = tokio::process::Command::new(python);
    command.arg(script(script_name)).args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = tokio::time::timeout(Duration::from_secs(90), command.output())
        .await
        .expect("the script ends")
        .expect("python runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
