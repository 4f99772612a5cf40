//! One MCP `tools/call`, shared by the handler (calls that rmcp routes) and the
//! direct path ([`super::fast`]): resolve the name for the caller, run the tool
//! with the call's observer and cancellation, audit denials, map the outcome.

use super::catalog;
use super::convert;
use super::handler::{caller_of, require};
use super::observer::Forwarder;
use crate::auth::Identity;
use crate::server::Services;
use crate::store::NewAudit;
use crate::tools::{self, CallError};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ContentBlock, LoggingLevel, ProgressToken,
};
use rmcp::{ErrorData as McpError, Peer, RoleServer};
use tokio_util::sync::CancellationToken;

fn unknown_tool(name: &str) -> McpError {
    McpError::invalid_params(
        format!("unknown tool `{name}`: list the tools with tools/list"),
        None,
    )
}

/// Everything one tool call needs besides its parameters.
pub struct ToolCall<'a> {
    /// The services.
    pub s: &'a Services,
    /// The caller.
    pub who: &'a Identity,
    /// The session's client, for log and progress notifications.
    pub peer: Peer<RoleServer>,
    /// The client's progress token, if it asked for progress.
    pub progress_token: Option<ProgressToken>,
    /// The session's minimum log level.
    pub level: LoggingLevel,
    /// Cancels the guest call.
    pub cancel: CancellationToken,
}

impl ToolCall<'_> {
    /// Run the call: a protocol error for unknown tools and missing scopes, an
    /// `isError` result for every failure of the tool itself.
    pub async fn run(self, request: &CallToolRequestParams) -> Result<CallToolResult, McpError> {
        let empty = serde_json::Map::new();
        let args = request.arguments.as_ref().unwrap_or(&empty);
        if let Some(result) = super::task_tools::call(self.s, self.who, &request.name, args).await {
            return result;
        }
        if let Some(result) =
            super::schedule_tools::call(self.s, self.who, &request.name, args).await
        {
            return result;
        }
        require(self.who, "tools:call")?;
        if let Some(result) =
            super::sandbox_tools::call(self.s, self.who, &request.name, args).await
        {
            return result;
        }
        let caller = caller_of(self.who);
        if let Some((server, tool)) = request.name.split_once(catalog::SEPARATOR)
            && self.s.remotes.offers(&caller, server)
        {
            let outcome = self
                .s
                .remotes
                .call(
                    &caller,
                    server,
                    tool,
                    request.arguments.clone(),
                    &self.cancel,
                )
                .await;
            return match outcome {
                Ok(result) => Ok(result),
                Err(crate::remote::CallError::Unknown(_)) => Err(unknown_tool(&request.name)),
                Err(e) => Ok(CallToolResult::error(vec![ContentBlock::text(
                    e.to_string(),
                )])),
            };
        }
        let plugins = &self.s.plugins;
        let (plugin, tool) = catalog::resolve_tool(plugins, &caller, &request.name)
            .ok_or_else(|| unknown_tool(&request.name))?;
        let live = plugins
            .get(&plugin)
            .filter(|l| {
                l.installed.visible_to(&caller.user_id, caller.admin)
                    && (l.component.is_none() || l.contents.tools.iter().any(|t| t.name == tool))
            })
            .ok_or_else(|| unknown_tool(&request.name))?;
        let arguments = match &request.arguments {
            Some(map) => serde_json::to_string(map),
            None => Ok("{}".to_string()),
        }
        .map_err(|e| McpError::invalid_params(e.to_string(), None))?;
        // A plugin's log lines may carry what its grants let it see: they go to
        // administrators and to the plugin's owner only.
        let own = live.installed.state.owner_id.as_deref() == Some(caller.user_id.as_str());
        let logs = (caller.admin || own).then_some(self.level);
        let forwarder = Forwarder::start(self.peer, self.progress_token, logs, plugin.clone());
        let hooks = crate::runtime::CallHooks {
            observer: Some(forwarder.observer()),
            cancel: Some(self.cancel),
            ..Default::default()
        };
        let request_id = tools::new_request_id();
        let (result, denied) = tools::call_live(
            plugins,
            &plugin,
            &tool,
            &arguments,
            &caller,
            &request_id,
            hooks,
        )
        .await;
        forwarder.finish().await;
        if !denied.is_empty() {
            let entry = NewAudit {
                actor_id: Some(&self.who.user.id),
                actor: &self.who.user.username,
                action: "capability.denied",
                target: &format!("plugin:{plugin}"),
                outcome: "denied",
                details: serde_json::json!({ "tool": tool, "denied": denied, "via": "mcp" }),
                request_id: Some(&request_id),
            };
            if let Err(e) = self.s.store.audit(entry).await {
                tracing::error!(error = %e, "cannot write the audit log");
            }
        }
        match result {
            Ok(output) => Ok(convert::tool_result(&plugin, &tool, output)),
            Err(CallError::Plugin(crate::plugins::PluginsError::NotInstalled(_))) => {
                Err(unknown_tool(&request.name))
            }
            Err(e) => Ok(CallToolResult::error(vec![ContentBlock::text(
                e.to_string(),
            )])),
        }
    }
}
