//! A task that works off a queue in the background and is flushed at stop.
//!
//! Progress reports to an Asya gateway and progress events on their way to a pool's
//! store are queued by the hot path and sent by a task of their own. A stopping node
//! must not walk away from what is queued: [`Flushed::flush`] tells the task to stop
//! taking new work once the queue is empty, and waits for it, up to a bound, so a
//! stop is never held up by a store or a gateway that does not answer.

use std::time::Duration;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A background task and the token that asks it to finish.
#[derive(Debug, Default)]
pub struct Flushed {
    finish: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Flushed {
    /// Spawns `work`, given the token that asks it to empty its queue and end.
    pub fn spawn<F>(work: impl FnOnce(CancellationToken) -> F) -> Self
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let finish = CancellationToken::new();
        let task = tokio::spawn(work(finish.clone()));
        Flushed {
            finish,
            task: Mutex::new(Some(task)),
        }
    }

    /// Asks the task to send what is queued and end; waits up to `within` for it.
    /// Returns whether it ended in time.
    pub async fn flush(&self, within: Duration) -> bool {
        self.finish.cancel();
        let Some(task) = self.task.lock().await.take() else {
            return true;
        };
        tokio::time::timeout(within, task).await.is_ok()
    }
}
