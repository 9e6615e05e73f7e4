//! Queue names. Actor `A` consumes `{prefix}A` (`asya-A` by default), as in Asya, and
//! its dead letters go to `{prefix}A-dlq`; the one place that knows this, so transports
//! and the router never build names by hand.

/// Maps actor names to queue names.
#[derive(Debug, Clone)]
pub struct QueueNames {
    prefix: String,
}

impl Default for QueueNames {
    fn default() -> Self {
        QueueNames::new(crate::defaults::QUEUE_PREFIX)
    }
}

impl QueueNames {
    /// Queue names that put `prefix` before each actor's name.
    pub fn new(prefix: impl Into<String>) -> Self {
        QueueNames {
            prefix: prefix.into(),
        }
    }

    /// The queue actor `actor` consumes.
    pub fn for_actor(&self, actor: &str) -> String {
        // Several times a hop (metric labels): two copies, not the formatting machinery.
        let mut queue = String::with_capacity(self.prefix.len() + actor.len());
        queue.push_str(&self.prefix);
        queue.push_str(actor);
        queue
    }

    /// The dead-letter queue of `queue`: where messages that cannot be handled go
    /// whole, with the reason.
    pub fn dead_letter(&self, queue: &str) -> String {
        dead_letter_queue(queue)
    }
}

/// The dead-letter queue of `queue`.
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}{DEAD_LETTER_SUFFIX}")
}

/// Whether `queue` is a dead-letter queue (whose messages are not limited in
/// redeliveries: they are there to be looked at).
pub fn is_dead_letter_queue(queue: &str) -> bool {
    queue.ends_with(DEAD_LETTER_SUFFIX)
}

const DEAD_LETTER_SUFFIX: &str = "-dlq";

#[cfg(test)]
mod tests {
    #[test]
    fn prefixes_actor_names() {
        assert_eq!(
            super::QueueNames::default().for_actor("resize"),
            "asya-resize"
        );
        assert_eq!(super::QueueNames::new("x.").for_actor("a"), "x.a");
    }
}
