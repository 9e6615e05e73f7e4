//! `wasya sidecar`: a drop-in for Asya's sidecar container.
//!
//! It reads only Asya's sidecar environment and serves the one actor of the pod through
//! its runtime container's socket, on RabbitMQ, so a pod swaps the sidecar image and
//! nothing else. It records no outcomes (in Asya the end actors run elsewhere) and
//! serves `/healthz`, `/readyz` and the API on `ASYA_METRICS_ADDR`.

use crate::config::{ActorOverrides, AmqpSettings, NodeConfig};
use crate::records::EndNames;
use crate::runtime::socket::{DEFAULT_SOCKET_DIR, DEFAULT_SOCKET_NAME};
use crate::units::parse_go_duration;
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Asya's default runtime timeout.
const DEFAULT_RUNTIME_TIMEOUT: Duration = Duration::from_secs(300);

/// Reads one variable of the environment, empty meaning unset.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// Percent-encodes a URL user or password.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `:8080` (Go's form) or `host:port`.
fn listen_address(text: &str) -> anyhow::Result<SocketAddr> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    full.parse()
        .with_context(|| format!("ASYA_METRICS_ADDR `{text}` is not an address like :8080"))
}

/// The node configuration Asya's sidecar environment describes.
pub fn config_from_env() -> anyhow::Result<NodeConfig> {
    let Some(actor) = var("ASYA_ACTOR_NAME") else {
        bail!("ASYA_ACTOR_NAME is not set: the sidecar serves one actor, named there");
    };
    let socket = PathBuf::from(var("ASYA_SOCKET_DIR").unwrap_or_else(|| DEFAULT_SOCKET_DIR.into()))
        .join(var("ASYA_SOCKET_NAME").unwrap_or_else(|| DEFAULT_SOCKET_NAME.into()));
    let timeout = match var("ASYA_RUNTIME_TIMEOUT") {
        Some(text) => parse_go_duration(&text)
            .map_err(|error| anyhow::anyhow!("ASYA_RUNTIME_TIMEOUT: {error}"))?,
        None => DEFAULT_RUNTIME_TIMEOUT,
    };
    let url = match var("ASYA_RABBITMQ_URL") {
        Some(url) => url,
        None => format!(
            "amqp://{}:{}@{}:{}/%2f",
            encode(&var("ASYA_RABBITMQ_USERNAME").unwrap_or_else(|| "guest".into())),
            encode(&var("ASYA_RABBITMQ_PASSWORD").unwrap_or_else(|| "guest".into())),
            var("ASYA_RABBITMQ_HOST").unwrap_or_else(|| "localhost".into()),
            var("ASYA_RABBITMQ_PORT").unwrap_or_else(|| "5672".into()),
        ),
    };
    let prefetch = match var("ASYA_RABBITMQ_PREFETCH") {
        Some(text) => text
            .parse::<usize>()
            .with_context(|| format!("ASYA_RABBITMQ_PREFETCH `{text}` is not a number"))?,
        None => 1,
    };
    let listen = listen_address(&var("ASYA_METRICS_ADDR").unwrap_or_else(|| ":8080".into()))?;
    // Asya sets no limit of its own; a mesh that sends larger envelopes raises this.
    let max_envelope_bytes = match var("WASYA_MAX_ENVELOPE") {
        Some(text) => crate::units::parse_bytes(&text)
            .map_err(|error| anyhow::anyhow!("WASYA_MAX_ENVELOPE: {error}"))?,
        None => crate::defaults::MAX_ENVELOPE,
    };
    let mut per_actor = BTreeMap::new();
    per_actor.insert(
        actor.clone(),
        ActorOverrides {
            timeout: Some(timeout),
            memory_bytes: None,
            concurrency: Some(prefetch),
            reuse_instances: None,
            outbound_grant: None,
        },
    );
    let defaults = EndNames::default();
    Ok(NodeConfig {
        listen: Some(listen),
        amqp: Some(AmqpSettings {
            url,
            exchange: var("ASYA_RABBITMQ_EXCHANGE")
                .unwrap_or_else(|| crate::defaults::EXCHANGE.into()),
            max_redeliveries: crate::defaults::MAX_REDELIVERIES,
        }),
        serve: Some(vec![actor.clone()]),
        socket_actors: vec![(actor, socket)],
        end_actors: false,
        // No outcome is recorded here; progress goes to Asya's gateway where one is set.
        keep_progress: false,
        gateway_url: var("ASYA_GATEWAY_URL"),
        end_names: EndNames {
            happy: var("ASYA_ACTOR_HAPPY_END").unwrap_or(defaults.happy),
            error: var("ASYA_ACTOR_ERROR_END").unwrap_or(defaults.error),
        },
        per_actor,
        max_envelope_bytes,
        // The sidecar is configured by its environment, not over HTTP: without
        // WASYA_TOKEN its mutating endpoints answer to a secret nobody holds.
        token: Some(var("WASYA_TOKEN").unwrap_or_else(|| uuid::Uuid::new_v4().to_string())),
        ..NodeConfig::default()
    })
}

/// Runs the sidecar until a stop signal.
pub async fn run() -> anyhow::Result<()> {
    super::up::run_config(config_from_env()?).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_credentials() {
        assert_eq!(encode("p@ss:w/rd"), "p%40ss%3Aw%2Frd");
        assert_eq!(encode("guest"), "guest");
    }

    #[test]
    fn reads_go_listen_addresses() {
        assert_eq!(
            listen_address(":9090").unwrap(),
            "0.0.0.0:9090".parse().unwrap()
        );
        assert_eq!(
            listen_address("127.0.0.1:1").unwrap(),
            "127.0.0.1:1".parse().unwrap()
        );
        assert!(listen_address("nine").is_err());
    }
}
