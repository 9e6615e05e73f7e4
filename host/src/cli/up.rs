//! `wasya up`: run a node until SIGINT or SIGTERM, then stop gracefully.

use crate::config::{
    ActorDefaults, ActorOverrides, AmqpSettings, ApiConfig, DeploymentConfig, EngineConfig,
    NodeConfig, OutcomeConfig, RoutingConfig, ServedActors, StoreSettings, TransportConfig,
    default_concurrency, default_data_dir,
};
use crate::defaults;
use crate::node::Node;
use crate::outbound::{Grant, HostPattern, OutboundLimits};
use crate::runtime::ActorLimits;
use crate::units::{parse_bytes, parse_duration};
use clap::Args;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Flags of `wasya up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Object storage for ended envelopes.
    #[command(flatten)]
    pub s3: super::s3_args::S3Args,
    /// Address of the HTTP API.
    #[arg(long, env = "WASYA_LISTEN", default_value = defaults::LISTEN_TEXT)]
    #[arg(help_heading = "Listening and security")]
    pub listen: SocketAddr,
    /// Directory of actors (`NAME.wasm` serves as actor NAME); default: the bundled examples.
    #[arg(long, env = "WASYA_ACTORS")]
    #[arg(help_heading = "Actors")]
    pub actors: Option<PathBuf>,
    /// Messages of one actor handled at once (default: the number of cores; for an
    /// async actor, whose calls share instances and mostly wait, 1024).
    #[arg(long, env = "WASYA_CONCURRENCY")]
    #[arg(help_heading = "Actors")]
    pub concurrency: Option<usize>,
    /// Messages one embedded queue holds, queued plus in flight.
    #[arg(long, env = "WASYA_QUEUE_CAPACITY", default_value_t = defaults::QUEUE_CAPACITY)]
    #[arg(help_heading = "Queues and outcomes")]
    pub queue_capacity: usize,
    /// Time one actor call may take.
    #[arg(long, env = "WASYA_TIMEOUT", default_value = defaults::TIMEOUT_TEXT, value_parser = parse_duration)]
    #[arg(help_heading = "Limits")]
    pub timeout: Duration,
    /// Memory one actor instance may grow to.
    #[arg(long, env = "WASYA_MEMORY_LIMIT", default_value = defaults::MEMORY_LIMIT_TEXT, value_parser = parse_bytes)]
    #[arg(help_heading = "Limits")]
    pub memory_limit: usize,
    /// One actor's timeout, NAME=DURATION (repeatable): `spin=2s`.
    #[arg(long = "actor-timeout", env = "WASYA_ACTOR_TIMEOUT", value_delimiter = ',', value_parser = parse_actor_timeout)]
    #[arg(help_heading = "Limits")]
    pub actor_timeout: Vec<(String, Duration)>,
    /// One actor's memory limit, NAME=SIZE (repeatable): `hog=32MiB`.
    #[arg(long = "actor-memory-limit", env = "WASYA_ACTOR_MEMORY_LIMIT", value_delimiter = ',', value_parser = parse_actor_memory)]
    #[arg(help_heading = "Limits")]
    pub actor_memory_limit: Vec<(String, usize)>,
    /// Actors that keep their wasm instances between messages (comma-separated),
    /// instead of a fresh instance per message.
    #[arg(
        long = "reuse-instances",
        env = "WASYA_REUSE_INSTANCES",
        value_delimiter = ','
    )]
    #[arg(help_heading = "Actors")]
    pub reuse_instances: Vec<String>,
    /// One actor's concurrency, NAME=N (repeatable): `upper=8`.
    #[arg(long = "actor-concurrency", env = "WASYA_ACTOR_CONCURRENCY", value_delimiter = ',', value_parser = parse_actor_concurrency)]
    #[arg(help_heading = "Actors")]
    pub actor_concurrency: Vec<(String, usize)>,
    /// An environment variable granted to the actors, KEY=VALUE (repeatable).
    #[arg(long = "actor-env", env = "WASYA_ACTOR_ENV", value_delimiter = ',', value_parser = parse_key_value)]
    #[arg(help_heading = "Actors")]
    pub actor_env: Vec<(String, String)>,
    /// Pipelines offered as tools over MCP (`/mcp`) and `POST /tools/call`: a YAML
    /// file in Asya gateway's `routes.yaml` format (name, description, parameters,
    /// route per tool).
    #[arg(long, env = "WASYA_TOOLS")]
    #[arg(help_heading = "Listening and security")]
    pub tools: Option<PathBuf>,
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
    /// How long a stop waits for queued and in-flight messages.
    #[arg(long, env = "WASYA_GRACE_PERIOD", default_value = defaults::GRACE_PERIOD_TEXT, value_parser = parse_duration)]
    #[arg(help_heading = "Limits")]
    pub grace_period: Duration,
    /// Allocate instances on demand instead of from the pooling allocator.
    #[arg(long, env = "WASYA_NO_POOLING")]
    #[arg(help_heading = "Limits")]
    pub no_pooling: bool,
    /// WebAssembly instances alive at once, across all actors.
    #[arg(long, env = "WASYA_MAX_INSTANCES", default_value_t = defaults::MAX_INSTANCES)]
    #[arg(help_heading = "Limits")]
    pub max_instances: u32,
    /// Pooling: elements one table of an instance may hold (raise it for a guest
    /// whose function table is larger).
    #[arg(long, env = "WASYA_POOL_TABLE_ELEMENTS", default_value_t = defaults::POOL_TABLE_ELEMENTS)]
    #[arg(help_heading = "Limits")]
    pub pool_table_elements: usize,
    /// Pooling: runtime state one core instance may take (raise it for a guest with
    /// very many functions or globals).
    #[arg(long, env = "WASYA_POOL_INSTANCE_SIZE", default_value = defaults::POOL_INSTANCE_SIZE_TEXT, value_parser = parse_bytes)]
    #[arg(help_heading = "Limits")]
    pub pool_instance_size: usize,
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
    /// Serve only these of the available wasm actors (comma-separated; `none` for
    /// none). Socket actors are always served.
    #[arg(long, env = "WASYA_SERVE", value_delimiter = ',')]
    #[arg(help_heading = "Actors")]
    pub serve: Option<Vec<String>>,
    /// Leave `happy-end` / `error-end` to other nodes: record no outcomes here.
    #[arg(long, env = "WASYA_NO_END_ACTORS")]
    #[arg(help_heading = "Queues and outcomes")]
    pub no_end_actors: bool,
    /// Asya's reporting paths (`POST /envelopes`, `/envelopes/{id}/progress`,
    /// `/envelopes/{id}/final`) take no token: Asya's sidecars send none. For a node
    /// whose API only the mesh reaches; web pages stay refused.
    #[arg(long, env = "WASYA_OPEN_REPORTS")]
    #[arg(help_heading = "Listening and security")]
    pub open_reports: bool,
    /// Keep no progress events (`/v1/envelopes/{id}/events` then streams only the
    /// outcome): the most hops per second, for pipelines nobody follows.
    #[arg(long, env = "WASYA_NO_PROGRESS")]
    #[arg(help_heading = "Queues and outcomes")]
    pub no_progress: bool,
    /// An actor served by an external runtime on a Unix socket, NAME=PATH (repeatable).
    #[arg(long = "socket-actor", env = "WASYA_SOCKET_ACTORS", value_delimiter = ',', value_parser = parse_key_value)]
    #[arg(help_heading = "Actors")]
    pub socket_actors: Vec<(String, String)>,
    /// Largest response frame read from an external runtime.
    #[arg(long, env = "WASYA_FRAME_LIMIT", default_value = defaults::FRAME_LIMIT_TEXT, value_parser = parse_bytes)]
    #[arg(help_heading = "Actors")]
    pub frame_limit: usize,
    /// A file holding the bearer token mutating endpoints require (else WASYA_TOKEN).
    #[arg(long, env = "WASYA_TOKEN_FILE")]
    #[arg(help_heading = "Listening and security")]
    pub token_file: Option<PathBuf>,
    /// A host name the node answers to besides loopback names (a node behind an
    /// ingress: `wasya.example.com`; repeatable). A request with another `Host` is
    /// refused (DNS rebinding).
    #[arg(long = "public-host", env = "WASYA_PUBLIC_HOST", value_delimiter = ',')]
    #[arg(help_heading = "Listening and security")]
    pub public_hosts: Vec<String>,
    /// A web origin allowed to change things through the API (`https://ops.example.com`;
    /// repeatable). Other sites' pages are refused.
    #[arg(
        long = "allow-origin",
        env = "WASYA_ALLOW_ORIGIN",
        value_delimiter = ','
    )]
    #[arg(help_heading = "Listening and security")]
    pub allowed_origins: Vec<String>,
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
    /// Largest HTTP request body.
    #[arg(long, env = "WASYA_MAX_BODY", default_value = defaults::MAX_BODY_TEXT, value_parser = parse_bytes)]
    #[arg(help_heading = "Listening and security")]
    pub max_body: usize,
    /// Largest message the node puts on a queue; envelopes up to this less 64KiB (kept
    /// for an error-end wrapper) are accepted.
    #[arg(long, env = "WASYA_MAX_ENVELOPE", default_value = defaults::MAX_ENVELOPE_TEXT, value_parser = parse_bytes)]
    #[arg(help_heading = "Limits")]
    pub max_envelope: usize,
    /// Versions of an actor kept recorded (the current one included); older ones and
    /// their components are deleted.
    #[arg(long, env = "WASYA_KEEP_VERSIONS", default_value_t = defaults::KEEP_VERSIONS)]
    #[arg(help_heading = "Limits")]
    pub keep_versions: usize,
    /// Actors the node keeps at most; a new one past it is refused (409).
    #[arg(long, env = "WASYA_MAX_ACTORS", default_value_t = defaults::MAX_ACTORS)]
    #[arg(help_heading = "Limits")]
    pub max_actors: usize,
    /// MCP sessions open at once; past it `initialize` answers 503.
    #[arg(long, env = "WASYA_MCP_SESSIONS", default_value_t = defaults::MCP_SESSIONS)]
    #[arg(help_heading = "Limits")]
    pub mcp_sessions: usize,
    /// Submissions whose outcome the node keeps (oldest go first).
    #[arg(long, env = "WASYA_OUTCOME_CAPACITY", default_value_t = defaults::OUTCOME_CAPACITY)]
    #[arg(help_heading = "Queues and outcomes")]
    pub outcome_capacity: usize,
    /// Bytes of ended envelopes the node keeps as outcomes (oldest go first).
    #[arg(long, env = "WASYA_OUTCOME_MEMORY", default_value = defaults::OUTCOME_MEMORY_TEXT, value_parser = parse_bytes)]
    #[arg(help_heading = "Queues and outcomes")]
    pub outcome_memory: usize,
    /// A host every wasm actor may send HTTP requests to, `scheme://host[:port]`
    /// (repeatable; `*` wildcards: `http://127.0.0.1:*`, `https://*.example.com`).
    /// Without one, actors reach no host but those granted to them.
    #[arg(long = "allow-outbound", env = "WASYA_ALLOW_OUTBOUND", value_delimiter = ',', value_parser = parse_pattern)]
    #[arg(help_heading = "Outbound HTTP")]
    pub allow_outbound: Vec<HostPattern>,
    /// A host one actor may send HTTP requests to, NAME=PATTERN (repeatable).
    #[arg(long = "actor-allow-outbound", env = "WASYA_ACTOR_ALLOW_OUTBOUND", value_delimiter = ',', value_parser = parse_actor_pattern)]
    #[arg(help_heading = "Outbound HTTP")]
    pub actor_allow_outbound: Vec<(String, HostPattern)>,
    /// The longest one outbound HTTP request of an actor may take (within its timeout).
    #[arg(long, env = "WASYA_OUTBOUND_TIMEOUT", default_value = defaults::OUTBOUND_TIMEOUT_TEXT, value_parser = parse_duration)]
    #[arg(help_heading = "Outbound HTTP")]
    pub outbound_timeout: Duration,
    /// The largest response body an actor may read from one outbound request.
    #[arg(long, env = "WASYA_OUTBOUND_BODY_LIMIT", default_value = defaults::OUTBOUND_BODY_LIMIT_TEXT, value_parser = parse_bytes)]
    #[arg(help_heading = "Outbound HTTP")]
    pub outbound_body_limit: usize,
    /// Outbound HTTP requests one actor may have open at once; more wait.
    #[arg(long, env = "WASYA_OUTBOUND_CONCURRENCY", default_value_t = defaults::OUTBOUND_CONCURRENCY)]
    #[arg(help_heading = "Outbound HTTP")]
    pub outbound_concurrency: usize,
    /// A PEM file of certificate authorities outbound HTTPS trusts, beside the
    /// platform's (SSL_CERT_FILE) and webpki's roots (repeatable).
    #[arg(long = "outbound-ca", env = "WASYA_OUTBOUND_CA", value_delimiter = ',')]
    #[arg(help_heading = "Outbound HTTP")]
    pub outbound_ca: Vec<PathBuf>,
    /// How long a client may take to send a request's headers.
    #[arg(long, env = "WASYA_HEADER_READ_TIMEOUT", default_value = defaults::HEADER_READ_TIMEOUT_TEXT, value_parser = parse_duration)]
    #[arg(help_heading = "Listening and security")]
    pub header_read_timeout: Duration,
}

