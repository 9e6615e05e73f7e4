//! The flags of the HTTP API section: where it listens, what it accepts, who may
//! change things.

use crate::config::ApiConfig;
use crate::defaults;
use crate::units::{parse_bytes, parse_duration};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Flags of the API.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Address of the HTTP API.
    #[arg(long, env = "WASYA_LISTEN", default_value = defaults::LISTEN_TEXT)]
    #[arg(help_heading = "Listening and security")]
    pub listen: SocketAddr,
    /// Pipelines offered as tools over MCP (`/mcp`) and `POST /tools/call`: a YAML
    /// file in Asya gateway's `routes.yaml` format (name, description, parameters,
    /// route per tool).
    #[arg(long, env = "WASYA_TOOLS")]
    #[arg(help_heading = "Listening and security")]
    pub tools: Option<PathBuf>,
    /// Asya's reporting paths (`POST /envelopes`, `/envelopes/{id}/progress`,
    /// `/envelopes/{id}/final`) take no token: Asya's sidecars send none. For a node
    /// whose API only the mesh reaches; web pages stay refused.
    #[arg(long, env = "WASYA_OPEN_REPORTS")]
    #[arg(help_heading = "Listening and security")]
    pub open_reports: bool,
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
    /// Largest HTTP request body.
    #[arg(long, env = "WASYA_MAX_BODY", default_value = defaults::MAX_BODY_TEXT, value_parser = parse_bytes)]
    #[arg(help_heading = "Listening and security")]
    pub max_body: usize,
    /// How long a client may take to send a request's headers.
    #[arg(long, env = "WASYA_HEADER_READ_TIMEOUT", default_value = defaults::HEADER_READ_TIMEOUT_TEXT, value_parser = parse_duration)]
    #[arg(help_heading = "Listening and security")]
    pub header_read_timeout: Duration,
    /// MCP sessions open at once; past it `initialize` answers 503.
    #[arg(long, env = "WASYA_MCP_SESSIONS", default_value_t = defaults::MCP_SESSIONS)]
    #[arg(help_heading = "Limits")]
    pub mcp_sessions: usize,
}

impl ApiArgs {
    /// The API section: the token read from its file (or `WASYA_TOKEN`), the tools
    /// file read and checked.
    pub fn section(&self) -> anyhow::Result<ApiConfig> {
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
        Ok(ApiConfig {
            listen: Some(self.listen),
            max_body_bytes: self.max_body,
            header_read_timeout: self.header_read_timeout,
            token,
            public_hosts: self.public_hosts.clone(),
            allowed_origins: self.allowed_origins.clone(),
            tools,
            mcp_sessions: self.mcp_sessions,
            open_reports: self.open_reports,
        })
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
