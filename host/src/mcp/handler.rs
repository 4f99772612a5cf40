//! The MCP request handler ([`Handler`]): one per session (or per request in
//! stateless mode), answering for the caller each request carries.

use super::catalog::{PromptSource, View};
use super::convert;
use super::hub::Hub;
use crate::auth::Identity;
use crate::server::Services;
use crate::tools::Caller;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelledNotificationParam, CompleteRequestParams,
    CompleteResult, CompletionInfo, DiscoverResult, GetPromptRequestParams, GetPromptResponse,
    Implementation, InitializeRequestParams, InitializeResult, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, LoggingLevel,
    PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse,
    Reference, ServerCapabilities, ServerConfig, SetLevelRequestParams, SubscribeRequestParams,
    UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// Serves one MCP session for the services.
#[derive(Clone)]
pub struct Handler {
    s: Arc<Services>,
    hub: Arc<Hub>,
    /// The caller of a stdio session (HTTP requests carry their own).
    fixed: Option<Identity>,
    /// The least severe plugin log level forwarded to this session.
    level: Arc<Mutex<LoggingLevel>>,
    /// Resource URIs this session subscribed to.
    subscriptions: Subscriptions,
    /// Whether this session completed `initialize` (a second one is refused).
    initialized: Arc<std::sync::atomic::AtomicBool>,
}

/// The resource URIs one session subscribed to.
pub type Subscriptions = Arc<Mutex<BTreeSet<String>>>;

/// Most subscriptions one session may hold.
const MAX_SUBSCRIPTIONS: usize = 1000;

impl Handler {
    /// A handler for the services; `fixed` is the caller when requests carry none (stdio).
    pub fn new(s: Arc<Services>, hub: Arc<Hub>, fixed: Option<Identity>) -> Self {
        Self {
            s,
            hub,
            fixed,
            level: Arc::new(Mutex::new(LoggingLevel::Info)),
            subscriptions: Subscriptions::default(),
            initialized: Arc::default(),
        }
    }

    fn who(&self, cx: &RequestContext<RoleServer>) -> Result<Identity, McpError> {
        cx.extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Identity>())
            .or(self.fixed.as_ref())
            .cloned()
            .ok_or_else(|| McpError::invalid_request("the request is not authenticated", None))
    }

    fn view(&self, caller: &Caller) -> View {
        View::build(&self.s.plugins, caller, &self.s.skills)
    }

    /// The view of a caller allowed to `read`.
    fn read_view(&self, cx: &RequestContext<RoleServer>) -> Result<View, McpError> {
        let who = self.who(cx)?;
        require(&who, "read")?;
        Ok(self.view(&caller_of(&who)))
    }

    /// The session's current log level.
    pub fn level(&self) -> LoggingLevel {
        self.level.lock().map(|l| *l).unwrap_or(LoggingLevel::Info)
    }
}

/// The HTTP session id a message arrived with, if any.
fn session_id(extensions: &rmcp::model::Extensions) -> Option<String> {
    extensions
        .get::<http::request::Parts>()?
        .headers
        .get("mcp-session-id")?
        .to_str()
        .ok()
        .map(str::to_string)
}

/// The caller of a tool call, from an identity.
pub fn caller_of(who: &Identity) -> Caller {
    Caller {
        user_id: who.user.id.clone(),
        username: who.user.username.clone(),
        admin: who.is_admin(),
    }
}

/// Fail unless the credential allows `scope`.
pub fn require(who: &Identity, scope: &str) -> Result<(), McpError> {
    if who.allows(scope) {
        Ok(())
    } else {
        Err(McpError::invalid_request(
            format!("this API token lacks the `{scope}` scope"),
            None,
        ))
    }
}

