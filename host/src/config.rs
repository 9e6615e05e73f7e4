//! The node's configuration, checked once at start.
//!
//! Every setting has a default that runs on one machine with no setup; the CLI (and
//! `WASYA_*` environment variables) fill this struct, and [`NodeConfig::validate`]
//! turns a bad value into one clear line before anything starts.

use crate::defaults;
use crate::outbound::{Grant, OutboundLimits};
use crate::records::{EndNames, validate_name};
use crate::runtime::ActorLimits;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `wasya up` needs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Where the HTTP API listens; `None` runs without it (embedding, benchmarks).
    pub listen: Option<SocketAddr>,
    /// Load `NAME.wasm` files from here; `None` loads the bundled example actors.
    pub actors_dir: Option<PathBuf>,
    /// Messages of one actor handled at once.
    pub concurrency: usize,
    /// Messages of one async actor (`wasya:actor@0.2.0`) handled at once: its calls
    /// mostly wait, and share a few instances.
    pub async_concurrency: usize,
    /// Messages one embedded queue holds (queued plus in flight).
    pub queue_capacity: usize,
    /// Limits every actor runs under, unless overridden in `per_actor`.
    pub limits: ActorLimits,
    /// Settings of single actors that differ from the node's defaults.
    pub per_actor: BTreeMap<String, ActorOverrides>,
    /// Compiled-component cache, deployments and, unless `ephemeral`, the embedded
    /// queue's store; `None` keeps nothing on disk.
    pub data_dir: Option<PathBuf>,
    /// Keep the embedded queue and outcomes in memory only, even with a data directory.
    pub ephemeral: bool,
    /// Redeliveries of one message on the embedded queue before it goes to its
    /// queue's `-dlq` (a broker's limit is in [`AmqpSettings`]).
    pub max_redeliveries: u32,
    /// How long a stop waits for queued and in-flight messages.
    pub grace_period: Duration,
    /// Use the pooling instance allocator.
    pub pooling: bool,
    /// WebAssembly instances alive at once, across all actors.
    pub max_instances: u32,
    /// Pooling: elements one table may hold (a larger guest's function table).
    pub pool_table_elements: usize,
    /// Pooling: bytes of runtime state one core instance may take.
    pub pool_instance_size: usize,
    /// Prefix of queue names (`asya-`).
    pub queue_prefix: String,
    /// Submissions whose outcome is remembered.
    pub outcome_capacity: usize,
    /// Bytes of ended envelopes kept as outcomes; past it the oldest go.
    pub outcome_memory: usize,
    /// Largest HTTP request body accepted.
    pub max_body_bytes: usize,
    /// Largest message the node puts on a queue; it accepts envelopes up to this less
    /// the room an error-end wrapper needs.
    pub max_envelope_bytes: usize,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// RabbitMQ instead of the embedded queue.
    pub amqp: Option<AmqpSettings>,
    /// Consume `happy-end` / `error-end` and record outcomes on this node.
    pub end_actors: bool,
    /// Serve only these of the available actors (`None`: all of them).
    pub serve: Option<Vec<String>>,
    /// Actors served by external runtimes: name and socket path.
    pub socket_actors: Vec<(String, PathBuf)>,
    /// Largest response frame read from an external runtime.
    pub frame_limit: usize,
    /// The names of the end actors (Asya lets a deployment rename them).
    pub end_names: EndNames,
    /// Bearer token the mutating endpoints require (`None`: none required).
    pub token: Option<String>,
    /// The pool's shared control plane (`None`: this node's data directory).
    pub store: Option<StoreSettings>,
    /// Patterns of the deployed actors this node hosts (`None`: all of them).
    pub hosts: Option<Vec<String>>,
    /// PEM files of certificate authorities actors' outbound HTTPS trusts, beside the
    /// platform's and webpki's roots.
    pub outbound_ca: Vec<PathBuf>,
    /// Whether each hop's progress is kept beside the outcomes (off where no outcome
    /// is recorded, as in `wasya sidecar`).
    pub keep_progress: bool,
    /// An Asya gateway that each hop's progress is reported to (`ASYA_GATEWAY_URL`).
    pub gateway_url: Option<String>,
    /// Asya's reporting paths take no token (`--open-reports`).
    pub open_reports: bool,
    /// Object storage the end actors copy each ended envelope to (`--s3-bucket`).
    pub archive: Option<crate::archive::ArchiveConfig>,
    /// The pipelines offered as tools (MCP and `POST /tools/call`).
    pub tools: crate::tools::Tools,
    /// Versions of an actor kept recorded, the current one included (`--keep-versions`).
    pub keep_versions: usize,
    /// Actors a node (or a pool's store) keeps at most (`--max-actors`).
    pub max_actors: usize,
    /// MCP sessions open at once (`--mcp-sessions`).
    pub mcp_sessions: usize,
    /// Host names the API answers besides loopback ones (`--public-host`).
    pub public_hosts: Vec<String>,
    /// Web origins allowed to change things through the API (`--allow-origin`).
    pub allowed_origins: Vec<String>,
    /// Actors that end routes (Asya's `ASYA_IS_END_ACTOR`): their envelopes are taken
    /// whatever their route says, their results go nowhere, and the end is reported
    /// to the gateway.
    pub terminal_actors: Vec<String>,
    /// One `info` log line per message handled (as Asya's sidecar logs each message);
    /// otherwise such lines are at `debug`.
    pub log_each_message: bool,
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

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            listen: defaults::LISTEN_TEXT.parse().ok(),
            actors_dir: None,
            concurrency: default_concurrency(),
            async_concurrency: defaults::ASYNC_CONCURRENCY,
            queue_capacity: defaults::QUEUE_CAPACITY,
            limits: ActorLimits::default(),
            per_actor: BTreeMap::new(),
            data_dir: default_data_dir(),
            ephemeral: false,
            max_redeliveries: defaults::MAX_REDELIVERIES,
            grace_period: defaults::GRACE_PERIOD,
            pooling: true,
            max_instances: defaults::MAX_INSTANCES,
            pool_table_elements: defaults::POOL_TABLE_ELEMENTS,
            pool_instance_size: defaults::POOL_INSTANCE_SIZE,
            queue_prefix: defaults::QUEUE_PREFIX.into(),
            outcome_capacity: defaults::OUTCOME_CAPACITY,
            outcome_memory: defaults::OUTCOME_MEMORY,
            max_body_bytes: defaults::MAX_BODY,
            max_envelope_bytes: defaults::MAX_ENVELOPE,
            header_read_timeout: defaults::HEADER_READ_TIMEOUT,
            amqp: None,
            end_actors: true,
            serve: None,
            socket_actors: Vec::new(),
            frame_limit: defaults::FRAME_LIMIT,
            end_names: EndNames::default(),
            token: None,
            store: None,
            hosts: None,
            outbound_ca: Vec::new(),
            keep_progress: true,
            gateway_url: None,
            archive: None,
            open_reports: false,
            tools: crate::tools::Tools::default(),
            terminal_actors: Vec::new(),
            log_each_message: false,
            public_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            mcp_sessions: defaults::MCP_SESSIONS,
            keep_versions: defaults::KEEP_VERSIONS,
            max_actors: defaults::MAX_ACTORS,
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

