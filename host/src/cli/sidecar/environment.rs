//! What Asya's sidecar environment asks for, read into a node configuration.
//!
//! A pod that swaps Asya's sidecar for `wasya sidecar` keeps its environment, so every
//! variable Asya's sidecar reads is accounted for here, in [`ASYA_VARIABLES`]: honoured,
//! or refused at start with one line naming it, or (where it means nothing to this
//! node) named as ignored in one log line at start. Nothing is read from the process
//! environment directly: [`SidecarSettings::read`] takes a lookup, so the rules are
//! unit-tested on plain maps.

use crate::config::{
    ActorDefaults, ActorOverrides, AmqpSettings, ApiConfig, NodeConfig, RoutingConfig,
    ServedActors, TransportConfig,
};
use crate::records::EndNames;
use crate::runtime::socket::{DEFAULT_SOCKET_DIR, DEFAULT_SOCKET_NAME};
use crate::units::parse_go_duration;
use anyhow::{Context, anyhow, bail};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Asya's default runtime timeout (`ASYA_RUNTIME_TIMEOUT`).
const DEFAULT_RUNTIME_TIMEOUT: Duration = Duration::from_secs(300);
/// Asya's default wait for the runtime's ready file (`ASYA_RUNTIME_READY_TIMEOUT`).
const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(300);
/// Asya's default metrics namespace (`ASYA_METRICS_NAMESPACE`).
const DEFAULT_NAMESPACE: &str = "asya_actor";

/// How `wasya sidecar` treats one variable of Asya's sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Read and acted on, as Asya's sidecar does.
    Honoured,
    /// Meaningless here; when set, named in the start-up log line of ignored
    /// variables, with this reason.
    Ignored(&'static str),
}

/// Every variable Asya's sidecar reads, and what `wasya sidecar` does with it (the
/// README's table lists the same).
pub const ASYA_VARIABLES: &[(&str, Treatment)] = &[
    ("ASYA_ACTOR_NAME", Treatment::Honoured),
    ("ASYA_TRANSPORT", Treatment::Honoured),
    ("ASYA_RABBITMQ_URL", Treatment::Honoured),
    ("ASYA_RABBITMQ_HOST", Treatment::Honoured),
    ("ASYA_RABBITMQ_PORT", Treatment::Honoured),
    ("ASYA_RABBITMQ_USERNAME", Treatment::Honoured),
    ("ASYA_RABBITMQ_PASSWORD", Treatment::Honoured),
    ("ASYA_RABBITMQ_EXCHANGE", Treatment::Honoured),
    ("ASYA_RABBITMQ_PREFETCH", Treatment::Honoured),
    ("ASYA_SOCKET_DIR", Treatment::Honoured),
    ("ASYA_SOCKET_NAME", Treatment::Honoured),
    ("ASYA_RUNTIME_TIMEOUT", Treatment::Honoured),
    ("ASYA_RUNTIME_READY_TIMEOUT", Treatment::Honoured),
    ("ASYA_ACTOR_HAPPY_END", Treatment::Honoured),
    ("ASYA_ACTOR_ERROR_END", Treatment::Honoured),
    ("ASYA_IS_END_ACTOR", Treatment::Honoured),
    ("ASYA_GATEWAY_URL", Treatment::Honoured),
    ("ASYA_METRICS_ENABLED", Treatment::Honoured),
    ("ASYA_METRICS_ADDR", Treatment::Honoured),
    ("ASYA_METRICS_NAMESPACE", Treatment::Honoured),
    ("ASYA_LOG_LEVEL", Treatment::Honoured),
    (
        "ASYA_CUSTOM_METRICS",
        Treatment::Ignored(
            "nothing records custom metrics (Asya's sidecar registers them and never updates them); the JSON is still checked",
        ),
    ),
    (
        "ASYA_QUEUE_RETRY_MAX_ATTEMPTS",
        Treatment::Ignored("the node declares its queues itself instead of waiting for them"),
    ),
    (
        "ASYA_QUEUE_RETRY_BACKOFF",
        Treatment::Ignored("the node declares its queues itself instead of waiting for them"),
    ),
    (
        "ASYA_SQS_ENDPOINT",
        Treatment::Ignored("SQS settings: the transport is rabbitmq"),
    ),
    (
        "ASYA_AWS_REGION",
        Treatment::Ignored("SQS settings: the transport is rabbitmq"),
    ),
    (
        "ASYA_SQS_VISIBILITY_TIMEOUT",
        Treatment::Ignored("SQS settings: the transport is rabbitmq"),
    ),
    (
        "ASYA_SQS_WAIT_TIME_SECONDS",
        Treatment::Ignored("SQS settings: the transport is rabbitmq"),
    ),
];

