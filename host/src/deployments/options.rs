//! Per-actor options set over the API, and what they make of an actor.
//!
//! `PUT /v1/actors/{name}` with JSON carries an [`ActorSpec`]: human units
//! (`"30s"`, `"128MiB"`) as the CLI flags take them. It is checked once, here, into
//! [`ActorOptions`], the plain values the node records and applies. A PUT replaces
//! the options: what it leaves out falls back to the node's flags. A PATCH changes
//! only what it names and keeps the rest ([`OptionsChange::Merge`], a JSON merge
//! patch: `null` takes an option back to the node's default, `env` merges by key);
//! the recorded options are written back as a spec ([`spec_of`]), patched, and
//! checked as a whole, so both go through the same checks. Options apply to
//! both kinds except where a kind cannot honour them (a memory limit or environment
//! for an external runtime, whose process the node does not own), which is a 400
//! rather than a silently ignored field.

use crate::config::ActorDefaults;
use crate::outbound::Grant;
use crate::records::{ActorKind, ActorOptions, HandlerMode};
use crate::runtime::ActorLimits;
use crate::runtime::socket::{SocketOptions, check_location};
use crate::units::{parse_bytes, parse_duration};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The most calls of one actor a node runs at once.
pub const MAX_CONCURRENCY: usize = 16_384;

/// The JSON body of `PUT /v1/actors/{name}`: registers a socket actor, or sets the
/// options of any actor. Omitted options take the node's defaults.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActorSpec {
    /// `socket` registers an external runtime; `wasm` (the default for a name already
    /// served as wasm) sets the options of an uploaded or bundled component.
    pub kind: Option<ActorKind>,
    /// Socket actors: the absolute path of the runtime's Unix socket.
    #[schema(example = "/var/run/asya/asya-runtime.sock")]
    pub socket: Option<String>,
    /// Socket actors: calls open to the runtime at once (default: `concurrency`).
    pub connections: Option<usize>,
    /// Longest a call may take, e.g. `30s`, `500ms`.
    #[schema(example = "30s")]
    pub timeout: Option<String>,
    /// Wasm actors: linear memory one instance may grow to, e.g. `128MiB`.
    #[schema(example = "128MiB")]
    pub memory_limit: Option<String>,
    /// Messages of this actor handled at once (1 to 16384).
    pub concurrency: Option<usize>,
    /// Wasm actors: environment variables granted to the guest.
    pub env: Option<BTreeMap<String, String>>,
    /// Whether the actor may rewrite routes (`envelope`) or returns payloads only.
    pub handler_mode: Option<HandlerMode>,
    /// Wasm actors: keep instances between messages (state lives on, as in a runtime
    /// process) instead of a fresh instance per message.
    pub reuse_instances: Option<bool>,
    /// Wasm actors: where the guest may send HTTP requests (`wasi:http`), as
    /// `scheme://host[:port]` patterns: `https://api.openai.com`, `http://127.0.0.1:*`,
    /// `https://*.example.com`. Omitted or empty: none (the node-wide
    /// `--allow-outbound` patterns still apply).
    #[schema(example = json!(["https://api.openai.com"]))]
    pub allowed_outbound_hosts: Option<Vec<String>>,
    /// Wasm actors: the longest one outbound request may take (within `timeout`).
    #[schema(example = "10s")]
    pub outbound_timeout: Option<String>,
    /// Wasm actors: the largest response body the guest may read, e.g. `4MiB`.
    #[schema(example = "4MiB")]
    pub outbound_body_limit: Option<String>,
    /// Wasm actors: outbound requests open at once (1 to 16384); more wait.
    pub outbound_concurrency: Option<usize>,
    /// Async wasm actors (`wasya:actor@0.2.0`): calls one instance takes at once (1 to
    /// 16384, default 256); more make another instance, up to `concurrency` in all.
    pub instance_concurrency: Option<usize>,
}

/// How a request changes an actor's options.
#[derive(Debug, Clone)]
pub enum OptionsChange {
    /// `PUT`: these options, and the node's defaults for the rest.
    Replace(ActorSpec),
    /// `PATCH`: a JSON merge patch (RFC 7396) of the spec the actor runs with.
    Merge(serde_json::Map<String, serde_json::Value>),
}

