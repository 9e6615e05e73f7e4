//! The sections of the node's configuration, one per part that takes it.
//!
//! Each is plain data with a default that runs on one machine with no setup; the part
//! that uses a section is handed that section alone (the API its [`ApiConfig`], the
//! deployments their [`DeploymentConfig`]), so a change to one part's settings touches
//! that part and the CLI that fills it.

use crate::defaults;
use crate::records::EndNames;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The HTTP API: where it listens, what it accepts, and who may change things.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where the HTTP API listens; `None` runs without it (embedding, benchmarks).
    pub listen: Option<SocketAddr>,
    /// Largest HTTP request body accepted.
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// Bearer token the mutating endpoints require (`None`: none required).
    pub token: Option<String>,
    /// Host names the API answers besides loopback ones (`--public-host`).
    pub public_hosts: Vec<String>,
    /// Web origins allowed to change things through the API (`--allow-origin`).
    pub allowed_origins: Vec<String>,
    /// The pipelines offered as tools (MCP and `POST /tools/call`).
    pub tools: crate::tools::Tools,
    /// MCP sessions open at once (`--mcp-sessions`).
    pub mcp_sessions: usize,
    /// Asya's reporting paths take no token (`--open-reports`).
    pub open_reports: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: defaults::LISTEN_TEXT.parse().ok(),
            max_body_bytes: defaults::MAX_BODY,
            header_read_timeout: defaults::HEADER_READ_TIMEOUT,
            token: None,
            public_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            tools: crate::tools::Tools::default(),
            mcp_sessions: defaults::MCP_SESSIONS,
            open_reports: false,
        }
    }
}

/// The queues: the embedded one (the default) or RabbitMQ.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// RabbitMQ instead of the embedded queue.
    pub amqp: Option<AmqpSettings>,
    /// Messages one embedded queue holds (queued plus in flight).
    pub queue_capacity: usize,
    /// Redeliveries of one message on the embedded queue before it goes to its
    /// queue's `-dlq` (a broker's limit is in [`AmqpSettings`]).
    pub max_redeliveries: u32,
    /// Prefix of queue names (`asya-`).
    pub queue_prefix: String,
    /// Largest message the node puts on a queue; it accepts envelopes up to this less
    /// the room an error-end wrapper needs.
    pub max_envelope_bytes: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            amqp: None,
            queue_capacity: defaults::QUEUE_CAPACITY,
            max_redeliveries: defaults::MAX_REDELIVERIES,
            queue_prefix: defaults::QUEUE_PREFIX.into(),
            max_envelope_bytes: defaults::MAX_ENVELOPE,
        }
    }
}

/// How the node reaches RabbitMQ.
#[derive(Debug, Clone, PartialEq)]
pub struct AmqpSettings {
    /// The broker's AMQP URL.
    pub url: String,
    /// The topic exchange actors' queues are bound to.
    pub exchange: String,
    /// How many times a message is redelivered before it goes to its queue's `-dlq`.
    pub max_redeliveries: u32,
}

/// The wasm engine: its instance allocator and what its guests' outbound HTTPS trusts.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Use the pooling instance allocator.
    pub pooling: bool,
    /// WebAssembly instances alive at once, across all actors.
    pub max_instances: u32,
    /// Pooling: elements one table may hold (a larger guest's function table).
    pub pool_table_elements: usize,
    /// Pooling: bytes of runtime state one core instance may take.
    pub pool_instance_size: usize,
    /// PEM files of certificate authorities actors' outbound HTTPS trusts, beside the
    /// platform's and webpki's roots.
    pub outbound_ca: Vec<PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            pooling: true,
            max_instances: defaults::MAX_INSTANCES,
            pool_table_elements: defaults::POOL_TABLE_ELEMENTS,
            pool_instance_size: defaults::POOL_INSTANCE_SIZE,
            outbound_ca: Vec::new(),
        }
    }
}

