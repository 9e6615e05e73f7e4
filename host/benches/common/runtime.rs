//! An external runtime speaking Asya's socket protocol, for the benchmarks: the
//! repository's reference runtime by default, or any Asya-protocol runtime script named
//! by `WASYA_BENCH_RUNTIME` (Asya's own `asya_runtime.py`, say), started in a socket
//! directory of its own with the handler in `ASYA_HANDLER`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The repository's root.
pub fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The runtime script the benchmarks start.
pub fn runtime_script() -> PathBuf {
    std::env::var_os("WASYA_BENCH_RUNTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| repository().join("runtimes/python/wasya_runtime.py"))
}

/// A runtime process in a socket directory of its own.
pub struct RuntimeProcess {
    child: Child,
    dir: tempfile::TempDir,
}

impl RuntimeProcess {
    /// Starts `command` and waits for its `runtime-ready` file.
    pub fn start(command: &mut Command) -> RuntimeProcess {
        let dir = tempfile::tempdir().expect("a directory");
        let child = command
            .env("ASYA_SOCKET_DIR", dir.path())
            .env("ASYA_LOG_LEVEL", "WARNING")
            .spawn()
            .expect("python3 runs");
        let ready = dir.path().join("runtime-ready");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready.exists() {
            assert!(Instant::now() < deadline, "the runtime did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        RuntimeProcess { child, dir }
    }

    /// The runtime script serving `handler` (ASYA_HANDLER syntax) found in `path`, one
    /// connection at a time (Asya's way) or on threads.
    pub fn serving(handler: &str, path: &Path, concurrent: bool) -> RuntimeProcess {
        let mut command = Command::new("python3");
        command
            .arg(runtime_script())
            .env("ASYA_HANDLER", handler)
            .env("ASYA_HANDLER_PATH", path)
            .env("ASYA_RUNTIME_CONCURRENT", if concurrent { "1" } else { "" });
        RuntimeProcess::start(&mut command)
    }

    /// The runtime process's peak resident memory so far, in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        super::status_mib(&self.child.id().to_string(), "VmHWM:")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("asya-runtime.sock")
    }
}

impl Drop for RuntimeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
