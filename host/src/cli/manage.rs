//! `wasya deploy`, `wasya configure`, `wasya actors`, `wasya actor`, `wasya rm`:
//! managing a node's actors over its HTTP API. Errors are one line, with a non-zero
//! exit code. A large upload streams in chunks behind a progress bar on a terminal.

use super::send::answer;
use anyhow::Context;
use clap::Args;

/// Where the node is.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node's API.
    #[arg(long, env = "WASYA_NODE", default_value = "http://127.0.0.1:8080")]
    pub node: String,
    /// The node's bearer token.
    #[arg(long, env = "WASYA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A PEM file of the CA an `https://` node's certificate is signed by, beside the
    /// platform's roots (which honour SSL_CERT_FILE).
    #[arg(long, env = "WASYA_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

/// Flags of `wasya actors`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The node to talk to: its address, token and CA.
    #[command(flatten)]
    pub node: NodeArgs,
    /// How to print the list: a table, or the API's JSON.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: Output,
}

/// How a listing is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// A table, one actor per line.
    Table,
    /// The API's JSON.
    Json,
}

impl NodeArgs {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.node.trim_end_matches('/'))
    }

    /// A request to the node, with the token when there is one.
    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        let client = super::client::client(self.ca_file.as_deref(), None)?;
        let request = client.request(method, self.url(path));
        Ok(match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        })
    }
}

/// Flags of `wasya deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The node to talk to: its address, token and CA.
    #[command(flatten)]
    pub node: NodeArgs,
    /// The actor's name.
    pub name: String,
    /// The component (`.wasm`, built for wasm32-wasip2).
    pub file: std::path::PathBuf,
}

/// Flags of `wasya configure`: the options to change (the others stay as they are;
/// `--reset` replaces them all), or a socket actor to register.
#[derive(Debug, Args)]
pub struct ConfigureArgs {
    /// The node to talk to: its address, token and CA.
    #[command(flatten)]
    pub node: NodeArgs,
    /// The actor's name.
    pub name: String,
    /// Register a socket actor: the absolute path of its runtime's socket.
    #[arg(long)]
    pub socket: Option<String>,
    /// Socket actors: calls open to the runtime at once.
    #[arg(long)]
    pub connections: Option<usize>,
    /// Longest a call may take (`30s`, `500ms`).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Wasm actors: memory one instance may grow to (`128MiB`).
    #[arg(long)]
    pub memory_limit: Option<String>,
    /// Messages handled at once.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Wasm actors: an environment variable granted to the guest, KEY=VALUE (repeatable).
    #[arg(long = "env", value_parser = crate::cli::up::parse_key_value)]
    pub env: Vec<(String, String)>,
    /// `payload` (results are payloads only) or `envelope` (the actor may change routes).
    #[arg(long)]
    pub handler_mode: Option<String>,
    /// Wasm actors: keep instances between messages (`true`), or a fresh one per
    /// message (`false`, the default).
    #[arg(long)]
    pub reuse_instances: Option<bool>,
    /// Wasm actors: a host the guest may send HTTP requests to, `scheme://host[:port]`
    /// (repeatable; `*` wildcards: `http://127.0.0.1:*`, `https://*.example.com`).
    /// The list replaces the actor's earlier grant.
    #[arg(long = "allow-outbound", value_delimiter = ',')]
    pub allow_outbound: Vec<String>,
    /// Wasm actors: the longest one outbound request may take (`10s`).
    #[arg(long)]
    pub outbound_timeout: Option<String>,
    /// Wasm actors: the largest response body the guest may read (`4MiB`).
    #[arg(long)]
    pub outbound_body_limit: Option<String>,
    /// Wasm actors: outbound requests open at once.
    #[arg(long)]
    pub outbound_concurrency: Option<usize>,
    /// Async wasm actors: calls one instance takes at once (default 256).
    #[arg(long)]
    pub instance_concurrency: Option<usize>,
    /// Take an option back to the node's default (its API name: `timeout`,
    /// `concurrency`, `allowed_outbound_hosts`, `env`, ...; repeatable).
    #[arg(long, value_delimiter = ',')]
    pub unset: Vec<String>,
    /// Replace the actor's options with those given: every option not given goes
    /// back to the node's default.
    #[arg(long, conflicts_with = "unset")]
    pub reset: bool,
}

