//! The flags of the queues (embedded or RabbitMQ), the data directory, and what is
//! kept of what ended.

use crate::config::{AmqpSettings, OutcomeConfig, RoutingConfig, TransportConfig};
use crate::defaults;
use crate::units::parse_bytes;
use clap::Args;
use std::path::PathBuf;

/// Flags of the queues and outcomes.
#[derive(Debug, Clone, Args)]
pub struct QueueArgs {
    /// Messages one embedded queue holds, queued plus in flight.
    #[arg(long, env = "WASYA_QUEUE_CAPACITY", default_value_t = defaults::QUEUE_CAPACITY)]
    #[arg(help_heading = "Queues and outcomes")]
    pub queue_capacity: usize,
    /// Node state: the embedded queue's store, outcomes, deployments and the
    /// compiled-component cache; default $XDG_DATA_HOME/wasya.
    #[arg(long, env = "WASYA_DATA_DIR")]
    #[arg(help_heading = "Queues and outcomes")]
    pub data_dir: Option<PathBuf>,
    /// Keep the embedded queue and outcomes in memory only: faster, and lost with the
    /// process (a stop drains the queues first). Without it, every envelope accepted
    /// is on disk in the data directory before it is acknowledged.
    #[arg(long, env = "WASYA_EPHEMERAL")]
    #[arg(help_heading = "Queues and outcomes")]
    pub ephemeral: bool,
    /// Prefix of queue names.
    #[arg(long, env = "WASYA_QUEUE_PREFIX", default_value = defaults::QUEUE_PREFIX)]
    #[arg(help_heading = "Queues and outcomes")]
    pub queue_prefix: String,
    /// Use RabbitMQ at this URL instead of the embedded queue (also ASYA_RABBITMQ_URL).
    #[arg(long, env = "WASYA_AMQP_URL")]
    #[arg(help_heading = "Queues and outcomes")]
    pub amqp: Option<String>,
    /// The RabbitMQ topic exchange actors' queues are bound to.
    #[arg(long, env = "WASYA_EXCHANGE", default_value = defaults::EXCHANGE)]
    #[arg(help_heading = "Queues and outcomes")]
    pub exchange: String,
    /// Redeliveries of one message before it goes to its queue's `-dlq` (embedded
    /// queue and RabbitMQ).
    #[arg(long, env = "WASYA_MAX_REDELIVERIES", default_value_t = defaults::MAX_REDELIVERIES)]
    #[arg(help_heading = "Queues and outcomes")]
    pub max_redeliveries: u32,
    /// Largest message the node puts on a queue; envelopes up to this less 64KiB (kept
    /// for an error-end wrapper) are accepted.
    #[arg(long, env = "WASYA_MAX_ENVELOPE", default_value = defaults::MAX_ENVELOPE_TEXT, value_parser = parse_bytes)]
    #[arg(help_heading = "Limits")]
    pub max_envelope: usize,
    /// Leave `happy-end` / `error-end` to other nodes: record no outcomes here.
    #[arg(long, env = "WASYA_NO_END_ACTORS")]
    #[arg(help_heading = "Queues and outcomes")]
    pub no_end_actors: bool,
    /// Keep no progress events (`/v1/envelopes/{id}/events` then streams only the
    /// outcome): the most hops per second, for pipelines nobody follows.
    #[arg(long, env = "WASYA_NO_PROGRESS")]
    #[arg(help_heading = "Queues and outcomes")]
    pub no_progress: bool,
    /// Submissions whose outcome the node keeps (oldest go first).
    #[arg(long, env = "WASYA_OUTCOME_CAPACITY", default_value_t = defaults::OUTCOME_CAPACITY)]
    #[arg(help_heading = "Queues and outcomes")]
    pub outcome_capacity: usize,
    /// Bytes of ended envelopes the node keeps as outcomes (oldest go first).
    #[arg(long, env = "WASYA_OUTCOME_MEMORY", default_value = defaults::OUTCOME_MEMORY_TEXT, value_parser = parse_bytes)]
    #[arg(help_heading = "Queues and outcomes")]
    pub outcome_memory: usize,
}

impl QueueArgs {
    /// The transport section: RabbitMQ where `--amqp` (or Asya's
    /// `ASYA_RABBITMQ_URL`) names one, else the embedded queue.
    pub fn transport(&self) -> TransportConfig {
        TransportConfig {
            amqp: self
                .amqp
                .clone()
                .or_else(|| std::env::var("ASYA_RABBITMQ_URL").ok())
                .map(|url| AmqpSettings {
                    url,
                    exchange: self.exchange.clone(),
                    max_redeliveries: self.max_redeliveries,
                }),
            queue_capacity: self.queue_capacity,
            max_redeliveries: self.max_redeliveries,
            queue_prefix: self.queue_prefix.clone(),
            max_envelope_bytes: self.max_envelope,
        }
    }

    /// The routing section: whether this node ends routes and keeps progress; where
    /// ended envelopes are copied.
    pub fn routing(&self, archive: Option<crate::archive::ArchiveConfig>) -> RoutingConfig {
        RoutingConfig {
            end_actors: !self.no_end_actors,
            keep_progress: !self.no_progress,
            archive,
            ..RoutingConfig::default()
        }
    }

    /// The outcome record's bounds.
    pub fn outcomes(&self) -> OutcomeConfig {
        OutcomeConfig {
            capacity: self.outcome_capacity,
            memory: self.outcome_memory,
        }
    }
}