/// How long to wait for the runtime before consuming, and where it says it is ready.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadyWait {
    /// The runtime's socket.
    pub socket: PathBuf,
    /// The file the runtime writes once its handler is loaded.
    pub ready_file: PathBuf,
    /// How long to wait before giving up (the sidecar then exits, as Asya's does).
    pub timeout: Duration,
}

/// What the sidecar environment describes.
#[derive(Debug, Clone)]
pub struct SidecarSettings {
    /// The node to run.
    pub config: NodeConfig,
    /// The wait for the runtime before the node starts consuming.
    pub ready: ReadyWait,
    /// `ASYA_METRICS_NAMESPACE`, where not Asya's default.
    pub metrics_namespace: Option<String>,
    /// The variables that are set but mean nothing here, with why.
    pub ignored: Vec<(&'static str, &'static str)>,
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

/// A boolean as Asya's sidecar reads one (`true`, `1`, `yes`, `on` and their
/// opposites, any case); anything else is refused rather than read as the default.
fn boolean(name: &str, text: &str) -> anyhow::Result<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => bail!("{name} `{text}` is not a boolean (true or false)"),
    }
}

fn duration(name: &str, text: &str) -> anyhow::Result<Duration> {
    parse_go_duration(text).map_err(|error| anyhow!("{name}: {error}"))
}