/// A configuration value that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl NodeConfig {
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

    /// Whether this node hosts deployed actor `name`.
    pub fn hosts(&self, name: &str) -> bool {
        self.hosts.as_ref().is_none_or(|patterns| {
            patterns
                .iter()
                .any(|pattern| host_pattern_matches(pattern, name))
        })
    }

    /// How many messages of actor `name`, of `kind`, are handled at once: its
    /// override, else one for a socket actor (Asya's runtime serves one call at a
    /// time), else the node's `--concurrency`.
    pub fn concurrency_for(&self, name: &str, kind: crate::records::ActorKind) -> usize {
        let default = if kind == crate::records::ActorKind::Socket
            || self.socket_actors.iter().any(|(socket, _)| socket == name)
        {
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

    /// Checks the values against each other and the machine.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |message: String| Err(ConfigError(message));
        if let Some(addr) = self.listen
            && !addr.ip().is_loopback()
            && self.token.is_none()
        {
            return fail(format!(
                "refusing to listen on {addr} without a token: set WASYA_TOKEN or --token-file (or listen on 127.0.0.1)"
            ));
        }
        if self
            .token
            .as_deref()
            .is_some_and(|token| token.trim().is_empty())
        {
            return fail("the token is empty".into());
        }
        if self.keep_versions == 0 || self.max_actors == 0 || self.mcp_sessions == 0 {
            return fail(
                "--keep-versions, --max-actors and --mcp-sessions must be at least 1".into(),
            );
        }
        if self.queue_capacity == 0 {
            return fail("--queue-capacity must be at least 1".into());
        }
        // An end's name is the node's own, unless the node runs no end actors and an
        // external runtime ends routes under that name (Asya's `ASYA_IS_END_ACTOR`).
        let check_name = |name: &str| match validate_name(name) {
            Err(crate::records::NameError::Reserved(_))
                if !self.end_actors && self.terminal_actors.iter().any(|t| t == name) =>
            {
                Ok(())
            }
            other => other,
        };
        for name in &self.terminal_actors {
            if !self.socket_actors.iter().any(|(socket, _)| socket == name) {
                return fail(format!(
                    "{name} ends routes but is not a socket actor: only an external runtime can take an end's place"
                ));
            }
        }
        let mut checked = vec![(String::new(), self.concurrency, self.limits.clone())];
        for name in self.per_actor.keys() {
            check_name(name).map_err(|error| ConfigError(error.to_string()))?;
            checked.push((
                format!("{name}: "),
                self.concurrency_for(name, crate::records::ActorKind::Wasm),
                self.limits_for(name),
            ));
        }
        for (actor, concurrency, limits) in checked {
            if concurrency == 0 {
                return fail(format!("{actor}--concurrency must be at least 1"));
            }
            if limits.timeout.is_zero() {
                return fail(format!("{actor}--timeout must be longer than 0"));
            }
            if limits.memory_bytes < 64 * 1024 {
                return fail(format!(
                    "{actor}--memory-limit {} is below one WebAssembly page (64KiB)",
                    limits.memory_bytes
                ));
            }
        }
        if let Some(amqp) = &self.amqp
            && !(amqp.url.starts_with("amqp://") || amqp.url.starts_with("amqps://"))
        {
            return fail("--amqp must be an amqp:// or amqps:// URL".into());
        }
        for (name, path) in &self.socket_actors {
            check_name(name).map_err(|error| ConfigError(format!("--socket-actor: {error}")))?;
            crate::runtime::socket::check_location(path)
                .map_err(|error| ConfigError(format!("--socket-actor {name}: {error}")))?;
        }
        if self.frame_limit < 1024 {
            return fail("--frame-limit must be at least 1KiB".into());
        }
        for name in self.serve.iter().flatten() {
            check_name(name).map_err(|error| ConfigError(format!("--serve: {error}")))?;
        }
        let least = 2 * crate::envelope::limits::ERROR_ROOM;
        if self.max_envelope_bytes < least {
            return fail(format!(
                "--max-envelope must be at least {} (an error-end wrapper keeps {} of it)",
                crate::units::format_bytes(least),
                crate::units::format_bytes(crate::envelope::limits::ERROR_ROOM)
            ));
        }
        if self.header_read_timeout.is_zero() {
            return fail("--header-read-timeout must be longer than 0".into());
        }
        if self.max_instances == 0 {
            return fail("--max-instances must be at least 1".into());
        }
        if self.pool_table_elements == 0 || self.pool_instance_size == 0 {
            return fail(
                "--pool-table-elements and --pool-instance-size must be more than 0".into(),
            );
        }
        if self.limits.outbound.concurrency == 0 {
            return fail("--outbound-concurrency must be at least 1".into());
        }
        if self.limits.outbound.timeout.is_zero() {
            return fail("--outbound-timeout must be longer than 0".into());
        }
        if let Some(ca) = self.outbound_ca.iter().find(|path| !path.is_file()) {
            return fail(format!("--outbound-ca {} is not a file", ca.display()));
        }
        if let Some(dir) = &self.actors_dir
            && !dir.is_dir()
        {
            return fail(format!("--actors {} is not a directory", dir.display()));
        }
        Ok(())
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_zero_concurrency() {
        let config = NodeConfig {
            concurrency: 0,
            ..NodeConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("--concurrency")
        );
    }
}
