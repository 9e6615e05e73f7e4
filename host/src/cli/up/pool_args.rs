//! The flags of deployments and the pool's shared store.

use crate::config::{DeploymentConfig, StoreSettings};
use crate::defaults;
use crate::units::parse_duration;
use clap::Args;
use std::time::Duration;

/// Flags of deployments and the pool's store.
#[derive(Debug, Clone, Args)]
pub struct PoolArgs {
    /// The pool's shared control plane: `postgres://user:password@host/database`,
    /// TLS as libpq's `sslmode` says (`prefer` by default; `require`, `verify-ca`,
    /// `verify-full` with `sslrootcert=ca.pem`). Without it, deployments are kept in
    /// the data directory.
    #[arg(long = "store", env = "WASYA_STORE_URL", hide_env_values = true)]
    #[arg(help_heading = "Pool store")]
    pub store: Option<String>,
    /// The schema of the shared store the pool's tables live in.
    #[arg(long, env = "WASYA_STORE_SCHEMA", default_value = "wasya")]
    #[arg(help_heading = "Pool store")]
    pub store_schema: String,
    /// Connections this node keeps to the shared store, at most.
    #[arg(long, env = "WASYA_STORE_CONNECTIONS", default_value_t = defaults::STORE_CONNECTIONS, value_parser = clap::value_parser!(u16).range(1..))]
    #[arg(help_heading = "Pool store")]
    pub store_connections: u16,
    /// How long the shared store keeps envelope outcomes.
    #[arg(long, env = "WASYA_OUTCOME_RETENTION", default_value = defaults::OUTCOME_RETENTION_TEXT, value_parser = parse_duration)]
    #[arg(help_heading = "Pool store")]
    pub outcome_retention: Duration,
    /// Deployed actors this node hosts: names or patterns (`cpu-*`, `*`), comma-separated.
    #[arg(long, env = "WASYA_HOSTS", value_delimiter = ',')]
    #[arg(help_heading = "Actors")]
    pub hosts: Option<Vec<String>>,
    /// Versions of an actor kept recorded (the current one included); older ones and
    /// their components are deleted.
    #[arg(long, env = "WASYA_KEEP_VERSIONS", default_value_t = defaults::KEEP_VERSIONS)]
    #[arg(help_heading = "Limits")]
    pub keep_versions: usize,
    /// Actors the node keeps at most; a new one past it is refused (409).
    #[arg(long, env = "WASYA_MAX_ACTORS", default_value_t = defaults::MAX_ACTORS)]
    #[arg(help_heading = "Limits")]
    pub max_actors: usize,
}

impl PoolArgs {
    /// The deployments section.
    pub fn section(&self) -> DeploymentConfig {
        DeploymentConfig {
            store: self.store.clone().map(|url| StoreSettings {
                url,
                schema: self.store_schema.clone(),
                outcome_retention: self.outcome_retention,
                connections: usize::from(self.store_connections),
            }),
            hosts: self.hosts.clone(),
            keep_versions: self.keep_versions,
            max_actors: self.max_actors,
        }
    }
}
