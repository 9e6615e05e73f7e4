//! A guest's stdout and stderr, kept per call as a bounded tail.
//!
//! Guests in Python and JavaScript print: `print()`, `console.log`, and above all the
//! traceback of an uncaught exception, written to stderr by the language's runtime.
//! Discarding that output made failures opaque. Each call gets two [`Tail`]s: they
//! accept everything the guest writes (a full buffer must never trap a guest) and keep
//! the last [`TAIL_BYTES`] of it. After the call the node logs the lines with the
//! actor and envelope id, and a failure carries the stderr tail as its traceback.

use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// How much of each stream one call keeps: its end.
pub const TAIL_BYTES: usize = 16 << 10;

/// What a guest wrote to one stream: the last [`TAIL_BYTES`], and how much went before.
#[derive(Debug, Default)]
struct Kept {
    bytes: Vec<u8>,
    dropped: usize,
}

/// One output stream of a guest; clones share what was written.
#[derive(Clone, Debug, Default)]
pub struct Tail {
    kept: Arc<Mutex<Kept>>,
}

impl Tail {
    fn append(&self, bytes: &[u8]) {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        kept.bytes.extend_from_slice(bytes);
        if kept.bytes.len() > TAIL_BYTES {
            let cut = kept.bytes.len() - TAIL_BYTES;
            kept.bytes.drain(..cut);
            kept.dropped += cut;
        }
    }

    /// Takes what was written since the last take, as text (invalid UTF-8 replaced),
    /// saying first how much was cut from its start.
    pub fn take(&self) -> Option<String> {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if kept.bytes.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(&kept.bytes).into_owned();
        let dropped = std::mem::take(&mut kept.dropped);
        kept.bytes.clear();
        Some(match dropped {
            0 => text,
            dropped => format!("({dropped} bytes cut) …{text}"),
        })
    }
}

impl IsTerminal for Tail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Tail {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

/// Writes as much as a guest may ever write at once; everything is accepted.
const PERMIT: usize = 1 << 20;

impl OutputStream for Tail {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Tail {
    async fn ready(&mut self) {}
}

impl AsyncWrite for Tail {
    fn poll_write(
        self: Pin<&mut Self>,
        _context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buffer);
        Poll::Ready(Ok(buffer.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        _context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A guest's two output streams.
#[derive(Clone, Debug, Default)]
pub struct GuestStdio {
    /// The tail of what the guest writes to stdout.
    pub stdout: Tail,
    /// The tail of what the guest writes to stderr.
    pub stderr: Tail,
}

/// What one call wrote.
#[derive(Debug, Default, PartialEq)]
pub struct Written {
    /// The tail of stdout as text, `None` if the call wrote nothing there.
    pub stdout: Option<String>,
    /// The tail of stderr as text, `None` if the call wrote nothing there.
    pub stderr: Option<String>,
}

impl GuestStdio {
    /// Takes what the call wrote so far.
    pub fn take(&self) -> Written {
        Written {
            stdout: self.stdout.take(),
            stderr: self.stderr.take(),
        }
    }
}

/// The longest line logged; a longer one is cut.
const LINE_BYTES: usize = 2 << 10;

impl Written {
    /// Logs each line as an event of the guest, with the actor and envelope id.
    pub fn log(&self, actor: &str, envelope_id: &str) {
        for (stream, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            for line in text.iter().flat_map(|text| text.lines()) {
                let line = crate::envelope::limits::cap_start(line, LINE_BYTES);
                tracing::info!(target: "wasya::guest", actor, envelope_id, stream, "{line}");
            }
        }
    }

    /// Logs each line as an event of the guest, with the actor and the instance that
    /// wrote it: in an instance shared by many calls, stdout is no one call's.
    pub fn log_instance(&self, actor: &str, instance: u64) {
        for (stream, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            for line in text.iter().flat_map(|text| text.lines()) {
                let line = crate::envelope::limits::cap_start(line, LINE_BYTES);
                tracing::info!(target: "wasya::guest", actor, instance, stream, "{line}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_tail_and_says_what_was_cut() {
        let tail = Tail::default();
        tail.append(&vec![b'a'; TAIL_BYTES]);
        tail.append(b"end");
        let text = tail.take().expect("written");
        assert!(text.starts_with("(3 bytes cut)"), "{}", &text[..20]);
        assert!(text.ends_with("end"));
        assert_eq!(tail.take(), None, "taken");
    }

    #[test]
    fn never_refuses_a_write() {
        let mut tail = Tail::default();
        for _ in 0..100 {
            assert!(tail.check_write().is_ok_and(|permit| permit > 0));
            tail.write(Bytes::from(vec![b'x'; 64 << 10]))
                .expect("accepted");
        }
        assert!(tail.take().is_some_and(|text| text.len() < 2 * TAIL_BYTES));
    }
}
