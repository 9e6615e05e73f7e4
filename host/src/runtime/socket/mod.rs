//! External runtimes behind a Unix socket, speaking Asya's runtime protocol.
//!
//! For actors that cannot be WebAssembly (a model on a GPU, native libraries) the node
//! forwards the whole envelope to a runtime process: one connection per message, one
//! request frame, one response frame ([`frame`]), the answer read by [`response`].
//!
//! What the node adds on its side, and why:
//! - a runtime that is not there (no socket, refused) is not the envelope's fault: the
//!   call waits for it with backoff, holding its message (so no more are taken), and
//!   readiness says so. The wait is not the call: a GPU runtime may load a model for
//!   minutes, so the call's timeout starts when the request is written. A wait ends
//!   only when the runtime answers, or when this runtime is retired (the actor removed
//!   or re-pointed, the node stopping); the message then goes back to its queue;
//! - a runtime that dies before answering is retried on its next start; after a few
//!   deaths on the same message the message goes back to its queue, where redeliveries
//!   are counted, so one poison message cannot kill the runtime forever;
//! - a call past its timeout is cut off (the connection dropped) and fails once as
//!   `timeout`;
//! - at most `connections` calls are open at once (1 by default: the reference runtime
//!   serves one at a time).

pub mod frame;
pub mod response;

use crate::envelope::Envelope;
use crate::failure::{Failure, Kind};
use crate::route_rules::Outcome;
use crate::runtime::{ActorRuntime, Unavailable};
use frame::{FrameError, read_frame, write_frame};
use futures::future::BoxFuture;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tokio::net::UnixStream;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Default socket directory and name of Asya's runtime.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/asya";
/// The default file name of the runtime's socket, inside [`DEFAULT_SOCKET_DIR`].
pub const DEFAULT_SOCKET_NAME: &str = "asya-runtime.sock";
/// The file a runtime writes into its socket directory when it is ready.
pub const READY_FILE: &str = "runtime-ready";

/// Deaths of the runtime on one message before the message goes back to its queue.
const DEATHS_PER_MESSAGE: u32 = 3;

/// How to reach one external runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct SocketOptions {
    /// The absolute path of the runtime's Unix socket.
    pub path: PathBuf,
    /// The longest one call may take.
    pub timeout: Duration,
    /// The largest response frame read from the runtime, in bytes.
    pub frame_limit: usize,
    /// Calls open at once.
    pub connections: usize,
}

/// Why a path cannot be a runtime's socket.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LocationError {
    /// The path is not absolute; holds the path.
    #[error("`{0}` is not an absolute path")]
    Relative(PathBuf),
    /// The directory the socket would be in does not exist; holds the path.
    #[error("the directory of `{0}` does not exist (the runtime's socket directory must)")]
    NoDirectory(PathBuf),
    /// Something other than a socket exists at the path; holds the path.
    #[error("`{0}` exists and is not a socket")]
    NotASocket(PathBuf),
}

/// Checks that `path` can be a runtime's socket: absolute, in a directory that exists,
/// and a socket already or nothing yet (the runtime binds it when it starts). Blocking:
/// it reads the file system.
pub fn check_location(path: &Path) -> Result<(), LocationError> {
    if !path.is_absolute() {
        return Err(LocationError::Relative(path.to_owned()));
    }
    if !path.parent().is_some_and(Path::is_dir) {
        return Err(LocationError::NoDirectory(path.to_owned()));
    }
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if !metadata.file_type().is_socket() => {
            Err(LocationError::NotASocket(path.to_owned()))
        }
        _ => Ok(()),
    }
}

/// An actor served by an external runtime.
pub struct SocketActor {
    name: String,
    options: SocketOptions,
    permits: Semaphore,
    reachable: AtomicU8,
    /// Cancelled when this runtime is retired: calls waiting for it give up.
    retired: CancellationToken,
}

/// What the last connection attempt found.
const UNTRIED: u8 = 0;
const REACHED: u8 = 1;
const UNREACHABLE: u8 = 2;