impl OptionsChange {
    /// The spec the actor is to run with, given the options it runs with now.
    pub fn resolve(self, kind: ActorKind, current: &ActorOptions) -> Result<ActorSpec, SpecError> {
        match self {
            OptionsChange::Replace(spec) => Ok(spec),
            OptionsChange::Merge(patch) => {
                let mut spec = serde_json::Value::Object(spec_of(kind, current));
                merge_patch(&mut spec, serde_json::Value::Object(patch));
                serde_json::from_value(spec).map_err(|error| SpecError(error.to_string()))
            }
        }
    }
}

/// The spec that gives `options` again, in the units the API takes.
pub fn spec_of(
    kind: ActorKind,
    options: &ActorOptions,
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let mut spec = serde_json::Map::new();
    let mut set = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            spec.insert(key.to_owned(), value);
        }
    };
    set("kind", Some(Value::from(kind.as_str())));
    set(
        "socket",
        options
            .socket
            .as_ref()
            .map(|path| Value::from(path.display().to_string())),
    );
    set("connections", options.connections.map(Value::from));
    set(
        "timeout",
        options.timeout_ms.map(|ms| Value::from(format!("{ms}ms"))),
    );
    set(
        "memory_limit",
        options
            .memory_limit_bytes
            .map(|bytes| Value::from(bytes.to_string())),
    );
    set("concurrency", options.concurrency.map(Value::from));
    set(
        "env",
        (!options.env.is_empty()).then(|| {
            Value::Object(
                options
                    .env
                    .iter()
                    .map(|(key, value)| (key.clone(), Value::from(value.as_str())))
                    .collect(),
            )
        }),
    );
    set(
        "handler_mode",
        options.handler_mode.map(|mode| Value::from(mode.as_str())),
    );
    set("reuse_instances", options.reuse_instances.map(Value::from));
    set(
        "allowed_outbound_hosts",
        (!options.allowed_outbound_hosts.is_empty())
            .then(|| Value::from(options.allowed_outbound_hosts.clone())),
    );
    set(
        "outbound_timeout",
        options
            .outbound_timeout_ms
            .map(|ms| Value::from(format!("{ms}ms"))),
    );
    set(
        "outbound_body_limit",
        options
            .outbound_body_limit_bytes
            .map(|bytes| Value::from(bytes.to_string())),
    );
    set(
        "outbound_concurrency",
        options.outbound_concurrency.map(Value::from),
    );
    set(
        "instance_concurrency",
        options.instance_concurrency.map(Value::from),
    );
    spec
}

/// Applies a JSON merge patch (RFC 7396): objects merge key by key, `null` removes a
/// key, anything else replaces.
fn merge_patch(target: &mut serde_json::Value, patch: serde_json::Value) {
    use serde_json::Value;
    let Value::Object(patch) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(&key);
            } else {
                merge_patch(target.entry(key).or_insert(Value::Null), value);
            }
        }
    }
}

/// Why a spec cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

impl ActorSpec {
    /// [`ActorSpec::check`] on the blocking pool (it looks at the file system).
    pub async fn check_off_runtime(self, kind: ActorKind) -> Result<ActorOptions, SpecError> {
        tokio::task::spawn_blocking(move || self.check(kind))
            .await
            .map_err(|error| SpecError(format!("the check did not finish: {error}")))?
    }