/// Where results go and who hears of each hop: the end actors, the routes' ends, an
/// Asya gateway, object storage.
#[derive(Debug, Clone)]
pub struct RoutingConfig {
    /// Consume `happy-end` / `error-end` and record outcomes on this node.
    pub end_actors: bool,
    /// The names of the end actors (Asya lets a deployment rename them).
    pub end_names: EndNames,
    /// Actors that end routes (Asya's `ASYA_IS_END_ACTOR`): their envelopes are taken
    /// whatever their route says, their results go nowhere, and the end is reported
    /// to the gateway.
    pub terminal_actors: Vec<String>,
    /// Whether each hop's progress is kept beside the outcomes (off where no outcome
    /// is recorded, as in `wasya sidecar`).
    pub keep_progress: bool,
    /// An Asya gateway that each hop's progress is reported to (`ASYA_GATEWAY_URL`).
    pub gateway_url: Option<String>,
    /// Object storage the end actors copy each ended envelope to (`--s3-bucket`).
    pub archive: Option<crate::archive::ArchiveConfig>,
    /// One `info` log line per message handled (as Asya's sidecar logs each message);
    /// otherwise such lines are at `debug`.
    pub log_each_message: bool,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            end_actors: true,
            end_names: EndNames::default(),
            terminal_actors: Vec::new(),
            keep_progress: true,
            gateway_url: None,
            archive: None,
            log_each_message: false,
        }
    }
}

/// The bounded record of what ended, which the API serves.
#[derive(Debug, Clone)]
pub struct OutcomeConfig {
    /// Submissions whose outcome is remembered.
    pub capacity: usize,
    /// Bytes of ended envelopes kept as outcomes; past it the oldest go.
    pub memory: usize,
}

impl Default for OutcomeConfig {
    fn default() -> Self {
        OutcomeConfig {
            capacity: defaults::OUTCOME_CAPACITY,
            memory: defaults::OUTCOME_MEMORY,
        }
    }
}

/// Actors deployed while the node runs: how many, how many versions, which this node
/// hosts, and the pool's shared store they are recorded in.
#[derive(Debug, Clone)]
pub struct DeploymentConfig {
    /// The pool's shared control plane (`None`: this node's data directory).
    pub store: Option<StoreSettings>,
    /// Patterns of the deployed actors this node hosts (`None`: all of them).
    pub hosts: Option<Vec<String>>,
    /// Versions of an actor kept recorded, the current one included (`--keep-versions`).
    pub keep_versions: usize,
    /// Actors a node (or a pool's store) keeps at most (`--max-actors`).
    pub max_actors: usize,
}

impl Default for DeploymentConfig {
    fn default() -> Self {
        DeploymentConfig {
            store: None,
            hosts: None,
            keep_versions: defaults::KEEP_VERSIONS,
            max_actors: defaults::MAX_ACTORS,
        }
    }
}

impl DeploymentConfig {
    /// Whether this node hosts deployed actor `name`.
    pub fn hosts(&self, name: &str) -> bool {
        self.hosts.as_ref().is_none_or(|patterns| {
            patterns
                .iter()
                .any(|pattern| host_pattern_matches(pattern, name))
        })
    }
}

/// Where a pool's control plane lives.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSettings {
    /// `postgres://user:password@host:port/database`, with libpq's `sslmode` and
    /// `sslrootcert` where wanted.
    pub url: String,
    /// The schema the pool's tables live in.
    pub schema: String,
    /// How long envelope outcomes are kept.
    pub outcome_retention: Duration,
    /// Connections this node keeps to the store, at most.
    pub connections: usize,
}

/// Whether actor `name` matches a `--hosts` pattern: a name, `prefix-*`, `*-suffix`
/// or `*`.
pub fn host_pattern_matches(pattern: &str, name: &str) -> bool {
    match (pattern.strip_suffix('*'), pattern.strip_prefix('*')) {
        (Some(""), _) => true,
        (Some(prefix), _) => name.starts_with(prefix),
        (None, Some(suffix)) => name.ends_with(suffix),
        (None, None) => pattern == name,
    }
}
