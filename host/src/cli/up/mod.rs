//! `wasya up`: run a node until SIGINT or SIGTERM, then stop gracefully.
//!
//! The flags come in groups, one per section of the node's configuration (the API,
//! the queues, the engine, the actors and their outbound HTTP, the pool's store,
//! object storage), each group in a file of its own that builds its section; this
//! file puts the sections together and runs the node.

mod actor_args;
mod api_args;
mod engine_args;
mod pool_args;
mod queue_args;

pub(crate) use actor_args::parse_key_value;
pub use actor_args::{ActorArgs, OutboundArgs};
pub use api_args::ApiArgs;
pub use engine_args::EngineArgs;
pub use pool_args::PoolArgs;
pub use queue_args::QueueArgs;

use crate::config::{NodeConfig, default_data_dir};
use crate::defaults;
use crate::node::Node;
use crate::units::parse_duration;
use clap::Args;
use std::time::Duration;

/// Flags of `wasya up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The HTTP API.
    #[command(flatten)]
    pub api: ApiArgs,
    /// The queues, the data directory and the outcomes.
    #[command(flatten)]
    pub queues: QueueArgs,
    /// The actors.
    #[command(flatten)]
    pub actors: ActorArgs,
    /// The actors' outbound HTTP.
    #[command(flatten)]
    pub outbound: OutboundArgs,
    /// The wasm engine.
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Deployments and the pool's store.
    #[command(flatten)]
    pub pool: PoolArgs,
    /// Object storage for ended envelopes.
    #[command(flatten)]
    pub s3: super::s3_args::S3Args,
    /// How long a stop waits for queued and in-flight messages.
    #[arg(long, env = "WASYA_GRACE_PERIOD", default_value = defaults::GRACE_PERIOD_TEXT, value_parser = parse_duration)]
    #[arg(help_heading = "Limits")]
    pub grace_period: Duration,
}

impl UpArgs {
    /// The node configuration these flags describe.
    pub fn into_config(&self) -> anyhow::Result<NodeConfig> {
        Ok(NodeConfig {
            data_dir: self.queues.data_dir.clone().or_else(default_data_dir),
            ephemeral: self.queues.ephemeral,
            grace_period: self.grace_period,
            api: self.api.section()?,
            transport: self.queues.transport(),
            engine: Some(self.engine.section(self.outbound.outbound_ca.clone())),
            serve: self.actors.served(),
            actors: self.actors.defaults(&self.outbound)?,
            routing: self.queues.routing(self.s3.clone().config()),
            outcomes: self.queues.outcomes(),
            deployments: self.pool.section(),
        })
    }
}

/// Runs a node until a stop signal.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    run_config(args.into_config()?).await
}

/// Runs a node with this configuration until a stop signal.
pub async fn run_config(config: NodeConfig) -> anyhow::Result<()> {
    // Listen for signals before anything starts, so a stop sent during start-up is
    // a graceful one too.
    let stop = stop_signal()?;
    if let Some(limit) = super::open_files::raise_limit() {
        tracing::debug!(limit, "open files allowed");
    }
    let node = Node::start(config).await?;
    tracing::info!(actors = ?node.actor_names(), "node up");
    stop.await;
    tracing::info!("stopping: draining queues and in-flight messages");
    node.stop().await;
    Ok(())
}

/// Resolves at the first SIGINT or SIGTERM.
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}
