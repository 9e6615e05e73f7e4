//! Which actors a node serves at start, and the defaults each actor runs with.
//!
//! Kept apart from the other sections because the deployments apply the same
//! defaults to every actor deployed later: [`ActorDefaults`] is what
//! [`crate::deployments`] holds, and what an actor's recorded options are laid over.

use crate::defaults;
use crate::outbound::{Grant, OutboundLimits};
use crate::records::ActorKind;
use crate::runtime::ActorLimits;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The actors served from the start: wasm components and external runtimes.
#[derive(Debug, Clone, Default)]
pub struct ServedActors {
    /// Load `NAME.wasm` files from here; `None` loads the bundled example actors.
    pub actors_dir: Option<PathBuf>,
    /// Serve only these of the available actors (`None`: all of them).
    pub only: Option<Vec<String>>,
    /// Actors served by external runtimes: name and socket path.
    pub sockets: Vec<(String, PathBuf)>,
}

impl ServedActors {
    /// Whether `name` is served by an external runtime named at start.
    pub fn is_socket(&self, name: &str) -> bool {
        self.sockets.iter().any(|(socket, _)| socket == name)
    }
}

/// What every actor runs with, and what single actors set differently.
#[derive(Debug, Clone)]
pub struct ActorDefaults {
    /// Messages of one actor handled at once.
    pub concurrency: usize,
    /// Messages of one async actor (`wasya:actor@0.2.0`) handled at once: its calls
    /// mostly wait, and share a few instances.
    pub async_concurrency: usize,
    /// Limits every actor runs under, unless overridden in `per_actor`.
    pub limits: ActorLimits,
    /// Settings of single actors that differ from the node's defaults.
    pub per_actor: BTreeMap<String, ActorOverrides>,
    /// Largest response frame read from an external runtime.
    pub frame_limit: usize,
}

impl Default for ActorDefaults {
    fn default() -> Self {
        ActorDefaults {
            concurrency: super::default_concurrency(),
            async_concurrency: defaults::ASYNC_CONCURRENCY,
            limits: ActorLimits::default(),
            per_actor: BTreeMap::new(),
            frame_limit: defaults::FRAME_LIMIT,
        }
    }
}

/// What one actor sets differently from the node's defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActorOverrides {
    /// The longest one call of the actor may take.
    pub timeout: Option<Duration>,
    /// The linear memory one instance may grow to, in bytes.
    pub memory_bytes: Option<usize>,
    /// How many messages of the actor are handled at once.
    pub concurrency: Option<usize>,
    /// Whether instances are kept between messages instead of a fresh one per message.
    pub reuse_instances: Option<bool>,
    /// Hosts this actor may call beside the node-wide grant.
    pub outbound_grant: Option<Grant>,
}

impl ActorDefaults {
    /// The limits actor `name` runs under.
    pub fn limits_for(&self, name: &str) -> ActorLimits {
        let overrides = self.per_actor.get(name);
        ActorLimits {
            timeout: overrides
                .and_then(|o| o.timeout)
                .unwrap_or(self.limits.timeout),
            memory_bytes: overrides
                .and_then(|o| o.memory_bytes)
                .unwrap_or(self.limits.memory_bytes),
            env: self.limits.env.clone(),
            reuse_instances: overrides
                .and_then(|o| o.reuse_instances)
                .or(self.limits.reuse_instances),
            outbound: OutboundLimits {
                grant: match overrides.and_then(|o| o.outbound_grant.as_ref()) {
                    Some(grant) => self.limits.outbound.grant.clone().with(grant),
                    None => self.limits.outbound.grant.clone(),
                },
                ..self.limits.outbound.clone()
            },
            instance_concurrency: self.limits.instance_concurrency,
        }
    }

    /// How many messages of actor `name`, of `kind`, are handled at once: its
    /// override, else one for a socket actor (Asya's runtime serves one call at a
    /// time), else the node's `--concurrency`.
    pub fn concurrency_for(&self, name: &str, kind: ActorKind) -> usize {
        let default = if kind == ActorKind::Socket {
            1
        } else {
            self.concurrency
        };
        self.per_actor
            .get(name)
            .and_then(|o| o.concurrency)
            .unwrap_or(default)
    }

    /// Messages of async actor `name` handled at once, unless its options set it.
    pub fn async_concurrency_for(&self, name: &str) -> usize {
        self.per_actor
            .get(name)
            .and_then(|o| o.concurrency)
            .unwrap_or(self.async_concurrency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_wins_over_the_default_and_a_socket_actor_takes_one_call() {
        let mut defaults = ActorDefaults {
            concurrency: 8,
            ..ActorDefaults::default()
        };
        defaults.per_actor.insert(
            "slow".into(),
            ActorOverrides {
                timeout: Some(Duration::from_secs(2)),
                concurrency: Some(3),
                ..ActorOverrides::default()
            },
        );
        assert_eq!(defaults.concurrency_for("fast", ActorKind::Wasm), 8);
        assert_eq!(defaults.concurrency_for("runtime", ActorKind::Socket), 1);
        assert_eq!(defaults.concurrency_for("slow", ActorKind::Socket), 3);
        assert_eq!(defaults.limits_for("slow").timeout, Duration::from_secs(2));
        assert_eq!(defaults.limits_for("fast").timeout, defaults.limits.timeout);
    }
}
