//! A response body on its way to a guest, held to the actor's limits.
//!
//! The guest reads the body frame by frame; this wrapper counts the bytes against
//! the response body limit, stops at the request's deadline, and (where the guest
//! asked for one) at a gap between frames longer than its `between-bytes-timeout`.
//! It also holds the actor's outbound permit: a request counts against the actor's
//! concurrency until its body is read to the end or dropped.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use wasmtime_wasi_http::Error;

/// The body type `wasi:http` moves between host and guest.
pub type WasiBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Error>;

/// What a body holds until it is done: the permit and the in-flight count.
pub trait Held: Send + 'static {}
impl<T: Send + 'static> Held for T {}

/// A response body limited in size and time.
pub struct LimitedBody<H: Held> {
    inner: hyper::body::Incoming,
    limit: u64,
    read: u64,
    deadline: Pin<Box<Sleep>>,
    between: Option<(Duration, Pin<Box<Sleep>>)>,
    on_limit: Option<Box<dyn FnOnce() + Send>>,
    held: Option<H>,
}

impl<H: Held> LimitedBody<H> {
    /// Wraps `inner`: at most `limit` bytes, read by `deadline`, with gaps between frames
    /// of at most `between`. `on_limit` runs once if the limit is passed; `held` is kept
    /// until the body is read to the end, fails or is dropped.
    pub fn new(
        inner: hyper::body::Incoming,
        limit: u64,
        deadline: Instant,
        between: Option<Duration>,
        on_limit: Box<dyn FnOnce() + Send>,
        held: H,
    ) -> Self {
        LimitedBody {
            inner,
            limit,
            read: 0,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            between: between.map(|gap| (gap, Box::pin(tokio::time::sleep(gap)))),
            on_limit: Some(on_limit),
            held: Some(held),
        }
    }

    /// Ends the body with `error`, releasing what it held.
    fn fail(&mut self, error: Error) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.held = None;
        Poll::Ready(Some(Err(error)))
    }
}

impl<H: Held + Unpin> Body for LimitedBody<H> {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        if this.held.is_none() {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.held = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                let error = if error.is_timeout() {
                    Error::HttpResponseTimeout
                } else {
                    Error::Hyper(error)
                };
                this.fail(error)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read += data.len() as u64;
                    if this.read > this.limit {
                        if let Some(on_limit) = this.on_limit.take() {
                            on_limit();
                        }
                        return this.fail(Error::HttpResponseBodySize(Some(this.read)));
                    }
                }
                if let Some((gap, timer)) = &mut this.between {
                    timer.as_mut().reset(Instant::now() + *gap);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    return this.fail(Error::HttpResponseTimeout);
                }
                if let Some((_, timer)) = &mut this.between
                    && timer.as_mut().poll(cx).is_ready()
                {
                    return this.fail(Error::ConnectionReadTimeout);
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_none() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
