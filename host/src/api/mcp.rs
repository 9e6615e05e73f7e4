//! The node as a Model Context Protocol server: the tools of `--tools FILE` at `/mcp`,
//! over MCP's streamable HTTP transport (the `rmcp` SDK).
//!
//! `tools/list` answers each tool with its parameters' JSON schema; `tools/call` runs
//! the pipeline ([`super::tools::call`]) and answers its result, sending
//! `notifications/progress` (0–100, with what the hop did) while it runs when the
//! client asked for progress. A pipeline that fails is an error *result*
//! (`isError: true`, with the failure's message), so an agent reads why; only a call
//! of an unknown tool is a protocol error.
//!
//! Sessions are bounded ([`Sessions`]): at most `--mcp-sessions` open at once (a new
//! `initialize` past it answers 503, and `wasya_mcp_sessions` counts them), and one
//! idle for [`crate::defaults::MCP_SESSION_IDLE`] is closed, so a client that opens
//! sessions by the thousand cannot hold the node's memory.
//!
//! `/mcp` submits envelopes, so it asks for the node's token as every mutating
//! endpoint does. Without a token the node listens on loopback only, and MCP's
//! `Host` check (against DNS rebinding) stays on; with one, the token guards it.

use super::tools;
use super::{ApiState, auth};
use crate::tools::Tool as PipelineTool;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use std::sync::Arc;

/// The MCP face of a node's tools.
pub struct McpTools {
    state: Arc<ApiState>,
}

impl Clone for McpTools {
    fn clone(&self) -> Self {
        McpTools {
            state: self.state.clone(),
        }
    }
}

/// A pipeline tool as MCP lists it.
fn listed(tool: &PipelineTool) -> Tool {
    let schema: JsonObject = tool.input_schema();
    Tool::new(
        tool.name.clone(),
        tool.description.clone(),
        Arc::new(schema),
    )
}

impl ServerHandler for McpTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("wasya", env!("CARGO_PKG_VERSION")))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            self.state.tools.iter().map(listed).collect(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.state.tools.get(name).map(listed)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(tool) = self.state.tools.get(&request.name) else {
            return Err(ErrorData::invalid_params(
                format!(
                    "no tool named `{}`",
                    crate::envelope::limits::echo(&request.name)
                ),
                None,
            ));
        };
        let arguments = request.arguments.unwrap_or_default();
        let token = context.meta.get_progress_token();
        let peer = context.peer.clone();
        let progress = move |event: &crate::progress::ProgressEvent, percent: f64| {
            let Some(token) = token.clone() else {
                return futures::future::ready(()).boxed();
            };
            let peer = peer.clone();
            let message = format!(
                "{} {} ({}/{})",
                event.hop.actor,
                event.stage.as_str(),
                event.hop.index + 1,
                event.hop.route.len()
            );
            async move {
                let notification = ProgressNotificationParam::new(token, percent)
                    .with_total(100.0)
                    .with_message(message);
                if let Err(error) = peer.notify_progress(notification).await {
                    tracing::debug!(%error, "a progress notification was not sent");
                }
            }
            .boxed()
        };
        let answer = tokio::select! {
            answer = tools::call(&self.state, tool, arguments, progress) => answer,
            _ = context.ct.cancelled() => {
                return Ok(CallToolResult::error(vec![ContentBlock::text("the call was cancelled; the pipeline goes on")]).into());
            }
        };
        let content = vec![ContentBlock::text(answer.text())];
        Ok(if answer.is_error() {
            CallToolResult::error(content)
        } else {
            CallToolResult::success(content)
        }
        .into())
    }
}

/// The MCP sessions of a node, and how many it keeps open at once.
#[derive(Clone)]
pub struct Sessions {
    manager: Arc<LocalSessionManager>,
    cap: usize,
}

impl Sessions {
    /// At most `cap` sessions, each closed after [`crate::defaults::MCP_SESSION_IDLE`]
    /// idle.
    pub fn new(cap: usize) -> Self {
        let mut manager = LocalSessionManager::default();
        manager.session_config.keep_alive = Some(crate::defaults::MCP_SESSION_IDLE);
        Sessions {
            manager: Arc::new(manager),
            cap: cap.max(1),
        }
    }

    async fn open(&self) -> usize {
        self.manager.sessions.read().await.len()
    }
}

/// Refuses a request that would open a session past the cap (`503`); counts the
/// sessions open in `wasya_mcp_sessions`.
pub async fn limit_sessions(
    State(sessions): State<Sessions>,
    request: Request,
    next: Next,
) -> Response {
    let open = sessions.open().await;
    crate::metrics::metrics()
        .mcp_sessions
        .set(i64::try_from(open).unwrap_or(i64::MAX));
    let opens_one = request.method() == axum::http::Method::POST
        && !request.headers().contains_key("mcp-session-id");
    if opens_one && open >= sessions.cap {
        return super::ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "mcp_sessions_full",
            format!(
                "{open} MCP sessions are open, the most this node keeps (--mcp-sessions); close one (DELETE /mcp) or try again later"
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// The `/mcp` service.
pub fn service(
    state: Arc<ApiState>,
    sessions: &Sessions,
) -> StreamableHttpService<McpTools, LocalSessionManager> {
    let mut config = StreamableHttpServerConfig::default()
        .with_cancellation_token(state.router.stopping().child_token());
    if state.token.is_some() {
        config = config.disable_allowed_hosts();
    }
    StreamableHttpService::new(
        move || {
            Ok(McpTools {
                state: state.clone(),
            })
        },
        sessions.manager.clone(),
        config,
    )
}

/// Asks for the node's token on `/mcp`, as on every endpoint that submits.
pub async fn require_token(
    State(state): State<Arc<ApiState>>,
    request: Request,
    next: Next,
) -> Response {
    match auth::check(state.token.as_deref(), request.headers()) {
        Ok(_) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}
