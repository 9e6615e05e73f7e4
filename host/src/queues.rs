//! Queue names. Actor `A` consumes `{prefix}A` (`asya-A` by default), as in Asya; the one
//! place that knows this, so transports and the router never build names by hand.

/// Maps actor names to queue names.
#[derive(Debug, Clone)]
pub struct QueueNames {
    prefix: String,
}

impl Default for QueueNames {
    fn default() -> Self {
        QueueNames::new("asya-")
    }
}

impl QueueNames {
    pub fn new(prefix: impl Into<String>) -> Self {
        QueueNames {
            prefix: prefix.into(),
        }
    }

    /// The queue actor `actor` consumes.
    pub fn for_actor(&self, actor: &str) -> String {
        format!("{}{actor}", self.prefix)
    }
}

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
