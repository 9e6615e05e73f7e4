//! The flags of the actors: which are served, the limits every actor runs under,
//! what single actors set differently, and what they may reach over HTTP.

use crate::config::{ActorDefaults, ActorOverrides, ServedActors, default_concurrency};
use crate::defaults;
use crate::outbound::{Grant, HostPattern, OutboundLimits};
use crate::runtime::ActorLimits;
use crate::units::{parse_bytes, parse_duration};
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Flags of the actors.
#[derive(Debug, Clone, Args)]
pub struct ActorArgs {
    /// Directory of actors (`NAME.wasm` serves as actor NAME); default: the bundled examples.
    #[arg(long, env = "WASYA_ACTORS")]
    #[arg(help_heading = "Actors")]
    pub actors: Option<PathBuf>,
    /// Messages of one actor handled at once (default: the number of cores; for an
    /// async actor, whose calls share instances and mostly wait, 1024).
    #[arg(long, env = "WASYA_CONCURRENCY")]
    #[arg(help_heading = "Actors")]
    pub concurrency: Option<usize>,
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
    /// Serve only these of the available wasm actors (comma-separated; `none` for
    /// none). Socket actors are always served.
    #[arg(long, env = "WASYA_SERVE", value_delimiter = ',')]
    #[arg(help_heading = "Actors")]
    pub serve: Option<Vec<String>>,
    /// An actor served by an external runtime on a Unix socket, NAME=PATH (repeatable).
    #[arg(long = "socket-actor", env = "WASYA_SOCKET_ACTORS", value_delimiter = ',', value_parser = parse_key_value)]
    #[arg(help_heading = "Actors")]
    pub socket_actors: Vec<(String, String)>,
    /// Largest response frame read from an external runtime.
    #[arg(long, env = "WASYA_FRAME_LIMIT", default_value = defaults::FRAME_LIMIT_TEXT, value_parser = parse_bytes)]
    #[arg(help_heading = "Actors")]
    pub frame_limit: usize,
}

/// Flags of the actors' outbound HTTP.
#[derive(Debug, Clone, Args)]
pub struct OutboundArgs {
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
}

impl ActorArgs {
    /// The actors served from the start.
    pub fn served(&self) -> ServedActors {
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

    /// The defaults every actor runs with, and the overrides of single ones.
    pub fn defaults(&self, outbound: &OutboundArgs) -> anyhow::Result<ActorDefaults> {
        let limits = ActorLimits {
            timeout: self.timeout,
            memory_bytes: self.memory_limit,
            env: self.actor_env.clone(),
            reuse_instances: None,
            outbound: OutboundLimits {
                grant: Grant::parse(
                    &outbound
                        .allow_outbound
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>(),
                )?,
                timeout: outbound.outbound_timeout,
                body_limit: outbound.outbound_body_limit,
                concurrency: outbound.outbound_concurrency,
            },
            instance_concurrency: defaults::INSTANCE_CONCURRENCY,
        };
        Ok(ActorDefaults {
            per_actor: self.per_actor(outbound),
            concurrency: self.concurrency.unwrap_or_else(default_concurrency),
            async_concurrency: self.concurrency.unwrap_or(defaults::ASYNC_CONCURRENCY),
            limits,
            frame_limit: self.frame_limit,
        })
    }

    fn per_actor(&self, outbound: &OutboundArgs) -> BTreeMap<String, ActorOverrides> {
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
        for (name, pattern) in &outbound.actor_allow_outbound {
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
