//! The exit codes of the command line, so scripts can tell outcomes apart without
//! reading stderr. clap itself exits 2 on bad usage.

/// How a command ended, when it is more than "it failed".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `send --wait`: the envelope ended at `error-end`.
    EnvelopeFailed,
    /// `send --wait`: the envelope was still pending at the deadline.
    StillPending,
    /// The node could not be reached.
    Unreachable,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::EnvelopeFailed => 3,
            Exit::StillPending => 4,
            Exit::Unreachable => 5,
        }
    }
}

/// An error that ends the process with a code of its own.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitError {
    /// How the command ended; its code is the process's exit status.
    pub exit: Exit,
    /// What went wrong, as printed.
    pub message: String,
}

impl ExitError {
    /// An error that ends the process with the code of `exit`.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        ExitError {
            exit,
            message: message.into(),
        }
    }
}

/// The exit code for `error`: its own where it carries one, else 1.
pub fn code_of(error: &anyhow::Error) -> u8 {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<ExitError>())
        .map_or(1, |error| error.exit.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_found_through_context() {
        let codes = [Exit::EnvelopeFailed, Exit::StillPending, Exit::Unreachable].map(Exit::code);
        assert_eq!(codes, [3, 4, 5]);
        let wrapped = anyhow::Error::new(ExitError::new(Exit::Unreachable, "down")).context("send");
        assert_eq!(code_of(&wrapped), 5);
        assert_eq!(code_of(&anyhow::anyhow!("other")), 1);
    }
}