pub(crate) fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

fn parse_actor_timeout(text: &str) -> Result<(String, Duration), String> {
    let (name, value) = parse_key_value(text)?;
    Ok((name, parse_duration(&value)?))
}

fn parse_actor_memory(text: &str) -> Result<(String, usize), String> {
    let (name, value) = parse_key_value(text)?;
    Ok((name, parse_bytes(&value)?))
}

fn parse_actor_concurrency(text: &str) -> Result<(String, usize), String> {
    let (name, value) = parse_key_value(text)?;
    let count = value
        .parse()
        .map_err(|_| format!("`{value}` is not a number"))?;
    Ok((name, count))
}

fn parse_pattern(text: &str) -> Result<HostPattern, String> {
    HostPattern::parse(text).map_err(|error| error.to_string())
}

fn parse_actor_pattern(text: &str) -> Result<(String, HostPattern), String> {
    let (name, value) = parse_key_value(text)?;
    Ok((name, parse_pattern(&value)?))
}

impl UpArgs {
    fn per_actor(&self) -> BTreeMap<String, ActorOverrides> {
        let mut per_actor: BTreeMap<String, ActorOverrides> = BTreeMap::new();
        for (name, timeout) in &self.actor_timeout {
            per_actor.entry(name.clone()).or_default().timeout = Some(*timeout);
        }
        for (name, bytes) in &self.actor_memory_limit {
            per_actor.entry(name.clone()).or_default().memory_bytes = Some(*bytes);
        }
        for (name, count) in &self.actor_concurrency {
            per_actor.entry(name.clone()).or_default().concurrency = Some(*count);
        }
        let mut grants: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (name, pattern) in &self.actor_allow_outbound {
            grants.entry(name).or_default().push(pattern.to_string());
        }
        for (name, patterns) in grants {
            // Each pattern parsed as a flag; together they parse again.
            per_actor.entry(name.to_owned()).or_default().outbound_grant =
                Grant::parse(&patterns).ok();
        }
        for name in self.reuse_instances.iter().filter(|name| !name.is_empty()) {
            per_actor.entry(name.clone()).or_default().reuse_instances = Some(true);
        }
        per_actor
    }

