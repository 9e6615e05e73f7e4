//! One retry policy for everything the node waits to come back: the broker
//! connection, the pool's store, a socket actor's runtime, outcome reads from the
//! store. (Progress reports to a gateway keep Asya's sidecar's fixed five tries.)
//!
//! Every wait follows one shape, from `backon`: a first pause that doubles up to a
//! ceiling, each pause drawn at random from `[pause, 2 × pause)`. The jitter matters
//! in a pool: nodes that lost the same broker or store at the same moment spread
//! their reconnects instead of arriving in lockstep. Callers differ only in the first
//! pause and the ceiling, named here side by side so an operator reads them in one
//! place.

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use std::time::Duration;

/// Reconnecting to RabbitMQ after a failed connection or a lost one.
pub const BROKER: Policy = Policy::new(Duration::from_millis(100), Duration::from_secs(5));
/// Reaching the pool's store: at start, after a failed connection (callers get an
/// error at once until the pause is over), and for its change feed.
pub const STORE: Policy = Policy::new(Duration::from_millis(100), Duration::from_secs(1));
/// Connecting to a socket actor's runtime while a message waits for it.
pub const RUNTIME: Policy = Policy::new(Duration::from_millis(50), Duration::from_secs(2));
/// Reading an envelope's outcome from the pool's store until it ends.
pub const OUTCOME_POLL: Policy = Policy::new(Duration::from_millis(10), Duration::from_millis(200));

/// The first pause and the ceiling of one kind of wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    first: Duration,
    ceiling: Duration,
}

impl Policy {
    /// Pauses from `first`, doubling up to `ceiling` (before jitter).
    pub const fn new(first: Duration, ceiling: Duration) -> Policy {
        Policy { first, ceiling }
    }

    /// A fresh schedule of pauses.
    pub fn start(self) -> Backoff {
        Backoff {
            policy: self,
            schedule: schedule(self),
        }
    }
}

fn schedule(policy: Policy) -> ExponentialBackoff {
    ExponentialBuilder::new()
        .with_min_delay(policy.first)
        .with_max_delay(policy.ceiling)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// The pauses of one run of retries; [`Backoff::reset`] after a success.
#[derive(Debug)]
pub struct Backoff {
    policy: Policy,
    schedule: ExponentialBackoff,
}

impl Backoff {
    /// The pause before the next try.
    pub fn next_pause(&mut self) -> Duration {
        // The schedule has no limit on tries; should it ever end, the ceiling holds.
        self.schedule.next().unwrap_or(self.policy.ceiling)
    }

    /// Starts again from the first pause.
    pub fn reset(&mut self) {
        self.schedule = schedule(self.policy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy::new(Duration::from_millis(100), Duration::from_millis(800));

    #[test]
    fn pauses_double_up_to_the_ceiling_each_with_jitter_below_twice_itself() {
        let mut backoff = P.start();
        let bases = [100, 200, 400, 800, 800, 800];
        for base in bases {
            let pause = backoff.next_pause();
            let base = Duration::from_millis(base);
            assert!(
                pause >= base && pause < base * 2,
                "{pause:?} outside [{base:?}, {:?})",
                base * 2
            );
        }
        backoff.reset();
        let first = backoff.next_pause();
        assert!(first < Duration::from_millis(200), "{first:?}");
    }

    #[test]
    fn two_schedules_do_not_move_in_lockstep() {
        let (mut a, mut b) = (P.start(), P.start());
        let same = (0..8).filter(|_| a.next_pause() == b.next_pause()).count();
        assert!(same < 8, "two nodes would retry at the same instants");
    }
}
