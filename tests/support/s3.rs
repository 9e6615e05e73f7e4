//! A real S3-compatible server for the tests of results kept in object storage:
//! `s3s-fs` (the s3s project's S3 server over a plain folder; SigV4 checked, each
//! object a file of its own), at `WASYA_S3S_FS`. `.ci/run` installs it, pinned. Where
//! it is not set the test says so and passes, unless `WASYA_REQUIRE_TOOLCHAINS` is set:
//! there it fails.
//!
//! What the node wrote is read back from the server's folder, not through an S3
//! client: the test does not trust the code it checks to read its own writes.

use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "wasya-test";
pub const SECRET_KEY: &str = "wasya-test-secret";

/// A running S3 server on a port of its own, over a folder of its own.
pub struct S3Server {
    child: Option<Child>,
    binary: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port free now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// The server's binary, or `None` (the test is skipped).
pub fn binary() -> Option<PathBuf> {
    match std::env::var_os("WASYA_S3S_FS") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            assert!(
                std::env::var_os("WASYA_REQUIRE_TOOLCHAINS").is_none(),
                "WASYA_S3S_FS is not set, and this run requires it (an s3s-fs binary)"
            );
            eprintln!("skipped: WASYA_S3S_FS is not set (an s3s-fs binary)");
            None
        }
    }
}

impl S3Server {
    /// Starts a server on a free port, or `None` without the binary.
    pub fn start() -> Option<S3Server> {
        let binary = binary()?;
        let mut server = S3Server {
            child: None,
            binary,
            dir: tempfile::tempdir().expect("a directory"),
            port: free_port(),
        };
        server.resume();
        Some(server)
    }

    /// Where a node reaches it.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The node's flags for it, with `bucket`.
    pub fn flags(&self, bucket: &str) -> Vec<String> {
        [
            "--s3-bucket",
            bucket,
            "--s3-endpoint",
            &self.endpoint(),
            "--s3-access-key",
            ACCESS_KEY,
            "--s3-secret-key",
            SECRET_KEY,
        ]
        .iter()
        .map(|flag| (*flag).to_owned())
        .collect()
    }

    /// Stops the server (its folder stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and folder, and waits until it answers.
    pub fn resume(&mut self) {
        let child = Command::new(&self.binary)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("s3s-fs starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs does not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every object of `bucket`, by key, parsed as JSON, read from the server's folder.
    pub fn objects(&self, bucket: &str) -> Vec<(String, Value)> {
        let root = self.dir.path().join(bucket);
        let mut found = Vec::new();
        collect(&root, &root, &mut found);
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    /// Waits up to 20 s for `bucket` to hold at least `count` objects.
    pub async fn wait_for(&self, bucket: &str, count: usize) -> Vec<(String, Value)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let objects = self.objects(bucket);
            if objects.len() >= count || Instant::now() > deadline {
                return objects;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn collect(root: &Path, dir: &Path, found: &mut Vec<(String, Value)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, found);
        } else if let Ok(bytes) = std::fs::read(&path) {
            let key = path
                .strip_prefix(root)
                .expect("under the bucket")
                .to_string_lossy()
                .into_owned();
            let body = serde_json::from_slice(&bytes)
                .unwrap_or_else(|error| panic!("{key} is not JSON: {error}"));
            found.push((key, body));
        }
    }
}