    /// Checks the spec for an actor of `kind` and turns it into options. Blocking: a
    /// socket's location is looked up.
    pub fn check(self, kind: ActorKind) -> Result<ActorOptions, SpecError> {
        let fail = |message: String| Err(SpecError(message));
        if let Some(requested) = self.kind
            && requested != kind
        {
            return fail(format!(
                "the actor is a {} actor; it cannot become a {} actor (remove it first)",
                kind.as_str(),
                requested.as_str()
            ));
        }
        let socket = match (kind, self.socket) {
            (ActorKind::Socket, None) => {
                return fail(
                    "a socket actor needs `socket`: the path of its runtime's socket".into(),
                );
            }
            (ActorKind::Socket, Some(path)) => {
                let path = PathBuf::from(path);
                check_location(&path).map_err(|error| SpecError(format!("socket: {error}")))?;
                Some(path)
            }
            (ActorKind::Wasm, Some(_)) => return fail("`socket` is for socket actors".into()),
            (ActorKind::Wasm, None) => None,
        };
        if kind == ActorKind::Wasm && self.connections.is_some() {
            return fail("`connections` is for socket actors".into());
        }
        if kind == ActorKind::Socket && self.memory_limit.is_some() {
            return fail("`memory_limit` is for wasm actors: an external runtime's memory is its own process's".into());
        }
        if kind == ActorKind::Socket && self.instance_concurrency.is_some() {
            return fail(
                "`instance_concurrency` is for async wasm actors: an external runtime runs its own calls"
                    .into(),
            );
        }
        if kind == ActorKind::Socket && self.reuse_instances.is_some() {
            return fail(
                "`reuse_instances` is for wasm actors: an external runtime keeps its own process"
                    .into(),
            );
        }
        if kind == ActorKind::Socket
            && (self.allowed_outbound_hosts.is_some()
                || self.outbound_timeout.is_some()
                || self.outbound_body_limit.is_some()
                || self.outbound_concurrency.is_some())
        {
            return fail(
                "outbound HTTP options are for wasm actors: an external runtime reaches the network on its own"
                    .into(),
            );
        }
        if kind == ActorKind::Socket && self.env.as_ref().is_some_and(|env| !env.is_empty()) {
            return fail(
                "`env` is for wasm actors: set an external runtime's environment where it runs"
                    .into(),
            );
        }
        let timeout = match &self.timeout {
            Some(text) => {
                let timeout =
                    parse_duration(text).map_err(|e| SpecError(format!("timeout: {e}")))?;
                if timeout.is_zero() {
                    return fail("timeout: must be more than zero".into());
                }
                Some(timeout.as_millis().try_into().unwrap_or(u64::MAX))
            }
            None => None,
        };
        let memory = match &self.memory_limit {
            Some(text) => {
                let bytes =
                    parse_bytes(text).map_err(|e| SpecError(format!("memory_limit: {e}")))?;
                if bytes < 64 * 1024 {
                    return fail("memory_limit: at least one wasm page (64KiB)".into());
                }
                Some(bytes)
            }
            None => None,
        };
        let allowed_outbound_hosts = self.allowed_outbound_hosts.unwrap_or_default();
        Grant::parse(&allowed_outbound_hosts)
            .map_err(|error| SpecError(format!("allowed_outbound_hosts: {error}")))?;
        let outbound_timeout = match &self.outbound_timeout {
            Some(text) => {
                let timeout = parse_duration(text)
                    .map_err(|e| SpecError(format!("outbound_timeout: {e}")))?;
                if timeout.is_zero() {
                    return fail("outbound_timeout: must be more than zero".into());
                }
                Some(timeout.as_millis().try_into().unwrap_or(u64::MAX))
            }
            None => None,
        };
        let outbound_body_limit = match &self.outbound_body_limit {
            Some(text) => Some(
                parse_bytes(text).map_err(|e| SpecError(format!("outbound_body_limit: {e}")))?,
            ),
            None => None,
        };
        for (field, value) in [
            ("concurrency", self.concurrency),
            ("connections", self.connections),
            ("outbound_concurrency", self.outbound_concurrency),
            ("instance_concurrency", self.instance_concurrency),
        ] {
            if let Some(value) = value
                && !(1..=MAX_CONCURRENCY).contains(&value)
            {
                return fail(format!(
                    "{field}: between 1 and {MAX_CONCURRENCY}, not {value}"
                ));
            }
        }
        let env = self.env.unwrap_or_default();
        if let Some(key) = env
            .keys()
            .find(|key| key.is_empty() || key.contains('=') || key.contains('\0'))
        {
            return fail(format!(
                "env: `{}` is not a variable name",
                crate::envelope::limits::echo(key)
            ));
        }
        Ok(ActorOptions {
            socket,
            connections: self.connections,
            timeout_ms: timeout,
            memory_limit_bytes: memory,
            concurrency: self.concurrency,
            env,
            handler_mode: self.handler_mode,
            reuse_instances: self.reuse_instances,
            allowed_outbound_hosts,
            outbound_timeout_ms: outbound_timeout,
            outbound_body_limit_bytes: outbound_body_limit,
            outbound_concurrency: self.outbound_concurrency,
            instance_concurrency: self.instance_concurrency,
        })
    }
}

/// What an actor runs with: the node's flags, then the actor's options on top.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    /// The limits its calls run under: timeout, memory, environment, outbound grant.
    pub limits: ActorLimits,
    /// How many of its messages are handled at once.
    pub concurrency: usize,
    /// The handler mode its options hold it to, if they set one.
    pub handler_mode: Option<HandlerMode>,
}

