//! Serving the API over TCP, with two things `axum::serve` leaves out:
//!
//! - a deadline for a request's headers: a client that sends half a request and
//!   waits would otherwise hold its connection forever, and enough of them exhaust
//!   the node;
//! - a close the node starts when it chooses: during a stop the API keeps answering
//!   (`/readyz` says 503, outcomes can be read) until the routing has drained, and
//!   only then stops accepting and lets open requests finish.

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A pause after a failed accept (out of file descriptors, say), so the loop does not
/// spin while the condition lasts.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// The running HTTP server.
pub struct Server {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Server {
    /// Serves `app` on `listener` until [`Server::shutdown`].
    pub fn spawn(listener: TcpListener, app: axum::Router, header_read_timeout: Duration) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(listener, app, header_read_timeout, stop.clone()));
        Server { stop, task }
    }

    /// Stops accepting, closes idle connections, and waits up to `within` for the
    /// requests being answered.
    pub async fn shutdown(self, within: Duration) {
        self.stop.cancel();
        if tokio::time::timeout(within, self.task).await.is_err() {
            tracing::warn!("open HTTP requests did not finish within {within:?}");
        }
    }
}

async fn serve(
    listener: TcpListener,
    app: axum::Router,
    header_read_timeout: Duration,
    stop: CancellationToken,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "an HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