impl ServerHandler for Handler {
    /// The revisions with an `initialize` handshake and sessions (up to
    /// 2025-11-25): session-less newer ones would lose live notifications.
    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [ProtocolVersion]> {
        std::borrow::Cow::Borrowed(ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_11_25))
    }

    /// `server/discover` belongs to a newer revision: answer "method not found"
    /// so newer clients fall back to `initialize`.
    async fn discover(&self, _cx: RequestContext<RoleServer>) -> Result<DiscoverResult, McpError> {
        Err(McpError::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            "server/discover is not supported: use initialize (protocol 2025-11-25 or older)",
            None,
        ))
    }

    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_resources_subscribe()
            .enable_completions()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        let mut info = ServerConfig::new(capabilities);
        info.server_info = Implementation::new("switchyard", env!("CARGO_PKG_VERSION"));
        info.instructions = Some(
            "Tools, prompts and resources come from the WebAssembly plugins installed on this \
             switchyard server; tools are named PLUGIN__TOOL unless a plugin offers bare names. \
             Skills are prompts, and their files are resources under skill://NAME/PATH."
                .into(),
        );
        info
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        let who = self.who(&cx)?;
        if self
            .initialized
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(McpError::invalid_request(
                "this session is already initialized",
                None,
            ));
        }
        cx.peer.set_peer_info(request.clone());
        self.hub.register(
            &self.s,
            cx.peer.clone(),
            caller_of(&who),
            self.subscriptions.clone(),
        );
        self.negotiate_initialize(&request)
    }

    async fn on_initialized(&self, cx: NotificationContext<RoleServer>) {
        if let Some(id) = session_id(&cx.extensions) {
            let attached = super::hub::Attached {
                peer: cx.peer.clone(),
                level: self.level.clone(),
                last_rmcp: Arc::new(Mutex::new(std::time::Instant::now())),
            };
            self.hub.attach(&id, attached);
        }
    }

    async fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        cx: NotificationContext<RoleServer>,
    ) {
        if let (Some(id), Some(request)) = (session_id(&cx.extensions), notification.request_id) {
            self.hub.cancel(&id, &request);
        }
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _cx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if let Ok(mut level) = self.level.lock() {
            *level = request.level;
        }
        Ok(())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        cx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let view = self.read_view(&cx)?;
        let mut tools = if self.s.sandboxes.available().await {
            super::sandbox_tools::tools()
        } else {
            Vec::new()
        };
        tools.extend(super::task_tools::tools());
        tools.extend(super::schedule_tools::tools());
        for (name, entry) in &view.tools {
            tools.push(convert::tool(name, entry)?);
        }
        let caller = caller_of(&self.who(&cx)?);
        for entry in self.s.remotes.visible(&caller) {
            let name = format!(
                "{}{}{}",
                entry.plugin,
                super::catalog::SEPARATOR,
                entry.name
            );
            if !tools.iter().any(|t| t.name == name) {
                tools.push(convert::tool(&name, &entry)?);
            }
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let who = self.who(&cx)?;
        let call = super::call::ToolCall {
            s: &self.s,
            who: &who,
            peer: cx.peer.clone(),
            progress_token: cx.meta.get_progress_token(),
            level: self.level(),
            cancel: cx.ct.clone(),
        };
        Ok(call.run(&request).await?.into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        cx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let view = self.read_view(&cx)?;
        let prompts = view
            .prompts
            .iter()
            .map(|(name, source)| convert::prompt(name, source))
            .collect::<Result<_, _>>()?;
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let view = self.read_view(&cx)?;
        let source = view.prompt(&request.name).ok_or_else(|| {
            McpError::invalid_params(
                format!(
                    "unknown prompt `{}`: list them with prompts/list",
                    request.name
                ),
                None,
            )
        })?;
        let result = match source {
            PromptSource::Plugin(entry) => {
                let arguments = convert::prompt_arguments(request.arguments.as_ref())?;
                entry
                    .check_arguments(&arguments)
                    .map_err(|e| McpError::invalid_params(e, None))?;
                let live = self
                    .s
                    .plugins
                    .get(&entry.plugin)
                    .filter(|l| l.component.is_some())
                    .ok_or_else(|| McpError::internal_error("the plugin stopped", None))?;
                let component = live
                    .component
                    .as_ref()
                    .ok_or_else(|| McpError::internal_error("the plugin stopped", None))?;
                let filled = self
                    .s
                    .plugins
                    .manager()
                    .runtime()
                    .get_prompt(component, &entry.name, arguments)
                    .await
                    .map_err(|e| convert::plugin_error(&e))?;
                convert::prompt_result(filled)?
            }
            PromptSource::Skill(skill) => {
                let content = self
                    .s
                    .skills
                    .load(skill)
                    .await
                    .map_err(|e| McpError::internal_error(e.to_string(), None))?;
                convert::skill_prompt(skill, content)?
            }
        };
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        cx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let view = self.read_view(&cx)?;
        let mut resources: Vec<_> = view
            .resources
            .iter()
            .map(convert::resource)
            .collect::<Result<_, _>>()?;
        for (name, skill) in &view.skills {
            match self.s.skills.load(skill).await {
                Ok(content) => resources.extend(convert::skill_resources(name, skill, &content)?),
                Err(e) => {
                    tracing::warn!(skill = %skill.name, error = %e, "cannot list a skill's files")
                }
            }
        }
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        cx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let view = self.read_view(&cx)?;
        let mut templates: Vec<_> = view
            .templates
            .iter()
            .map(convert::template)
            .collect::<Result<_, _>>()?;
        templates.push(convert::skill_template()?);
        Ok(ListResourceTemplatesResult::with_all_items(templates))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let view = self.read_view(&cx)?;
        let contents = super::read::read(&self.s, &view, &request.uri).await?;
        Ok(rmcp::model::ReadResourceResult::new(contents).into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let view = self.read_view(&cx)?;
        if !super::read::exists(&view, &request.uri) {
            return Err(McpError::resource_not_found(
                format!("no resource `{}` to subscribe to", request.uri),
                None,
            ));
        }
        let mut subscriptions = self
            .subscriptions
            .lock()
            .map_err(|_| McpError::internal_error("subscriptions unavailable", None))?;
        if subscriptions.len() >= MAX_SUBSCRIPTIONS && !subscriptions.contains(&request.uri) {
            return Err(McpError::invalid_params(
                format!("a session holds at most {MAX_SUBSCRIPTIONS} subscriptions"),
                None,
            ));
        }
        subscriptions.insert(request.uri);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _cx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if let Ok(mut subscriptions) = self.subscriptions.lock() {
            subscriptions.remove(&request.uri);
        }
        Ok(())
    }

    /// Completions for the skill-file template's `name` (the caller's skill
    /// names with the typed prefix); no other argument has a source of values.
    async fn complete(
        &self,
        request: CompleteRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let view = self.read_view(&cx)?;
        let skill_names = matches!(&request.r#ref, Reference::Resource(r) if r.uri.starts_with("skill://"))
            && request.argument.name == "name";
        let mut values: Vec<String> = if skill_names {
            view.skills
                .iter()
                .map(|(name, _)| name.clone())
                .filter(|name| name.starts_with(&request.argument.value))
                .collect()
        } else {
            Vec::new()
        };
        values.truncate(CompletionInfo::MAX_VALUES);
        let info = CompletionInfo::with_all_values(values)
            .map_err(|e| McpError::internal_error(e, None))?;
        Ok(CompleteResult::new(info))
    }
}