impl Effective {
    /// What actor `name` runs with, given the node's `config` and its recorded `options`.
    pub fn of(config: &ActorDefaults, name: &str, kind: ActorKind, options: &ActorOptions) -> Self {
        let mut limits = config.limits_for(name);
        if let Some(ms) = options.timeout_ms {
            limits.timeout = Duration::from_millis(ms);
        }
        if let Some(bytes) = options.memory_limit_bytes {
            limits.memory_bytes = bytes;
        }
        if let Some(reuse) = options.reuse_instances {
            limits.reuse_instances = Some(reuse);
        }
        if !options.allowed_outbound_hosts.is_empty() {
            // Checked when the options were accepted; a record edited by hand that no
            // longer parses grants nothing.
            match Grant::parse(&options.allowed_outbound_hosts) {
                Ok(grant) => limits.outbound.grant = limits.outbound.grant.with(&grant),
                Err(error) => tracing::warn!(actor = name, %error, "an outbound grant is ignored"),
            }
        }
        if let Some(ms) = options.outbound_timeout_ms {
            limits.outbound.timeout = Duration::from_millis(ms);
        }
        if let Some(bytes) = options.outbound_body_limit_bytes {
            limits.outbound.body_limit = bytes;
        }
        if let Some(count) = options.outbound_concurrency {
            limits.outbound.concurrency = count;
        }
        if let Some(count) = options.instance_concurrency {
            limits.instance_concurrency = count;
        }
        for (key, value) in &options.env {
            limits.env.retain(|(existing, _)| existing != key);
            limits.env.push((key.clone(), value.clone()));
        }
        Effective {
            limits,
            concurrency: options
                .concurrency
                .unwrap_or_else(|| config.concurrency_for(name, kind)),
            handler_mode: options.handler_mode,
        }
    }

    /// What an actor whose component targets `world` runs with: an async actor's calls
    /// share instances and mostly wait, so where nothing sets its concurrency it gets
    /// the node's async default instead of one call per core.
    pub fn in_world(
        mut self,
        config: &ActorDefaults,
        name: &str,
        options: &ActorOptions,
        world: crate::runtime::wasm::world::World,
    ) -> Self {
        if world == crate::runtime::wasm::world::World::Async && options.concurrency.is_none() {
            self.concurrency = config.async_concurrency_for(name);
        }
        self
    }

