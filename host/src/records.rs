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
    /// The name is not 1-63 of `[a-z0-9-]` starting with a letter or digit; holds the name.
    #[error(
        "actor name `{}` is invalid: use 1-63 of [a-z0-9-], starting with a letter or digit",
        crate::envelope::limits::echo(.0)
    )]
    Invalid(String),
    /// The name is an end actor's (`happy-end`, `error-end`); holds the name.
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
    /// `happy-end`: the route finished or was aborted.
    Happy,
    /// `error-end`: the envelope failed.
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
    /// The name of the end actor for finished routes (default `happy-end`).
    pub happy: String,
    /// The name of the end actor for failed envelopes (default `error-end`).
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
    /// The kind as the API writes it (`wasm`, `socket`).
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
    /// The mode as the API writes it (`payload`, `envelope`).
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
    /// Socket actors: the absolute path of the runtime's Unix socket.
    pub socket: Option<PathBuf>,
    /// Socket actors: how many calls may be open to the runtime at once.
    pub connections: Option<usize>,
    /// The longest one call may take, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Wasm actors: the linear memory one instance may grow to, in bytes.
    pub memory_limit_bytes: Option<usize>,
    /// How many messages of the actor are handled at once.
    pub concurrency: Option<usize>,
    /// Wasm actors: environment variables granted to the guest.
    pub env: BTreeMap<String, String>,
    /// Whether the actor returns whole envelopes or payloads only.
    pub handler_mode: Option<HandlerMode>,
    /// Wasm actors: keep instances between messages instead of a fresh one per message.
    pub reuse_instances: Option<bool>,
    /// Wasm actors: `scheme://host[:port]` patterns the guest may send HTTP requests to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_outbound_hosts: Vec<String>,
    /// Wasm actors: the longest one outbound HTTP request may take, in milliseconds.
    pub outbound_timeout_ms: Option<u64>,
    /// Wasm actors: the largest outbound response body the guest may read, in bytes.
    pub outbound_body_limit_bytes: Option<usize>,
    /// Wasm actors: how many outbound HTTP requests may be open at once.
    pub outbound_concurrency: Option<usize>,
    /// Async wasm actors: how many calls one instance takes at once.
    pub instance_concurrency: Option<usize>,
}

/// One version of a deployed wasm actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Version {
    /// The version number: 1 for the first upload, one more for each after.
    pub version: u32,
    /// The hex-encoded sha256 of the component's bytes.
    pub digest: String,
}

/// What the store keeps of one actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorRecord {
    /// The actor's name.
    pub name: String,
    /// How the actor runs.
    #[serde(default)]
    pub kind: ActorKind,
    /// Uploaded versions, oldest first; empty for a bundled actor given options only,
    /// or a socket actor.
    #[serde(default)]
    pub versions: Vec<Version>,
    /// The options set for the actor; unset ones take the node's flags.
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

    /// The newest version, if any was uploaded.
    pub fn current(&self) -> Option<&Version> {
        self.versions.last()
    }
}

/// Whether `next` may replace `stored`: the same current version (a change of
/// options), or one upload more: its new version numbered one past the stored current
/// one, which it keeps just before it (older versions may have been let go, see
/// `--keep-versions`). Anything else means another node changed the actor since this
/// one read it.
pub fn follows(stored: &[Version], next: &[Version]) -> bool {
    match (stored.last(), next.last()) {
        (None, None) => true,
        (None, Some(new)) => next.len() == 1 && new.version >= 1,
        (Some(_), None) => false,
        (Some(current), Some(new)) if new == current => true,
        (Some(current), Some(new)) => {
            new.version == current.version + 1
                && next.len() >= 2
                && next[next.len() - 2] == *current
        }
    }
}

/// Whether a record with versions `incoming` is older than one with `held`: its
/// current version is numbered lower (a record read before a change that followed it).
pub fn is_older(incoming: &[Version], held: &[Version]) -> bool {
    let number = |versions: &[Version]| versions.last().map_or(0, |version| version.version);
    number(incoming) < number(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_follows_its_current_version_whatever_was_let_go() {
        let v = |version: u32, digest: &str| Version {
            version,
            digest: digest.into(),
        };
        assert!(follows(&[], &[v(1, "a")]));
        assert!(follows(&[v(1, "a")], &[v(1, "a")]), "options");
        assert!(follows(&[v(1, "a")], &[v(1, "a"), v(2, "b")]));
        // Version 1 let go as version 3 came.
        assert!(follows(&[v(1, "a"), v(2, "b")], &[v(2, "b"), v(3, "c")]));
        assert!(
            !follows(&[v(1, "a"), v(2, "b")], &[v(1, "a"), v(2, "x")]),
            "another node's 2"
        );
        assert!(!follows(&[v(1, "a"), v(2, "b")], &[v(1, "a"), v(3, "c")]));
        assert!(!follows(&[v(1, "a")], &[]));
        assert!(is_older(&[v(1, "a")], &[v(1, "a"), v(2, "b")]));
        assert!(!is_older(&[v(2, "b")], &[v(1, "a"), v(2, "b")]));
    }

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
