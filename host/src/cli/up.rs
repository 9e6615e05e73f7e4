//! `wasya up`: run a node until SIGINT or SIGTERM, then stop gracefully.

use crate::config::{
    NodeConfig, default_concurrency, default_data_dir, parse_bytes, parse_duration,
};
use crate::node::Node;
use crate::runtime::ActorLimits;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Flags of `wasya up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Address of the HTTP API.
    #[arg(long, env = "WASYA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory of actors (`NAME.wasm` serves as actor NAME); default: the bundled examples.
    #[arg(long, env = "WASYA_ACTORS")]
    pub actors: Option<PathBuf>,
    /// Messages of one actor handled at once (default: the number of cores).
    #[arg(long, env = "WASYA_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Messages one embedded queue holds, queued plus in flight.
    #[arg(long, env = "WASYA_QUEUE_CAPACITY", default_value_t = crate::transport::memory::DEFAULT_CAPACITY)]
    pub queue_capacity: usize,
    /// Time one actor call may take.
    #[arg(long, env = "WASYA_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Memory one actor instance may grow to.
    #[arg(long, env = "WASYA_MEMORY_LIMIT", default_value = "256MiB", value_parser = parse_bytes)]
    pub memory_limit: usize,
    /// An environment variable granted to the actors, KEY=VALUE (repeatable).
    #[arg(long = "actor-env", env = "WASYA_ACTOR_ENV", value_delimiter = ',', value_parser = parse_key_value)]
    pub actor_env: Vec<(String, String)>,
    /// Node state (the compiled-component cache); default $XDG_DATA_HOME/wasya.
    #[arg(long, env = "WASYA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// How long a stop waits for queued and in-flight messages.
    #[arg(long, env = "WASYA_GRACE_PERIOD", default_value = "30s", value_parser = parse_duration)]
    pub grace_period: Duration,
    /// Allocate instances on demand instead of from the pooling allocator.
    #[arg(long, env = "WASYA_NO_POOLING")]
    pub no_pooling: bool,
    /// WebAssembly instances alive at once, across all actors.
    #[arg(long, env = "WASYA_MAX_INSTANCES", default_value_t = 256)]
    pub max_instances: u32,
    /// Prefix of queue names.
    #[arg(long, env = "WASYA_QUEUE_PREFIX", default_value = "asya-")]
    pub queue_prefix: String,
    /// Largest HTTP request body.
    #[arg(long, env = "WASYA_MAX_BODY", default_value = "64MiB", value_parser = parse_bytes)]
    pub max_body: usize,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

impl UpArgs {
    /// The node configuration these flags describe.
    pub fn into_config(self) -> NodeConfig {
        NodeConfig {
            listen: Some(self.listen),
            actors_dir: self.actors,
            concurrency: self.concurrency.unwrap_or_else(default_concurrency),
            queue_capacity: self.queue_capacity,
            limits: ActorLimits {
                timeout: self.timeout,
                memory_bytes: self.memory_limit,
                env: self.actor_env,
            },
            data_dir: self.data_dir.or_else(default_data_dir),
            grace_period: self.grace_period,
            pooling: !self.no_pooling,
            max_instances: self.max_instances,
            queue_prefix: self.queue_prefix,
            max_body_bytes: self.max_body,
            ..NodeConfig::default()
        }
    }
}

/// Runs a node until a stop signal.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let node = Node::start(args.into_config()).await?;
    tracing::info!(actors = ?node.actor_names(), "node up");
    stop_signal().await;
    tracing::info!("stopping: draining queues and in-flight messages");
    node.stop().await;
    Ok(())
}

async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        }
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