impl SocketActor {
    /// A runtime whose waiting calls give up when `retired` is cancelled.
    pub fn new(
        name: impl Into<String>,
        options: SocketOptions,
        retired: CancellationToken,
    ) -> Self {
        let connections = options.connections.max(1);
        SocketActor {
            name: name.into(),
            permits: Semaphore::new(connections),
            reachable: AtomicU8::new(UNTRIED),
            options,
            retired,
        }
    }

    /// How this runtime is reached.
    pub fn options(&self) -> &SocketOptions {
        &self.options
    }

    fn ready_file(&self) -> Option<PathBuf> {
        Some(self.options.path.parent()?.join(READY_FILE))
    }

    /// Connects, waiting with backoff for as long as the runtime is not there; `None`
    /// once this runtime is retired.
    async fn connect(&self) -> Option<UnixStream> {
        let mut backoff = crate::backoff::RUNTIME.start();
        let mut warned = false;
        loop {
            match UnixStream::connect(&self.options.path).await {
                Ok(stream) => {
                    if self.reachable.swap(REACHED, Ordering::SeqCst) != REACHED || warned {
                        tracing::info!(actor = %self.name, path = %self.options.path.display(), "runtime reachable");
                    }
                    return Some(stream);
                }
                Err(error) => {
                    self.reachable.store(UNREACHABLE, Ordering::SeqCst);
                    if !warned {
                        tracing::warn!(
                            actor = %self.name, path = %self.options.path.display(), %error,
                            "runtime not reachable; the message waits for it"
                        );
                        warned = true;
                    }
                    tokio::select! {
                        _ = self.retired.cancelled() => return None,
                        _ = tokio::time::sleep(backoff.next_pause()) => {}
                    }
                }
            }
        }
    }

    /// One request and its answer on a connected stream.
    async fn exchange(
        &self,
        stream: &mut UnixStream,
        request: &[u8],
    ) -> Result<Vec<u8>, FrameError> {
        write_frame(stream, request).await?;
        read_frame(stream, self.options.frame_limit).await
    }

    async fn run(&self, envelope: &Envelope) -> Result<Outcome, Unavailable> {
        let Ok(_permit) = self.permits.acquire().await else {
            return Err(Unavailable("the actor is closed".into()));
        };
        // The runtime sees the envelope as Asya's sidecar would send it: without the
        // node's fan-out bookkeeping.
        let request = envelope.to_bytes_without(crate::branch::is_bookkeeping);
        let mut deaths = 0;
        loop {
            let Some(mut stream) = self.connect().await else {
                return Err(Unavailable(
                    "the runtime was retired while the message waited for it".into(),
                ));
            };
            let timeout = self.options.timeout;
            let exchanged = self.exchange(&mut stream, &request);
            let answer = match tokio::time::timeout(timeout, exchanged).await {
                Ok(answer) => answer,
                Err(_) => {
                    return Ok(Outcome::Failed(Failure::processing(
                        Kind::Timeout,
                        format!("the runtime did not answer within {timeout:?}"),
                    )));
                }
            };
            match answer {
                Ok(bytes) => return Ok(response::parse_response(&bytes)),
                Err(FrameError::Closed) => {
                    deaths += 1;
                    tracing::warn!(actor = %self.name, envelope_id = %envelope.id, deaths, "the runtime closed the connection without answering");
                    if deaths >= DEATHS_PER_MESSAGE {
                        return Err(Unavailable(format!(
                            "the runtime died {deaths} times on this message"
                        )));
                    }
                }
                Err(error @ FrameError::Io(_)) => {
                    let error = crate::error_chain::chain(&error);
                    return Err(Unavailable(format!("the socket failed: {error}")));
                }
                Err(error) => return Ok(response::protocol_error(error.kind(), error.to_string())),
            }
        }
    }
}

impl ActorRuntime for SocketActor {
    fn call<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Result<Outcome, Unavailable>> {
        Box::pin(self.run(envelope))
    }

    fn not_ready(&self) -> Option<String> {
        let path = self.options.path.display();
        match self.reachable.load(Ordering::SeqCst) {
            REACHED => None,
            UNREACHABLE => Some(format!("runtime of `{}` unreachable at {path}", self.name)),
            _ if self.ready_file().is_some_and(|file| file.exists()) => None,
            _ => Some(format!(
                "runtime of `{}` not ready (no {READY_FILE} beside {path} yet)",
                self.name
            )),
        }
    }
}
