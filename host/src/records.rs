//! The plain records every layer talks about: actor names, the end actors, an actor's
//! kind, options, versions and record.
//!
//! A leaf module on purpose: it depends on nothing else of the crate, so the store, the
//! deployments, the configuration, the router and the API can all use these types
//! without depending on one another. Behaviour lives with the layer that owns it
//! (checking options in `deployments::options`, serving a record in `deployments`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The end actor that records envelopes whose route finished (or was aborted).
pub const HAPPY_END: &str = "happy-end";
/// The end actor that records envelopes that failed.
pub const ERROR_END: &str = "error-end";

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

/// Which end actor took an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Happy,
    Error,
}

impl End {
    /// The end actor's name (`happy-end`, `error-end`).
    pub fn actor_name(self) -> &'static str {
        match self {
            End::Happy => HAPPY_END,
            End::Error => ERROR_END,
        }
    }

    /// The end named `name`; anything but `happy-end` reads as an error.
    pub fn from_actor_name(name: &str) -> End {
        if name == HAPPY_END {
            End::Happy
        } else {
            End::Error
        }
    }
}

/// The names the end actors go by (Asya lets a deployment rename them).
#[derive(Debug, Clone, PartialEq)]
pub struct EndNames {
    pub happy: String,
    pub error: String,
}

impl Default for EndNames {
    fn default() -> Self {
        EndNames {
            happy: HAPPY_END.into(),
            error: ERROR_END.into(),
        }
    }
}

impl EndNames {
    /// The name the queue of `end` goes by.
    pub fn of(&self, end: End) -> &str {
        match end {
            End::Happy => &self.happy,
            End::Error => &self.error,
        }
    }
}

/// How an actor runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    /// A WebAssembly component, in-process.
    #[default]
    Wasm,
    /// An external runtime behind a Unix socket (Asya's runtime protocol).
    Socket,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Wasm => "wasm",
            ActorKind::Socket => "socket",
        }
    }
}

/// What an actor's results may carry (Asya's handler modes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HandlerMode {
    /// Payloads only; the route is the node's to advance.
    Payload,
    /// Whole envelopes: the actor may rewrite the rest of the route and the headers.
    #[default]
    Envelope,
}

impl HandlerMode {
    pub fn as_str(self) -> &'static str {
        match self {
            HandlerMode::Payload => "payload",
            HandlerMode::Envelope => "envelope",
        }
    }
}

/// An actor's checked options, as recorded and applied; `None` takes the node's flag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ActorOptions {
    pub socket: Option<PathBuf>,
    pub connections: Option<usize>,
    pub timeout_ms: Option<u64>,
    pub memory_limit_bytes: Option<usize>,
    pub concurrency: Option<usize>,
    pub env: BTreeMap<String, String>,
    pub handler_mode: Option<HandlerMode>,
    pub reuse_instances: Option<bool>,
    /// Wasm actors: `scheme://host[:port]` patterns the guest may send HTTP requests to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_outbound_hosts: Vec<String>,
    pub outbound_timeout_ms: Option<u64>,
    pub outbound_body_limit_bytes: Option<usize>,
    pub outbound_concurrency: Option<usize>,
}

/// One version of a deployed wasm actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Version {
    pub version: u32,
    pub digest: String,
}

/// What the store keeps of one actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorRecord {
    pub name: String,
    #[serde(default)]
    pub kind: ActorKind,
    /// Uploaded versions, oldest first; empty for a bundled actor given options only,
    /// or a socket actor.
    #[serde(default)]
    pub versions: Vec<Version>,
    #[serde(default)]
    pub options: ActorOptions,
}

impl ActorRecord {
    /// A record with no versions and no options.
    pub fn new(name: &str, kind: ActorKind) -> Self {
        ActorRecord {
            name: name.to_owned(),
            kind,
            versions: Vec::new(),
            options: ActorOptions::default(),
        }
    }

    pub fn current(&self) -> Option<&Version> {
        self.versions.last()
    }
}

/// Whether `next` may replace `stored`: the same versions (a change of options), or
/// those versions and one more (an upload). Anything else means another node changed
/// the actor since this one read it.
pub fn follows(stored: &[Version], next: &[Version]) -> bool {
    next == stored || (next.len() == stored.len() + 1 && next.starts_with(stored))
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

    #[test]
    fn versions_follow_by_one_upload_or_none() {
        let v = |n: u32| Version {
            version: n,
            digest: format!("d{n}"),
        };
        assert!(follows(&[v(1)], &[v(1)]));
        assert!(follows(&[v(1)], &[v(1), v(2)]));
        assert!(!follows(&[v(1)], &[v(1), v(2), v(3)]));
        assert!(!follows(&[v(1), v(2)], &[v(1), v(3)]));
    }
}
