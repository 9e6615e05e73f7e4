//! Waiting for the runtime before consuming, as Asya's sidecar does.
//!
//! The runtime container writes `runtime-ready` beside its socket once its handler is
//! loaded (which may take minutes for a model). Until then the sidecar takes nothing
//! from the queue, so no message sits held by a pod that cannot run it; past
//! `ASYA_RUNTIME_READY_TIMEOUT` it gives up and exits, and the pod restarts. Ready
//! means the file exists and the socket accepts a connection.

use super::environment::ReadyWait;
use std::time::{Duration, Instant};

/// How often the file and the socket are looked at (Asya's sidecar: every 500 ms).
const POLL: Duration = Duration::from_millis(500);
/// How often a wait that goes on is logged.
const NOTE_EVERY: Duration = Duration::from_secs(10);

/// Why the runtime was not found ready.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    /// No ready file within the wait.
    #[error(
        "the runtime did not become ready within {timeout:?}: no {file} (ASYA_RUNTIME_READY_TIMEOUT)"
    )]
    NoReadyFile {
        /// The wait.
        timeout: Duration,
        /// The file looked for.
        file: String,
    },
    /// The file is there, but the socket took no connection within the wait.
    #[error(
        "the runtime wrote {file} but its socket {socket} took no connection within {timeout:?}: {source}"
    )]
    SocketRefused {
        /// The wait.
        timeout: Duration,
        /// The ready file.
        file: String,
        /// The socket.
        socket: String,
        /// The last connection error.
        #[source]
        source: std::io::Error,
    },
}

/// Waits until the runtime is ready; an error once `wait.timeout` has passed.
pub async fn wait_for_runtime(wait: &ReadyWait) -> Result<Duration, NotReady> {
    let started = Instant::now();
    let mut noted = started;
    tracing::info!(
        file = %wait.ready_file.display(), socket = %wait.socket.display(),
        timeout = ?wait.timeout, "waiting for the runtime to become ready"
    );
    loop {
        let refused = if tokio::fs::try_exists(&wait.ready_file)
            .await
            .unwrap_or(false)
        {
            match tokio::net::UnixStream::connect(&wait.socket).await {
                Ok(_) => {
                    let waited = started.elapsed();
                    tracing::info!(waited_ms = waited.as_millis() as u64, "runtime ready");
                    return Ok(waited);
                }
                Err(error) => Some(error),
            }
        } else {
            None
        };
        if started.elapsed() >= wait.timeout {
            let file = wait.ready_file.display().to_string();
            return Err(match refused {
                None => NotReady::NoReadyFile {
                    timeout: wait.timeout,
                    file,
                },
                Some(source) => NotReady::SocketRefused {
                    timeout: wait.timeout,
                    file,
                    socket: wait.socket.display().to_string(),
                    source,
                },
            });
        }
        if noted.elapsed() >= NOTE_EVERY {
            noted = Instant::now();
            tracing::info!(
                waited_s = started.elapsed().as_secs(),
                "still waiting for the runtime"
            );
        }
        tokio::time::sleep(POLL.min(wait.timeout.saturating_sub(started.elapsed()))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_in(dir: &std::path::Path, timeout: Duration) -> ReadyWait {
        ReadyWait {
            socket: dir.join("asya-runtime.sock"),
            ready_file: dir.join("runtime-ready"),
            timeout,
        }
    }

    #[tokio::test]
    async fn gives_up_without_a_ready_file() {
        let dir = tempfile::tempdir().unwrap();
        let error = wait_for_runtime(&wait_in(dir.path(), Duration::from_millis(50)))
            .await
            .unwrap_err();
        assert!(matches!(error, NotReady::NoReadyFile { .. }), "{error}");
    }

    #[tokio::test]
    async fn a_ready_file_without_a_listener_is_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("runtime-ready"), "").unwrap();
        let error = wait_for_runtime(&wait_in(dir.path(), Duration::from_millis(50)))
            .await
            .unwrap_err();
        assert!(matches!(error, NotReady::SocketRefused { .. }), "{error}");
    }

    #[tokio::test]
    async fn ready_once_the_file_and_the_socket_are_there() {
        let dir = tempfile::tempdir().unwrap();
        let wait = wait_in(dir.path(), Duration::from_secs(10));
        let path = dir.path().to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            let listener = tokio::net::UnixListener::bind(path.join("asya-runtime.sock")).unwrap();
            std::fs::write(path.join("runtime-ready"), "").unwrap();
            let _ = listener.accept().await;
        });
        let waited = wait_for_runtime(&wait).await.unwrap();
        assert!(waited >= Duration::from_millis(700), "{waited:?}");
    }
}
