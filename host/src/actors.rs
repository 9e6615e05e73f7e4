//! The actors a node serves: names, and the runtime currently behind each name.
//!
//! Each actor sits in an [`ActorSlot`] whose runtime can be replaced while messages
//! flow: a call takes the `Arc` of the runtime current at its start and finishes on
//! it, new calls see the new one. That is what makes a version swap lose nothing.

use crate::routing::{ERROR_END, HAPPY_END};
use crate::runtime::ActorRuntime;
use std::sync::{Arc, RwLock};

/// Why a name cannot be an actor's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NameError {
    #[error("actor name `{0}` is invalid: use 1-63 of [a-z0-9-], starting with a letter or digit")]
    Invalid(String),
    #[error("actor name `{0}` is reserved for the node's end actors")]
    Reserved(String),
}

/// Checks an actor name: `[a-z0-9][a-z0-9-]{0,62}`, and not an end actor's.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    let bytes = name.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if !valid {
        return Err(NameError::Invalid(name.to_owned()));
    }
    if name == HAPPY_END || name == ERROR_END {
        return Err(NameError::Reserved(name.to_owned()));
    }
    Ok(())
}

/// One served actor.
pub struct ActorSlot {
    name: String,
    concurrency: usize,
    runtime: RwLock<Arc<dyn ActorRuntime>>,
}

impl ActorSlot {
    pub fn new(
        name: impl Into<String>,
        runtime: Arc<dyn ActorRuntime>,
        concurrency: usize,
    ) -> Self {
        ActorSlot {
            name: name.into(),
            concurrency: concurrency.max(1),
            runtime: RwLock::new(runtime),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many messages of this actor run at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The runtime new calls go to.
    pub fn current(&self) -> Arc<dyn ActorRuntime> {
        self.runtime
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Puts a new runtime behind the name; calls in flight finish on the old one.
    pub fn replace(&self, runtime: Arc<dyn ActorRuntime>) {
        *self
            .runtime
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = runtime;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["a", "echo", "resize-2", "0x", &"a".repeat(63)] {
            assert_eq!(validate_name(good), Ok(()), "{good}");
        }
        for bad in ["", "-a", "A", "a_b", "../x", "a/b", "é", &"a".repeat(64)] {
            assert!(
                matches!(validate_name(bad), Err(NameError::Invalid(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            validate_name("happy-end"),
            Err(NameError::Reserved(_))
        ));
    }
}
