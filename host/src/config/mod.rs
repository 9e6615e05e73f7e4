//! The node's configuration, checked once at start.
//!
//! Every setting has a default that runs on one machine with no setup; the CLI (and
//! `WASYA_*` environment variables) fill this struct, and [`NodeConfig::validate`]
//! turns a bad value into one clear line before anything starts.
//!
//! The settings come in sections, one per part of the node that takes them
//! ([`sections`]: the API, the transport, the wasm engine, routing, outcomes,
//! deployments; [`actors`]: what is served and the defaults each actor runs with), so a
//! part is handed its own section and nothing else. What belongs to the whole node (the
//! data directory, the grace period) stays at the top.

pub mod actors;
pub mod sections;
mod validate;

pub use actors::{ActorDefaults, ActorOverrides, ServedActors};
pub use sections::{
    AmqpSettings, ApiConfig, DeploymentConfig, EngineConfig, OutcomeConfig, RoutingConfig,
    StoreSettings, TransportConfig, host_pattern_matches,
};

use crate::defaults;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `wasya up` needs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Compiled-component cache, deployments and, unless `ephemeral`, the embedded
    /// queue's store; `None` keeps nothing on disk.
    pub data_dir: Option<PathBuf>,
    /// Keep the embedded queue and outcomes in memory only, even with a data directory.
    pub ephemeral: bool,
    /// How long a stop waits for queued and in-flight messages.
    pub grace_period: Duration,
    /// The HTTP API.
    pub api: ApiConfig,
    /// The queues: embedded, or RabbitMQ.
    pub transport: TransportConfig,
    /// The wasm engine; `None` runs socket actors only (`wasya sidecar`).
    pub engine: Option<EngineConfig>,
    /// Which actors are served at start.
    pub serve: ServedActors,
    /// What every actor runs with, and what single actors set differently.
    pub actors: ActorDefaults,
    /// Where results go, and who hears of each hop.
    pub routing: RoutingConfig,
    /// The bounded record of what ended.
    pub outcomes: OutcomeConfig,
    /// Actors deployed while the node runs, and the pool's shared store.
    pub deployments: DeploymentConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            data_dir: default_data_dir(),
            ephemeral: false,
            grace_period: defaults::GRACE_PERIOD,
            api: ApiConfig::default(),
            transport: TransportConfig::default(),
            engine: Some(EngineConfig::default()),
            serve: ServedActors::default(),
            actors: ActorDefaults::default(),
            routing: RoutingConfig::default(),
            outcomes: OutcomeConfig::default(),
            deployments: DeploymentConfig::default(),
        }
    }
}

/// A configuration value that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// The number of cores, the default concurrency per actor.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `$XDG_DATA_HOME/wasya`, else `~/.local/share/wasya`.
pub fn default_data_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share"))
        })?;
    Some(base.join("wasya"))
}
