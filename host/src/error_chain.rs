//! How an error is told to a person: its own message, then each cause after a colon.
//!
//! Error types in this crate keep their causes as `#[source]` fields instead of
//! flattening them into strings; the text a user reads (an API answer, a log line, the
//! CLI's last line) is built once, at the edge, with [`chain`].

use std::error::Error;
use std::fmt;

/// A cause kept by an error type (shareable, so such errors stay `Clone`).
pub type Cause = std::sync::Arc<dyn Error + Send + Sync + 'static>;

/// Wraps any error as a [`Cause`].
pub fn cause(error: impl Error + Send + Sync + 'static) -> Cause {
    std::sync::Arc::new(error)
}

/// `error` and its causes, `outer: inner: innermost`, for display.
pub fn chain<'a>(error: &'a (dyn Error + 'static)) -> Chain<'a> {
    Chain(error)
}

/// Displays an error with its causes.
pub struct Chain<'a>(&'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)?;
        let mut last = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(inner) = cause {
            let text = inner.to_string();
            // Some errors repeat their cause in their own message: say it once.
            if !last.contains(&text) {
                write!(formatter, ": {text}")?;
            }
            last = text;
            cause = inner.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot record the deployment")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn tells_every_cause_once() {
        let error = Outer(std::io::Error::other("disk full"));
        assert_eq!(
            chain(&error).to_string(),
            "cannot record the deployment: disk full"
        );
    }
}
