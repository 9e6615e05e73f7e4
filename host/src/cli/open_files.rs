//! Raising the open-files limit for a node.
//!
//! A node waiting on ten thousand outbound requests holds ten thousand sockets, and
//! as many again for its own clients. Most systems start a process with a soft limit
//! of 1024 open files and a much higher hard limit; a server raises its soft limit to
//! the hard one at start, as nginx and the JVM do. Failing to is logged, not fatal.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises the soft open-files limit to the hard one; returns the limit in force.
pub fn raise_limit() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    let (Some(current), hard) = (limit.current, limit.maximum) else {
        return None;
    };
    let Some(hard) = hard else {
        return Some(current);
    };
    if hard <= current {
        return Some(current);
    }
    match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        },
    ) {
        Ok(()) => Some(hard),
        Err(error) => {
            tracing::warn!(%error, current, hard, "could not raise the open-files limit");
            Some(current)
        }
    }
}
