//! `wasya deploy`, `wasya actors`, `wasya actor`, `wasya rm`: managing a node's actors
//! over its HTTP API. Errors are one line, with a non-zero exit code.

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
}

impl NodeArgs {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.node.trim_end_matches('/'))
    }

    /// A request to the node, with the token when there is one.
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = reqwest::Client::new().request(method, self.url(path));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }
}

/// Flags of `wasya deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// The actor's name.
    pub name: String,
    /// The component (`.wasm`, built for wasm32-wasip2).
    pub file: std::path::PathBuf,
}

/// Flags of `wasya actor` and `wasya rm`.
#[derive(Debug, Args)]
pub struct ActorArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// The actor's name.
    pub name: String,
}

/// Uploads a component; prints the name, version and digest.
pub async fn deploy(args: DeployArgs) -> anyhow::Result<()> {
    let bytes = tokio::fs::read(&args.file)
        .await
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let size = bytes.len();
    let response = args
        .node
        .request(reqwest::Method::PUT, &format!("/v1/actors/{}", args.name))
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .with_context(|| format!("cannot reach the node at {}", args.node.node))?;
    let deployed = answer(response).await?;
    super::send::print_out(&format!(
        "{} v{} {} ({size} bytes)",
        deployed["name"].as_str().unwrap_or(&args.name),
        deployed["version"],
        deployed["digest"].as_str().unwrap_or("")
    ))
}

/// Prints the actors as a table.
pub async fn list(args: NodeArgs) -> anyhow::Result<()> {
    let response = reqwest::get(args.url("/v1/actors"))
        .await
        .with_context(|| format!("cannot reach the node at {}", args.node))?;
    let actors = answer(response).await?;
    let mut lines = vec![format!(
        "{:<24} {:<7} {:>7} {:>11} {:>9}  {}",
        "NAME", "KIND", "VERSION", "CONCURRENCY", "TIMEOUT", "DIGEST / SOCKET"
    )];
    for actor in actors.as_array().into_iter().flatten() {
        let version = actor["versions"]
            .as_array()
            .and_then(|v| v.last())
            .map_or("-".to_owned(), |v| v["version"].to_string());
        let digest = actor["digest"]
            .as_str()
            .map(|d| &d[..d.len().min(16)])
            .or(actor["socket"].as_str())
            .unwrap_or("");
        lines.push(format!(
            "{:<24} {:<7} {:>7} {:>11} {:>8}s  {}",
            actor["name"].as_str().unwrap_or(""),
            actor["kind"].as_str().unwrap_or(""),
            version,
            actor["concurrency"],
            actor["timeout_ms"].as_u64().unwrap_or(0) / 1000,
            digest
        ));
    }
    super::send::print_out(&lines.join("\n"))
}

/// Prints one actor as JSON.
pub async fn show(args: ActorArgs) -> anyhow::Result<()> {
    let response = reqwest::get(args.node.url(&format!("/v1/actors/{}", args.name)))
        .await
        .with_context(|| format!("cannot reach the node at {}", args.node.node))?;
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
        )
        .send()
        .await
        .with_context(|| format!("cannot reach the node at {}", args.node.node))?;
    let status = response.status();
    if !status.is_success() {
        answer(response).await?;
    }
    super::send::print_out(&format!("removed {}", args.name))
}