impl SidecarSettings {
    /// Reads Asya's sidecar environment through `env` (empty values read as unset, as
    /// in Asya's sidecar); an error names the variable and why.
    pub fn read(env: impl Fn(&str) -> Option<String>) -> anyhow::Result<SidecarSettings> {
        let var = |name: &str| env(name).filter(|value| !value.is_empty());
        let Some(actor) = var("ASYA_ACTOR_NAME") else {
            bail!("ASYA_ACTOR_NAME is not set: the sidecar serves one actor, named there");
        };
        match var("ASYA_TRANSPORT").as_deref() {
            None | Some("rabbitmq") => {}
            Some("sqs") => bail!("ASYA_TRANSPORT=sqs: sqs is not supported, use rabbitmq"),
            Some(other) => {
                bail!("ASYA_TRANSPORT={other}: not a transport Asya names; use rabbitmq")
            }
        }
        let socket_dir =
            PathBuf::from(var("ASYA_SOCKET_DIR").unwrap_or_else(|| DEFAULT_SOCKET_DIR.into()));
        let socket =
            socket_dir.join(var("ASYA_SOCKET_NAME").unwrap_or_else(|| DEFAULT_SOCKET_NAME.into()));
        let timeout = match var("ASYA_RUNTIME_TIMEOUT") {
            Some(text) => duration("ASYA_RUNTIME_TIMEOUT", &text)?,
            None => DEFAULT_RUNTIME_TIMEOUT,
        };
        let ready_timeout = match var("ASYA_RUNTIME_READY_TIMEOUT") {
            Some(text) => duration("ASYA_RUNTIME_READY_TIMEOUT", &text)?,
            None => DEFAULT_READY_TIMEOUT,
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
                .ok()
                .filter(|prefetch| *prefetch > 0)
                .with_context(|| {
                    format!("ASYA_RABBITMQ_PREFETCH `{text}` is not a positive number")
                })?,
            None => 1,
        };
        let metrics_enabled = match var("ASYA_METRICS_ENABLED") {
            Some(text) => boolean("ASYA_METRICS_ENABLED", &text)?,
            None => true,
        };
        let listen = listen_address(&var("ASYA_METRICS_ADDR").unwrap_or_else(|| ":8080".into()))?;
        let namespace = var("ASYA_METRICS_NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.into());
        crate::metrics::check_namespace(&namespace)
            .map_err(|error| anyhow!("ASYA_METRICS_NAMESPACE: {error}"))?;
        let is_end_actor = match var("ASYA_IS_END_ACTOR") {
            Some(text) => boolean("ASYA_IS_END_ACTOR", &text)?,
            None => false,
        };
        if let Some(text) = var("ASYA_CUSTOM_METRICS") {
            // Asya's sidecar refuses to start on malformed JSON here; so does this one.
            serde_json::from_str::<Vec<serde_json::Value>>(&text).map_err(|error| {
                anyhow!("ASYA_CUSTOM_METRICS is not a JSON array of metrics: {error}")
            })?;
        }
        // Asya sets no limit of its own; a mesh that sends larger envelopes raises this.
        let max_envelope_bytes = match var("WASYA_MAX_ENVELOPE") {
            Some(text) => crate::units::parse_bytes(&text)
                .map_err(|error| anyhow!("WASYA_MAX_ENVELOPE: {error}"))?,
            None => crate::defaults::MAX_ENVELOPE,
        };
        let ignored = ASYA_VARIABLES
            .iter()
            .filter_map(|(name, treatment)| match treatment {
                Treatment::Ignored(reason) if var(name).is_some() => Some((*name, *reason)),
                _ => None,
            })
            .collect();
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
        let config = NodeConfig {
            api: ApiConfig {
                listen: metrics_enabled.then_some(listen),
                // The sidecar is configured by its environment, not over HTTP: without
                // WASYA_TOKEN its mutating endpoints answer to a secret nobody holds.
                token: Some(var("WASYA_TOKEN").unwrap_or_else(|| uuid::Uuid::new_v4().to_string())),
                ..ApiConfig::default()
            },
            transport: TransportConfig {
                amqp: Some(AmqpSettings {
                    url,
                    exchange: var("ASYA_RABBITMQ_EXCHANGE")
                        .unwrap_or_else(|| crate::defaults::EXCHANGE.into()),
                    max_redeliveries: crate::defaults::MAX_REDELIVERIES,
                }),
                max_envelope_bytes,
                ..TransportConfig::default()
            },
            // One socket actor and nothing to compile: no wasm engine.
            engine: None,
            serve: ServedActors {
                actors_dir: None,
                only: Some(vec![actor.clone()]),
                sockets: vec![(actor.clone(), socket.clone())],
            },
            actors: ActorDefaults {
                per_actor,
                ..ActorDefaults::default()
            },
            routing: RoutingConfig {
                terminal_actors: if is_end_actor {
                    vec![actor.clone()]
                } else {
                    Vec::new()
                },
                end_actors: false,
                // No outcome is recorded here; progress goes to Asya's gateway where
                // one is set.
                keep_progress: false,
                gateway_url: var("ASYA_GATEWAY_URL"),
                end_names: EndNames {
                    happy: var("ASYA_ACTOR_HAPPY_END").unwrap_or(defaults.happy),
                    error: var("ASYA_ACTOR_ERROR_END").unwrap_or(defaults.error),
                },
                // Asya's sidecar logs each message it handles; one line each here.
                log_each_message: true,
                archive: None,
            },
            ..NodeConfig::default()
        };
        Ok(SidecarSettings {
            config,
            ready: ReadyWait {
                ready_file: socket_dir.join(crate::runtime::socket::READY_FILE),
                socket,
                timeout: ready_timeout,
            },
            metrics_namespace: (namespace != DEFAULT_NAMESPACE).then_some(namespace),
            ignored,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> anyhow::Result<SidecarSettings> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SidecarSettings::read(move |name| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        })
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        match read(pairs) {
            Ok(_) => panic!("{pairs:?} was accepted"),
            Err(error) => format!("{error:#}"),
        }
    }

    const ACTOR: (&str, &str) = ("ASYA_ACTOR_NAME", "embed");

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

    #[test]
    fn the_actor_name_is_required() {
        assert!(error(&[]).contains("ASYA_ACTOR_NAME"));
    }

    #[test]
    fn only_rabbitmq_is_a_transport() {
        assert!(read(&[ACTOR, ("ASYA_TRANSPORT", "rabbitmq")]).is_ok());
        assert_eq!(
            error(&[ACTOR, ("ASYA_TRANSPORT", "sqs")]),
            "ASYA_TRANSPORT=sqs: sqs is not supported, use rabbitmq"
        );
        assert!(error(&[ACTOR, ("ASYA_TRANSPORT", "kafka")]).contains("ASYA_TRANSPORT=kafka"));
    }

    #[test]
    fn the_broker_url_is_built_from_its_parts() {
        let settings = read(&[
            ACTOR,
            ("ASYA_RABBITMQ_HOST", "rabbit.mesh"),
            ("ASYA_RABBITMQ_PORT", "5673"),
            ("ASYA_RABBITMQ_USERNAME", "asya"),
            ("ASYA_RABBITMQ_PASSWORD", "p@ss"),
        ])
        .unwrap();
        let amqp = settings.config.transport.amqp.unwrap();
        assert_eq!(amqp.url, "amqp://asya:p%40ss@rabbit.mesh:5673/%2f");
        assert_eq!(amqp.exchange, "asya");
        let settings = read(&[
            ACTOR,
            ("ASYA_RABBITMQ_URL", "amqp://u:p@h:1/v"),
            ("ASYA_RABBITMQ_HOST", "ignored.when.the.url.is.set"),
            ("ASYA_RABBITMQ_EXCHANGE", "mesh"),
        ])
        .unwrap();
        let amqp = settings.config.transport.amqp.unwrap();
        assert_eq!(amqp.url, "amqp://u:p@h:1/v");
        assert_eq!(amqp.exchange, "mesh");
    }

    #[test]
    fn the_socket_and_the_ready_file_come_from_the_socket_dir() {
        let settings = read(&[ACTOR]).unwrap();
        assert_eq!(
            settings.config.serve.sockets,
            vec![(
                "embed".to_owned(),
                PathBuf::from("/var/run/asya/asya-runtime.sock")
            )]
        );
        assert_eq!(
            settings.ready.ready_file,
            PathBuf::from("/var/run/asya/runtime-ready")
        );
        assert_eq!(settings.ready.timeout, DEFAULT_READY_TIMEOUT);
        let settings = read(&[
            ACTOR,
            ("ASYA_SOCKET_DIR", "/tmp/rt"),
            ("ASYA_SOCKET_NAME", "gpu.sock"),
            ("ASYA_RUNTIME_READY_TIMEOUT", "90s"),
        ])
        .unwrap();
        assert_eq!(settings.ready.socket, PathBuf::from("/tmp/rt/gpu.sock"));
        assert_eq!(
            settings.ready.ready_file,
            PathBuf::from("/tmp/rt/runtime-ready")
        );
        assert_eq!(settings.ready.timeout, Duration::from_secs(90));
        assert!(
            error(&[ACTOR, ("ASYA_RUNTIME_READY_TIMEOUT", "90")])
                .contains("ASYA_RUNTIME_READY_TIMEOUT")
        );
    }

    #[test]
    fn timeout_and_prefetch_set_the_actor() {
        let settings = read(&[
            ACTOR,
            ("ASYA_RUNTIME_TIMEOUT", "2m"),
            ("ASYA_RABBITMQ_PREFETCH", "4"),
        ])
        .unwrap();
        let overrides = &settings.config.actors.per_actor["embed"];
        assert_eq!(overrides.timeout, Some(Duration::from_secs(120)));
        assert_eq!(overrides.concurrency, Some(4));
        assert!(error(&[ACTOR, ("ASYA_RABBITMQ_PREFETCH", "0")]).contains("PREFETCH"));
        assert!(error(&[ACTOR, ("ASYA_RUNTIME_TIMEOUT", "soon")]).contains("RUNTIME_TIMEOUT"));
    }

    #[test]
    fn end_names_are_renamed() {
        let settings = read(&[
            ACTOR,
            ("ASYA_ACTOR_HAPPY_END", "done"),
            ("ASYA_ACTOR_ERROR_END", "broken"),
        ])
        .unwrap();
        assert_eq!(settings.config.routing.end_names.happy, "done");
        assert_eq!(settings.config.routing.end_names.error, "broken");
    }

    #[test]
    fn metrics_can_be_turned_off_and_renamed() {
        let settings = read(&[ACTOR]).unwrap();
        assert_eq!(settings.config.api.listen, "0.0.0.0:8080".parse().ok());
        assert_eq!(settings.metrics_namespace, None);
        let settings = read(&[
            ACTOR,
            ("ASYA_METRICS_ENABLED", "false"),
            ("ASYA_METRICS_NAMESPACE", "mesh_actor"),
        ])
        .unwrap();
        assert_eq!(settings.config.api.listen, None);
        assert_eq!(settings.metrics_namespace.as_deref(), Some("mesh_actor"));
        assert!(
            error(&[ACTOR, ("ASYA_METRICS_ENABLED", "maybe")]).contains("ASYA_METRICS_ENABLED")
        );
        assert!(
            error(&[ACTOR, ("ASYA_METRICS_NAMESPACE", "9-lives")])
                .contains("ASYA_METRICS_NAMESPACE")
        );
    }

    #[test]
    fn an_end_actor_routes_nothing_on() {
        let settings = read(&[
            ("ASYA_ACTOR_NAME", "happy-end"),
            ("ASYA_IS_END_ACTOR", "true"),
        ])
        .unwrap();
        assert_eq!(
            settings.config.routing.terminal_actors,
            vec!["happy-end".to_owned()]
        );
        assert!(
            read(&[ACTOR])
                .unwrap()
                .config
                .routing
                .terminal_actors
                .is_empty()
        );
        assert!(error(&[ACTOR, ("ASYA_IS_END_ACTOR", "sometimes")]).contains("ASYA_IS_END_ACTOR"));
    }

    #[test]
    fn meaningless_variables_are_named_and_bad_custom_metrics_refused() {
        let settings = read(&[
            ACTOR,
            ("ASYA_SQS_ENDPOINT", "http://sqs"),
            ("ASYA_QUEUE_RETRY_BACKOFF", "1s"),
            (
                "ASYA_CUSTOM_METRICS",
                r#"[{"name":"tokens","type":"counter","help":"h","labels":[]}]"#,
            ),
        ])
        .unwrap();
        let names: Vec<&str> = settings.ignored.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "ASYA_CUSTOM_METRICS",
                "ASYA_QUEUE_RETRY_BACKOFF",
                "ASYA_SQS_ENDPOINT"
            ]
        );
        assert!(read(&[ACTOR]).unwrap().ignored.is_empty());
        assert!(error(&[ACTOR, ("ASYA_CUSTOM_METRICS", "{oops")]).contains("ASYA_CUSTOM_METRICS"));
    }

    #[test]
    fn every_variable_is_in_the_readme_table() {
        let readme = include_str!("../../../../README.md");
        for (name, _) in ASYA_VARIABLES {
            assert!(
                readme.contains(&format!("| `{name}` |")),
                "README's table of Asya's variables has no row for {name}"
            );
        }
    }
}
