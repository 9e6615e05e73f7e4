//! `wasya send`: submit an envelope over HTTP and, with `--wait`, print its outcome.

use crate::cli::exit::{Exit, ExitError};
use crate::defaults::MAX_WAIT;
use crate::units::parse_duration;
use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};
use std::time::Duration;

/// Flags of `wasya send`.
#[derive(Debug, Args)]
pub struct SendArgs {
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
    /// The actors to visit, in order: `upper,split`.
    #[arg(long, value_delimiter = ',', required = true)]
    pub route: Vec<String>,
    /// The payload, as JSON; `@FILE` reads it from a file, `-` from stdin.
    #[arg(long, default_value = "null")]
    pub payload: String,
    /// `route.metadata`, as JSON.
    #[arg(long)]
    pub metadata: Option<String>,
    /// A header, NAME=VALUE (repeatable).
    #[arg(long = "header")]
    pub headers: Vec<String>,
    /// Wait for the outcome and print it.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Submits, and prints the id or (with --wait) the outcome. Fails when the outcome is
/// `failed` (exit 3) or still `pending` at the timeout (exit 4); a node that cannot be
/// reached exits 5 ([`crate::cli::exit`]).
pub async fn run(args: SendArgs) -> anyhow::Result<()> {
    let text = read_payload(&args.payload).await?;
    let payload: Value = serde_json::from_str(&text).context("--payload is not valid JSON")?;
    let metadata: Option<Value> = args
        .metadata
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .context("--metadata is not valid JSON")?;
    let mut headers = serde_json::Map::new();
    for header in &args.headers {
        let (name, value) = header
            .split_once('=')
            .with_context(|| format!("--header `{header}` is not NAME=VALUE"))?;
        headers.insert(name.to_owned(), json!(value));
    }
    let base = args.node.trim_end_matches('/');
    let client = super::client::client(
        args.ca_file.as_deref(),
        Some(args.timeout + Duration::from_secs(10)),
    )?;
    let body = json!({
        "route": {"actors": args.route, "metadata": metadata},
        "payload": payload,
        "headers": headers,
    });
    let mut request = client.post(format!("{base}/v1/envelopes")).json(&body);
    if let Some(token) = &args.token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .map_err(|error| unreachable(base, &error))?;
    let submitted = answer(response).await?;
    let id = submitted["id"]
        .as_str()
        .context("the node answered no id")?
        .to_owned();
    if !args.wait {
        print_out(&id)?;
        return Ok(());
    }
    let outcome = wait_for(&client, base, &id, args.timeout).await?;
    print_out(&serde_json::to_string_pretty(&outcome)?)?;
    match outcome["status"].as_str() {
        Some("succeeded") => Ok(()),
        Some("failed") => {
            Err(ExitError::new(Exit::EnvelopeFailed, format!("envelope {id} failed")).into())
        }
        _ => Err(ExitError::new(
            Exit::StillPending,
            format!("envelope {id} is still pending after {:?}", args.timeout),
        )
        .into()),
    }
}

/// The payload's text: as given, from a file (`@FILE`) or from stdin (`-`).
async fn read_payload(given: &str) -> anyhow::Result<String> {
    if given == "-" {
        let read = tokio::task::spawn_blocking(|| std::io::read_to_string(std::io::stdin()));
        return read.await?.context("cannot read the payload from stdin");
    }
    match given.strip_prefix('@') {
        Some(file) => tokio::fs::read_to_string(file)
            .await
            .with_context(|| format!("cannot read the payload from {file}")),
        None => Ok(given.to_owned()),
    }
}

/// A request that did not reach the node: why, with every cause said once, and how
/// to trust a node whose certificate was refused.
pub(crate) fn unreachable(base: &str, error: &reqwest::Error) -> anyhow::Error {
    let mut message = format!(
        "cannot reach the node at {base}: {}",
        crate::error_chain::chain(error)
    );
    if refused_certificate(error) {
        message.push_str(
            "\n  the node's certificate is not trusted here: pass its CA with --ca-file PEM \
             (or WASYA_CA_FILE), or add it to the platform's roots (SSL_CERT_FILE)",
        );
    }
    ExitError::new(Exit::Unreachable, message).into()
}

/// Whether TLS refused the peer's certificate somewhere down `error`'s causes.
fn refused_certificate(error: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(rustls::Error::InvalidCertificate(_)) = error.downcast_ref::<rustls::Error>() {
        return true;
    }
    // An I/O error shows the error it wraps but does not name it as its source: look
    // inside too.
    let wrapped = error
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
        .is_some_and(|inner| refused_certificate(inner));
    wrapped || error.source().is_some_and(refused_certificate)
}

/// Waits up to `timeout` for the outcome of `id`, in waits the node allows (at most
/// its longest `?wait=` each); returns the outcome as it stands then.
async fn wait_for(
    client: &reqwest::Client,
    base: &str,
    id: &str,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let wait = format!("{}ms", left.min(MAX_WAIT).as_millis());
        let response = client
            .get(format!("{base}/v1/envelopes/{id}"))
            .query(&[("wait", wait)])
            .send()
            .await
            .map_err(|error| unreachable(base, &error))?;
        let outcome = answer(response).await?;
        if outcome["status"] != "pending" || left <= MAX_WAIT {
            return Ok(outcome);
        }
    }
}

/// Writes one line to stdout; a closed pipe (`| head`) is not an error.
pub(crate) fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}

/// The JSON body of a success, or the node's error message as an error.
pub(crate) async fn answer(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let message = body["message"].as_str().unwrap_or("no message");
    bail!("the node answered {status}: {message}")
}
