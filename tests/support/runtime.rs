//! External runtime processes for the socket tests: the repository's reference Python
//! runtime with a handler from `tests/runtimes/handlers.py`, or a runtime that breaks
//! the protocol on purpose. Each gets a socket directory of its own.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A running runtime process.
pub struct Runtime {
    child: Option<Child>,
    command: Vec<String>,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
    log: Arc<Mutex<Vec<String>>>,
}

impl Runtime {
    /// The reference runtime serving `handlers.{handler}` in `mode`.
    pub fn start(handler: &str, mode: &str, env: &[(&str, &str)]) -> Runtime {
        let mut runtime = Self::prepare(handler, mode, env);
        runtime.restart();
        runtime
    }

    /// The same runtime, with its socket directory made but not started yet: start it
    /// with [`Runtime::restart`].
    pub fn prepare(handler: &str, mode: &str, env: &[(&str, &str)]) -> Runtime {
        let script = repository().join("runtimes/python/wasya_runtime.py");
        let mut all = vec![
            ("ASYA_HANDLER".to_owned(), format!("handlers.{handler}")),
            ("ASYA_HANDLER_MODE".to_owned(), mode.to_owned()),
            (
                "ASYA_HANDLER_PATH".to_owned(),
                repository().join("tests/runtimes").display().to_string(),
            ),
        ];
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Self::unstarted(vec![script.display().to_string()], all)
    }

    /// A runtime that answers every message with `mode` (garbage, truncated, ...).
    pub fn misbehaving(mode: &str) -> Runtime {
        let script = repository().join("tests/runtimes/misbehaving_runtime.py");
        Self::spawn(vec![script.display().to_string(), mode.to_owned()], vec![])
    }

    fn spawn(command: Vec<String>, env: Vec<(String, String)>) -> Runtime {
        let mut runtime = Self::unstarted(command, env);
        runtime.restart();
        runtime
    }

    fn unstarted(command: Vec<String>, env: Vec<(String, String)>) -> Runtime {
        Runtime {
            child: None,
            command,
            env,
            dir: tempfile::tempdir().expect("a socket directory"),
            log: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The socket the runtime listens on.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("asya-runtime.sock")
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// Starts the process (again) and waits for its `runtime-ready` file.
    pub fn restart(&mut self) {
        let ready = self.dir.path().join("runtime-ready");
        let _ = std::fs::remove_file(&ready);
        let mut child = Command::new("python3")
            .args(&self.command)
            .env("ASYA_SOCKET_DIR", self.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().unwrap().push(line);
            }
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready.exists() {
            assert!(
                Instant::now() < deadline,
                "the runtime did not become ready: {}",
                self.log.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process at once, as a crash would (the socket file stays behind).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits up to 20 s for a log line containing `text`.
    pub async fn wait_for_log(&self, text: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self
                .log
                .lock()
                .unwrap()
                .iter()
                .any(|line| line.contains(text))
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.kill();
    }
}