    /// The node configuration these flags describe.
    pub fn into_config(&self) -> anyhow::Result<NodeConfig> {
        let token = match &self.token_file {
            Some(file) => {
                let token = std::fs::read_to_string(file)
                    .map_err(|error| anyhow::anyhow!("--token-file {}: {error}", file.display()))?
                    .trim()
                    .to_owned();
                if token.is_empty() {
                    anyhow::bail!(
                        "--token-file {} is empty: put the token in it, or leave the flag out to run without one",
                        file.display()
                    );
                }
                Some(token)
            }
            None => token_from_env(),
        };
        let tools = match &self.tools {
            Some(path) => crate::tools::ToolsFile::load(path)?,
            None => crate::tools::Tools::default(),
        };
        let limits = ActorLimits {
            timeout: self.timeout,
            memory_bytes: self.memory_limit,
            env: self.actor_env.clone(),
            reuse_instances: None,
            outbound: OutboundLimits {
                grant: Grant::parse(
                    &self
                        .allow_outbound
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>(),
                )?,
                timeout: self.outbound_timeout,
                body_limit: self.outbound_body_limit,
                concurrency: self.outbound_concurrency,
            },
            instance_concurrency: crate::defaults::INSTANCE_CONCURRENCY,
        };
        let actors = ActorDefaults {
            per_actor: self.per_actor(),
            concurrency: self.concurrency.unwrap_or_else(default_concurrency),
            async_concurrency: self.concurrency.unwrap_or(defaults::ASYNC_CONCURRENCY),
            limits,
            frame_limit: self.frame_limit,
        };
        Ok(NodeConfig {
            data_dir: self.data_dir.clone().or_else(default_data_dir),
            ephemeral: self.ephemeral,
            grace_period: self.grace_period,
            api: ApiConfig {
                listen: Some(self.listen),
                max_body_bytes: self.max_body,
                header_read_timeout: self.header_read_timeout,
                token,
                public_hosts: self.public_hosts.clone(),
                allowed_origins: self.allowed_origins.clone(),
                tools,
                mcp_sessions: self.mcp_sessions,
                open_reports: self.open_reports,
            },
            transport: self.transport(),
            engine: Some(EngineConfig {
                pooling: !self.no_pooling,
                max_instances: self.max_instances,
                pool_table_elements: self.pool_table_elements,
                pool_instance_size: self.pool_instance_size,
                outbound_ca: self.outbound_ca.clone(),
            }),
            serve: self.served(),
            actors,
            routing: RoutingConfig {
                end_actors: !self.no_end_actors,
                keep_progress: !self.no_progress,
                archive: self.s3.clone().config(),
                ..RoutingConfig::default()
            },
            outcomes: OutcomeConfig {
                capacity: self.outcome_capacity,
                memory: self.outcome_memory,
            },
            deployments: DeploymentConfig {
                store: self.store.clone().map(|url| StoreSettings {
                    url,
                    schema: self.store_schema.clone(),
                    outcome_retention: self.outcome_retention,
                    connections: usize::from(self.store_connections),
                }),
                hosts: self.hosts.clone(),
                keep_versions: self.keep_versions,
                max_actors: self.max_actors,
            },
        })
    }

    /// The transport section: RabbitMQ where `--amqp` (or Asya's
    /// `ASYA_RABBITMQ_URL`) names one, else the embedded queue.
    fn transport(&self) -> TransportConfig {
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

    /// The actors served from the start.
    fn served(&self) -> ServedActors {
        ServedActors {
            actors_dir: self.actors.clone(),
            only: self.serve.clone().map(|names| {
                names
                    .into_iter()
                    .filter(|name| name != "none" && !name.is_empty())
                    .collect()
            }),
            sockets: self
                .socket_actors
                .iter()
                .map(|(name, path)| (name.clone(), PathBuf::from(path)))
                .collect(),
        }
    }
}

/// `WASYA_TOKEN`, where it holds one: set but empty (`WASYA_TOKEN=`, as a template
/// or a chart leaves it) reads as unset.
fn token_from_env() -> Option<String> {
    let token = std::env::var("WASYA_TOKEN").ok()?;
    if token.trim().is_empty() {
        tracing::info!("WASYA_TOKEN is set but empty: running without a token");
        return None;
    }
    Some(token)
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
