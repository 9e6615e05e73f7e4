//! Queue depths on RabbitMQ for callers that cannot wait: the queue-depth gauge and
//! the actors' views read [`Depths::read`] synchronously, which answers the broker's
//! last count and, when that is older than [`FRESH`], asks again in the background
//! (a passive declare on a short-lived channel), one question per queue at a time.
//!
//! The broker counts the messages ready for delivery; those delivered and not yet
//! acknowledged are not in it. A queue nobody asked about for [`FORGET`] is
//! forgotten, so the cache holds only the queues of served actors.

use super::session::Sessions;
use super::topology;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How old a count may be before it is asked again.
const FRESH: Duration = Duration::from_secs(1);
/// How long a queue nobody asks about is remembered.
const FORGET: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Known {
    depth: Option<usize>,
    counted: Option<Instant>,
    asking: bool,
    asked: Option<Instant>,
}

/// The last count of each queue asked about.
#[derive(Default)]
pub struct Depths {
    known: Mutex<HashMap<String, Known>>,
}

impl Depths {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known>> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The last count of `queue` (`None` until the broker first answered), asking
    /// the broker again when it is stale.
    pub fn read(self: &Arc<Self>, queue: &str, sessions: &Arc<Sessions>) -> Option<usize> {
        let now = Instant::now();
        let mut known = self.lock();
        known.retain(|_, entry| entry.asked.is_some_and(|at| now - at < FORGET));
        let entry = known.entry(queue.to_owned()).or_default();
        entry.asked = Some(now);
        let stale = entry.counted.is_none_or(|at| now - at >= FRESH);
        if stale
            && !entry.asking
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            entry.asking = true;
            runtime.spawn(count(self.clone(), sessions.clone(), queue.to_owned()));
        }
        entry.depth
    }
}

/// Asks the broker for `queue`'s count, and keeps the answer.
async fn count(depths: Arc<Depths>, sessions: Arc<Sessions>, queue: String) {
    let depth = match sessions.current(Duration::ZERO).await {
        Some(session) => topology::message_count(&session.connection, &queue)
            .await
            .inspect_err(|error| tracing::debug!(queue, %error, "cannot count the queue"))
            .ok()
            .flatten()
            .and_then(|count| usize::try_from(count).ok()),
        None => None,
    };
    let mut known = depths.lock();
    if let Some(entry) = known.get_mut(&queue) {
        entry.depth = depth;
        entry.counted = Some(Instant::now());
        entry.asking = false;
    }
}