    /// How to reach a socket actor's runtime.
    pub fn socket(
        &self,
        config: &ActorDefaults,
        path: PathBuf,
        options: &ActorOptions,
    ) -> SocketOptions {
        SocketOptions {
            path,
            timeout: self.limits.timeout,
            frame_limit: config.frame_limit,
            connections: options.connections.unwrap_or(self.concurrency),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> ActorSpec {
        serde_json::from_value(json).expect("a spec")
    }

    #[test]
    fn a_socket_spec_becomes_options() {
        let dir = tempfile::tempdir().expect("a socket directory");
        let socket = dir.path().join("a.sock");
        let options = spec(serde_json::json!({
            "kind": "socket", "socket": socket, "timeout": "5s",
            "connections": 2, "handler_mode": "payload"
        }))
        .check(ActorKind::Socket)
        .expect("valid");
        assert_eq!(options.socket, Some(socket));
        assert_eq!(options.timeout_ms, Some(5000));
        assert_eq!(options.connections, Some(2));
        assert_eq!(options.handler_mode, Some(HandlerMode::Payload));
    }

    #[test]
    fn fields_a_kind_cannot_honour_are_refused() {
        let cases = [
            (
                serde_json::json!({"socket": "relative.sock"}),
                ActorKind::Socket,
                "absolute",
            ),
            (
                serde_json::json!({"socket": "/etc/passwd"}),
                ActorKind::Socket,
                "not a socket",
            ),
            (
                serde_json::json!({"socket": "/no/such/dir/a.sock"}),
                ActorKind::Socket,
                "does not exist",
            ),
            (serde_json::json!({}), ActorKind::Socket, "needs `socket`"),
            (
                serde_json::json!({"socket": "/tmp/a.sock", "memory_limit": "1MiB"}),
                ActorKind::Socket,
                "memory_limit",
            ),
            (
                serde_json::json!({"connections": 2}),
                ActorKind::Wasm,
                "connections",
            ),
            (
                serde_json::json!({"timeout": "soon"}),
                ActorKind::Wasm,
                "timeout",
            ),
            (
                serde_json::json!({"concurrency": 0}),
                ActorKind::Wasm,
                "concurrency",
            ),
            (
                serde_json::json!({"memory_limit": "1KiB"}),
                ActorKind::Wasm,
                "memory_limit",
            ),
            (
                serde_json::json!({"env": {"A=B": "c"}}),
                ActorKind::Wasm,
                "env",
            ),
            (
                serde_json::json!({"kind": "socket", "socket": "/tmp/a.sock"}),
                ActorKind::Wasm,
                "cannot become",
            ),
            (
                serde_json::json!({"allowed_outbound_hosts": ["api.openai.com"]}),
                ActorKind::Wasm,
                "allowed_outbound_hosts",
            ),
            (
                serde_json::json!({"socket": "/tmp/a.sock", "allowed_outbound_hosts": ["https://a.b"]}),
                ActorKind::Socket,
                "wasm actors",
            ),
            (
                serde_json::json!({"outbound_concurrency": 0}),
                ActorKind::Wasm,
                "outbound_concurrency",
            ),
        ];
        for (json, kind, expected) in cases {
            let error = spec(json.clone()).check(kind).expect_err("refused");
            assert!(error.0.contains(expected), "{json}: {error}");
        }
    }

    #[test]
    fn a_merge_keeps_what_it_does_not_name() {
        let current = spec(serde_json::json!({
            "concurrency": 1000,
            "timeout": "2m",
            "env": {"A": "1", "B": "2"},
            "allowed_outbound_hosts": ["https://api.example.com"],
            "memory_limit": "128MiB",
        }))
        .check(ActorKind::Wasm)
        .unwrap();
        let patch = |json: serde_json::Value| {
            let serde_json::Value::Object(patch) = json else {
                unreachable!()
            };
            OptionsChange::Merge(patch)
                .resolve(ActorKind::Wasm, &current)
                .unwrap()
                .check(ActorKind::Wasm)
                .unwrap()
        };
        let merged = patch(serde_json::json!({"allowed_outbound_hosts": ["http://127.0.0.1:*"]}));
        assert_eq!(merged.concurrency, Some(1000), "kept");
        assert_eq!(merged.timeout_ms, Some(120_000), "kept");
        assert_eq!(merged.memory_limit_bytes, Some(128 << 20), "kept");
        assert_eq!(merged.allowed_outbound_hosts, ["http://127.0.0.1:*"]);
        let merged = patch(serde_json::json!({"env": {"B": null, "C": "3"}, "timeout": null}));
        assert_eq!(
            merged.env.into_iter().collect::<Vec<_>>(),
            [
                ("A".to_owned(), "1".to_owned()),
                ("C".to_owned(), "3".to_owned())
            ]
        );
        assert_eq!(merged.timeout_ms, None, "null: back to the node's default");
        assert_eq!(merged.concurrency, Some(1000));
        let unchanged = patch(serde_json::json!({}));
        assert_eq!(unchanged, current, "written back, options read the same");
        let replaced = OptionsChange::Replace(spec(serde_json::json!({"concurrency": 2})))
            .resolve(ActorKind::Wasm, &current)
            .unwrap()
            .check(ActorKind::Wasm)
            .unwrap();
        assert_eq!(replaced.timeout_ms, None, "a replace forgets the rest");
    }

    #[test]
    fn options_override_the_node_flags() {
        let config = ActorDefaults::default();
        let options = ActorOptions {
            timeout_ms: Some(1500),
            concurrency: Some(3),
            env: BTreeMap::from([("MODEL".into(), "small".into())]),
            ..ActorOptions::default()
        };
        let effective = Effective::of(&config, "a", ActorKind::Wasm, &options);
        assert_eq!(effective.limits.timeout, Duration::from_millis(1500));
        assert_eq!(effective.concurrency, 3);
        assert_eq!(effective.limits.env, vec![("MODEL".into(), "small".into())]);
        let granted = ActorOptions {
            allowed_outbound_hosts: vec!["https://api.openai.com".into()],
            outbound_timeout_ms: Some(2000),
            ..ActorOptions::default()
        };
        let outbound = Effective::of(&config, "a", ActorKind::Wasm, &granted)
            .limits
            .outbound;
        assert_eq!(outbound.grant.patterns(), ["https://api.openai.com"]);
        assert_eq!(outbound.timeout, Duration::from_millis(2000));
        let defaults = Effective::of(&config, "a", ActorKind::Wasm, &ActorOptions::default());
        assert_eq!(defaults.limits, config.limits_for("a"));
    }
}