/// Flags of `wasya actor` and `wasya rm`.
#[derive(Debug, Args)]
pub struct ActorArgs {
    /// The node to talk to: its address, token and CA.
    #[command(flatten)]
    pub node: NodeArgs,
    /// The actor's name.
    pub name: String,
}

/// Uploads below this size go in one piece, without a progress bar.
const PROGRESS_FROM: usize = 1 << 20;
/// The piece of an upload between two progress updates.
const UPLOAD_CHUNK: usize = 256 * 1024;

/// `bytes` as a request body; on a terminal, with a progress bar for large uploads.
fn upload_body(bytes: Vec<u8>) -> reqwest::Body {
    let size = bytes.len();
    if size < PROGRESS_FROM {
        return reqwest::Body::from(bytes);
    }
    let bar = indicatif::ProgressBar::new(size as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "uploading {bar:40} {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let bytes = bytes::Bytes::from(bytes);
    let chunks = (0..size).step_by(UPLOAD_CHUNK).map(move |start| {
        let chunk = bytes.slice(start..(start + UPLOAD_CHUNK).min(size));
        bar.inc(chunk.len() as u64);
        if bar.position() >= size as u64 {
            bar.finish_and_clear();
        }
        Ok::<_, std::io::Error>(chunk)
    });
    reqwest::Body::wrap_stream(futures::stream::iter(chunks))
}

/// Uploads a component; prints the name, version and digest.
pub async fn deploy(args: DeployArgs) -> anyhow::Result<()> {
    let bytes = tokio::fs::read(&args.file)
        .await
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let size = bytes.len();
    let response = args
        .node
        .request(reqwest::Method::PUT, &format!("/v1/actors/{}", args.name))?
        .header("content-type", "application/wasm")
        .header("content-length", size)
        .body(upload_body(bytes))
        .send()
        .await
        .map_err(|error| super::send::unreachable(&args.node.node, &error))?;
    let deployed = answer(response).await?;
    super::send::print_out(&format!(
        "{} v{} {} ({size} bytes)",
        deployed["name"].as_str().unwrap_or(&args.name),
        deployed["version"],
        deployed["digest"].as_str().unwrap_or("")
    ))
}

/// Changes an actor's options, keeping those not named (or with `--reset`, replacing
/// them), or registers a socket actor; prints the actor.
pub async fn configure(args: ConfigureArgs) -> anyhow::Result<()> {
    let mut spec = serde_json::Map::new();
    let mut put = |key: &str, value: serde_json::Value| {
        spec.insert(key.to_owned(), value);
    };
    if let Some(socket) = &args.socket {
        put("kind", "socket".into());
        put("socket", socket.as_str().into());
    }
    if let Some(connections) = args.connections {
        put("connections", connections.into());
    }
    if let Some(timeout) = &args.timeout {
        put("timeout", timeout.as_str().into());
    }
    if let Some(memory) = &args.memory_limit {
        put("memory_limit", memory.as_str().into());
    }
    if let Some(concurrency) = args.concurrency {
        put("concurrency", concurrency.into());
    }
    if !args.env.is_empty() {
        let env: serde_json::Map<String, serde_json::Value> = args
            .env
            .iter()
            .map(|(key, value)| (key.clone(), value.as_str().into()))
            .collect();
        put("env", env.into());
    }
    if let Some(mode) = &args.handler_mode {
        put("handler_mode", mode.as_str().into());
    }
    if let Some(reuse) = args.reuse_instances {
        put("reuse_instances", reuse.into());
    }
    if !args.allow_outbound.is_empty() {
        put("allowed_outbound_hosts", args.allow_outbound.clone().into());
    }
    if let Some(timeout) = &args.outbound_timeout {
        put("outbound_timeout", timeout.as_str().into());
    }
    if let Some(limit) = &args.outbound_body_limit {
        put("outbound_body_limit", limit.as_str().into());
    }
    if let Some(count) = args.outbound_concurrency {
        put("outbound_concurrency", count.into());
    }
    if let Some(count) = args.instance_concurrency {
        put("instance_concurrency", count.into());
    }
    for name in &args.unset {
        put(name, serde_json::Value::Null);
    }
    let path = format!("/v1/actors/{}", args.name);
    let node = &args.node;
    let spec = &spec;
    let send = |method: reqwest::Method| {
        let request = node.request(method, &path);
        async move {
            request?
                .json(spec)
                .send()
                .await
                .map_err(|error| super::send::unreachable(&node.node, &error))
        }
    };
    let response = if args.reset {
        send(reqwest::Method::PUT).await?
    } else {
        let patched = send(reqwest::Method::PATCH).await?;
        // A socket actor the node does not know yet is registered, not patched.
        if patched.status() == reqwest::StatusCode::NOT_FOUND && args.socket.is_some() {
            send(reqwest::Method::PUT).await?
        } else {
            patched
        }
    };
    let actor = answer(response).await?;
    super::send::print_out(&serde_json::to_string_pretty(&actor)?)
}

/// Prints the actors as a table.
pub async fn list(args: ListArgs) -> anyhow::Result<()> {
    let ListArgs { node: args, output } = args;
    let response = args
        .request(reqwest::Method::GET, "/v1/actors")?
        .send()
        .await
        .map_err(|error| super::send::unreachable(&args.node, &error))?;
    let actors = answer(response).await?;
    if output == Output::Json {
        return super::send::print_out(&serde_json::to_string_pretty(&actors)?);
    }
    let mut lines = vec![format!(
        "{:<24} {:<7} {:>7} {:>11} {:>9} {:>10} {:>8}  {}",
        "NAME",
        "KIND",
        "VERSION",
        "CONCURRENCY",
        "TIMEOUT",
        "PROCESSED",
        "FAILED",
        "DIGEST / SOCKET"
    )];
    for actor in actors.as_array().into_iter().flatten() {
        let version = actor["version"]
            .as_u64()
            .map_or("-".to_owned(), |v| v.to_string());
        let digest = actor["digest"]
            .as_str()
            .map(|d| &d[..d.len().min(16)])
            .or(actor["socket"].as_str())
            .unwrap_or("");
        lines.push(format!(
            "{:<24} {:<7} {:>7} {:>11} {:>9} {:>10} {:>8}  {}",
            actor["name"].as_str().unwrap_or(""),
            actor["kind"].as_str().unwrap_or(""),
            version,
            actor["concurrency"],
            format_ms(actor["timeout_ms"].as_u64().unwrap_or(0)),
            actor["processed"],
            actor["failed"],
            digest
        ));
    }
    super::send::print_out(&lines.join("\n"))
}

/// Prints one actor as JSON.
pub async fn show(args: ActorArgs) -> anyhow::Result<()> {
    let response = args
        .node
        .request(reqwest::Method::GET, &format!("/v1/actors/{}", args.name))?
        .send()
        .await
        .map_err(|error| super::send::unreachable(&args.node.node, &error))?;
    let actor = answer(response).await?;
    super::send::print_out(&serde_json::to_string_pretty(&actor)?)
}

/// Removes an actor.
pub async fn remove(args: ActorArgs) -> anyhow::Result<()> {
    let response = args
        .node
        .request(
            reqwest::Method::DELETE,
            &format!("/v1/actors/{}", args.name),
        )?
        .send()
        .await
        .map_err(|error| super::send::unreachable(&args.node.node, &error))?;
    let status = response.status();
    if !status.is_success() {
        answer(response).await?;
    }
    super::send::print_out(&format!("removed {}", args.name))
}

/// `1500` → `1.5s`, `30000` → `30s`, `250` → `250ms`.
fn format_ms(ms: u64) -> String {
    match ms {
        ms if ms < 1000 => format!("{ms}ms"),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{:.1}s", ms as f64 / 1000.0),
    }
}
