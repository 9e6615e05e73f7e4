//! External runtimes behind a Unix socket, speaking Asya's runtime protocol.
//!
//! For actors that cannot be WebAssembly (a model on a GPU, native libraries) the node
//! forwards the whole envelope to a runtime process: one connection per message, one
//! request frame, one response frame ([`frame`]), the answer read by [`response`].
//!
//! What the node adds on its side, and why:
//! - a runtime that is not there (no socket, refused) is not the envelope's fault: the
//!   call waits for it with backoff, holding its message (so no more are taken), and
//!   readiness says so;
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
use crate::routing::{Failure, Outcome};
use crate::runtime::{ActorRuntime, Unavailable};
use frame::{FrameError, read_frame, write_frame};
use futures::future::BoxFuture;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tokio::net::UnixStream;
use tokio::sync::Semaphore;

/// Default socket directory and name of Asya's runtime.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/asya";
pub const DEFAULT_SOCKET_NAME: &str = "asya-runtime.sock";
/// The file a runtime writes into its socket directory when it is ready.
pub const READY_FILE: &str = "runtime-ready";
/// Default largest response frame.
pub const DEFAULT_FRAME_LIMIT: usize = 64 * 1024 * 1024;

/// Deaths of the runtime on one message before the message goes back to its queue.
const DEATHS_PER_MESSAGE: u32 = 3;
const RECONNECT_FIRST: Duration = Duration::from_millis(50);
const RECONNECT_MAX: Duration = Duration::from_secs(2);

/// How to reach one external runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct SocketOptions {
    pub path: PathBuf,
    pub timeout: Duration,
    pub frame_limit: usize,
    /// Calls open at once.
    pub connections: usize,
}

/// An actor served by an external runtime.
pub struct SocketActor {
    name: String,
    options: SocketOptions,
    permits: Semaphore,
    reachable: AtomicU8,
}

/// What the last connection attempt found.
const UNTRIED: u8 = 0;
const REACHED: u8 = 1;
const UNREACHABLE: u8 = 2;

impl SocketActor {
    pub fn new(name: impl Into<String>, options: SocketOptions) -> Self {
        let connections = options.connections.max(1);
        SocketActor {
            name: name.into(),
            permits: Semaphore::new(connections),
            reachable: AtomicU8::new(UNTRIED),
            options,
        }
    }

    pub fn options(&self) -> &SocketOptions {
        &self.options
    }

    fn ready_file(&self) -> Option<PathBuf> {
        Some(self.options.path.parent()?.join(READY_FILE))
    }

    /// Connects, waiting with backoff for as long as the runtime is not there.
    async fn connect(&self) -> UnixStream {
        let mut pause = RECONNECT_FIRST;
        let mut warned = false;
        loop {
            match UnixStream::connect(&self.options.path).await {
                Ok(stream) => {
                    if self.reachable.swap(REACHED, Ordering::SeqCst) != REACHED || warned {
                        tracing::info!(actor = %self.name, path = %self.options.path.display(), "runtime reachable");
                    }
                    return stream;
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
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(RECONNECT_MAX);
                }
            }
        }
    }

    async fn exchange(&self, request: &[u8]) -> Result<Vec<u8>, FrameError> {
        let mut stream = self.connect().await;
        write_frame(&mut stream, request).await?;
        read_frame(&mut stream, self.options.frame_limit).await
    }

    async fn run(&self, envelope: &Envelope) -> Result<Outcome, Unavailable> {
        let Ok(_permit) = self.permits.acquire().await else {
            return Err(Unavailable("the actor is closed".into()));
        };
        let request = envelope.to_bytes();
        let mut deaths = 0;
        loop {
            let timeout = self.options.timeout;
            let answer = match tokio::time::timeout(timeout, self.exchange(&request)).await {
                Ok(answer) => answer,
                Err(_) => {
                    return Ok(Outcome::Failed(Failure::processing(
                        "timeout",
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
                Err(FrameError::Io(error)) => {
                    return Err(Unavailable(format!("socket error: {error}")));
                }
                Err(error) => return Ok(response::protocol_error(error.kind(), error.to_string())),
            }
        }
    }
}

impl ActorRuntime for SocketActor {
    fn kind(&self) -> &'static str {
        "socket"
    }

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
