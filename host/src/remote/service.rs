//! The registry of external MCP servers: registering, changing and removing
//! them (stored, headers sealed), one [`Link`] per enabled server, what each
//! caller sees of their tools, and calling one.

use super::link::{Link, Listener, Opener, Status};
use super::{CallError, DEFAULT_TIMEOUT_SECS, MAX_PER_USER, MAX_TIMEOUT_SECS, RemoteError};
use crate::plugins::live::PluginHost;
use crate::sandbox::Sandboxes;
use crate::store::{McpServerRow, SecretCipher, Store};
use crate::tools::{Caller, ToolEntry};
use rmcp::model::{CallToolRequestParams, CallToolResponse, CallToolResult, JsonObject};
use rmcp::service::ServiceError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a call waits for a server that is reconnecting.
const RECONNECT_WAIT: Duration = Duration::from_secs(10);
/// How long registering waits for the first connection, to answer with its outcome.
const FIRST_CONNECT_WAIT: Duration = Duration::from_secs(5);

/// A server to register.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewServer {
    /// The `NAME` of `NAME__TOOL`: 1-48 chars of a-z, 0-9 and single hyphens, starting with a letter.
    #[schema(
        min_length = 1,
        max_length = 48,
        pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
    )]
    pub name: String,
    /// The streamable-HTTP endpoint (`http://` or `https://`); non-administrators
    /// may name public addresses only.
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    /// Administrators, instead of `url`: a stdio server (program and arguments)
    /// run inside a sandbox of theirs.
    #[schema(min_items = 1, max_items = 64)]
    pub command: Option<Vec<String>>,
    /// Request headers (for example `Authorization: Bearer …`), kept sealed:
    /// only their names are ever shown.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Administrators: offer the tools to every user.
    #[serde(default)]
    pub shared: bool,
    /// Connect and offer the tools (default true).
    pub enabled: Option<bool>,
    /// Longest a tool call may take, 1-600 seconds (default 60).
    #[serde(default, deserialize_with = "crate::api::whole_number")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 600)]
    pub timeout_secs: Option<i64>,
}

/// A change to a server; what is left out stays.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerPatch {
    /// A new endpoint.
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    /// A new stdio command (administrators).
    #[schema(min_items = 1, max_items = 64)]
    pub command: Option<Vec<String>>,
    /// New request headers: they replace all of the old ones.
    pub headers: Option<BTreeMap<String, String>>,
    /// Offer the tools to every user (administrators).
    pub shared: Option<bool>,
    /// Connect and offer the tools.
    pub enabled: Option<bool>,
    /// Longest a tool call may take, 1-600 seconds.
    #[serde(default, deserialize_with = "crate::api::whole_number")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 600)]
    pub timeout_secs: Option<i64>,
}

/// A registered server as its owner sees it (header values never included).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Server {
    /// Stable id.
    pub id: String,
    /// The `NAME` of `NAME__TOOL`.
    pub name: String,
    /// Who registered it.
    pub owner_id: String,
    /// `http` or `stdio`.
    pub transport: String,
    /// The endpoint (http).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The command run in a sandbox (stdio).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// The names of the configured request headers.
    pub header_names: Vec<String>,
    /// Offered to every user.
    pub shared: bool,
    /// Connected and offered.
    pub enabled: bool,
    /// Longest a tool call may take (seconds).
    pub timeout_secs: i64,
    /// The connection.
    pub status: Status,
    /// Created (ms since the epoch).
    pub created_at: i64,
    /// Last change (ms since the epoch).
    pub updated_at: i64,
}

/// External MCP servers and their connections.
pub struct Remotes {
    store: Store,
    cipher: SecretCipher,
    plugins: Arc<PluginHost>,
    sandboxes: Option<Arc<Sandboxes>>,
    links: RwLock<BTreeMap<String, Arc<Link>>>,
    changes: tokio::sync::watch::Sender<u64>,
}

fn sealed_label(id: &str) -> String {
    format!("mcp-server:{id}")
}

fn check_command(command: &[String]) -> Result<(), RemoteError> {
    let invalid = |m: &str| Err(RemoteError::Invalid(m.into()));
    if command.is_empty() || command[0].trim().is_empty() {
        return invalid("`command` needs at least the program");
    }
    if command.len() > 64 || command.iter().map(String::len).sum::<usize>() > 8192 {
        return invalid("`command` may have at most 64 parts and 8192 bytes");
    }
    if command.iter().any(|a| a.contains('\0')) {
        return invalid("`command` must not contain NUL characters");
    }
    Ok(())
}

impl Remotes {
    /// The registry on `store`; stdio servers run in `sandboxes` (none: HTTP only).
    /// [`Remotes::start`] connects the registered servers.
    pub fn new(
        store: Store,
        cipher: SecretCipher,
        plugins: Arc<PluginHost>,
        sandboxes: Option<Arc<Sandboxes>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            cipher,
            plugins,
            sandboxes,
            links: RwLock::default(),
            changes: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Connect every registered, enabled server.
    pub async fn start(&self) -> Result<(), RemoteError> {
        for row in self.store.mcp_servers().await? {
            self.launch(row);
        }
        Ok(())
    }

    /// Stop every connection.
    pub fn shutdown(&self) {
        if let Ok(mut links) = self.links.write() {
            for link in links.values() {
                link.stop();
            }
            links.clear();
        }
    }

    /// Bumped whenever some server's offered tools change.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn link(&self, id: &str) -> Option<Arc<Link>> {
        self.links.read().ok()?.get(id).cloned()
    }

    fn all_links(&self) -> Vec<Arc<Link>> {
        self.links
            .read()
            .map(|l| l.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Start (or restart) the connection of `row`.
    fn launch(&self, row: McpServerRow) -> Arc<Link> {
        let link = Link::new(row);
        if let Ok(mut links) = self.links.write()
            && let Some(old) = links.insert(link.row.id.clone(), link.clone())
        {
            old.stop();
        }
        let opener = self.opener(&link);
        let changes = self.changes.clone();
        let changed: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            changes.send_modify(|n| *n += 1);
        });
        tokio::spawn(link.clone().run(opener, changed));
        self.changes.send_modify(|n| *n += 1);
        link
    }

    fn opener(&self, link: &Arc<Link>) -> Opener {
        let row = link.row.clone();
        let listener = link.listener();
        let store = self.store.clone();
        let cipher = self.cipher.clone();
        let sandboxes = self.sandboxes.clone();
        Box::new(move || {
            let (row, listener, store, cipher, sandboxes) = (
                row.clone(),
                listener.clone(),
                store.clone(),
                cipher.clone(),
                sandboxes.clone(),
            );
            Box::pin(async move { open(row, listener, store, cipher, sandboxes).await })
        })
    }

    fn view(&self, row: &McpServerRow) -> Server {
        let status = self
            .link(&row.id)
            .map_or_else(|| Status::stopped(row.enabled), |l| l.status());
        Server {
            id: row.id.clone(),
            name: row.name.clone(),
            owner_id: row.owner_id.clone(),
            transport: row.transport.clone(),
            url: row.url.clone(),
            command: row
                .command
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok()),
            header_names: serde_json::from_str(&row.header_names).unwrap_or_default(),
            shared: row.shared,
            enabled: row.enabled,
            timeout_secs: row.timeout_secs,
            status,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }

    async fn row(&self, caller: &Caller, id: &str) -> Result<McpServerRow, RemoteError> {
        let not_found = || RemoteError::NotFound(format!("no MCP server `{id}`"));
        if id.len() > 64 {
            return Err(not_found());
        }
        let row = self.store.mcp_server(id).await?.ok_or_else(not_found)?;
        if row.owner_id != caller.user_id && !caller.admin {
            return Err(not_found());
        }
        Ok(row)
    }

    /// Check `row` as `caller` would save it, and seal `headers` into it.
    async fn check(
        &self,
        caller: &Caller,
        row: &mut McpServerRow,
        headers: Option<&BTreeMap<String, String>>,
    ) -> Result<(), RemoteError> {
        crate::plugins::manifest::check_plugin_name(&row.name)
            .map_err(|e| RemoteError::Invalid(e.replace("plugin name", "server name")))?;
        if self.plugins.get(&row.name).is_some() {
            return Err(RemoteError::Conflict(format!(
                "a plugin named `{}` (its tools use that prefix)",
                row.name
            )));
        }
        if !(1..=MAX_TIMEOUT_SECS).contains(&row.timeout_secs) {
            return Err(RemoteError::Invalid(format!(
                "timeout_secs must be between 1 and {MAX_TIMEOUT_SECS}"
            )));
        }
        if row.shared && !caller.admin {
            return Err(RemoteError::Forbidden(
                "only administrators may share an MCP server with everyone".into(),
            ));
        }
        match (&row.url, &row.command) {
            (Some(url), None) => {
                super::transport::check_url(url, !caller.admin).map_err(|e| {
                    if e.contains("not a public address") {
                        RemoteError::Forbidden(e)
                    } else {
                        RemoteError::Invalid(e)
                    }
                })?;
                row.transport = "http".into();
            }
            (None, Some(command)) => {
                if !caller.admin {
                    return Err(RemoteError::Forbidden(
                        "only administrators may register a stdio server command".into(),
                    ));
                }
                let parts: Vec<String> = serde_json::from_str(command).unwrap_or_default();
                check_command(&parts)?;
                if self.sandboxes.is_none() {
                    return Err(RemoteError::Invalid(
                        "stdio servers run in sandboxes, which this process cannot start".into(),
                    ));
                }
                row.transport = "stdio".into();
            }
            _ => {
                return Err(RemoteError::Invalid(
                    "give exactly one of `url` (streamable HTTP) and `command` (stdio)".into(),
                ));
            }
        }
        if let Some(headers) = headers {
            super::transport::check_headers(headers).map_err(RemoteError::Invalid)?;
            if row.transport == "stdio" && !headers.is_empty() {
                return Err(RemoteError::Invalid(
                    "headers apply to HTTP servers only".into(),
                ));
            }
            let names: Vec<&String> = headers.keys().collect();
            row.header_names = serde_json::to_string(&names).unwrap_or_else(|_| "[]".into());
            row.headers = (!headers.is_empty()).then(|| {
                let json = serde_json::to_string(headers).unwrap_or_default();
                self.cipher.seal(&sealed_label(&row.id), "headers", &json)
            });
        }
        // Shared names must not collide with anyone's; one's own with a shared one.
        let clash = self.store.mcp_servers().await?.into_iter().any(|other| {
            other.id != row.id
                && other.name == row.name
                && (row.shared || other.shared || other.owner_id == row.owner_id)
        });
        if clash {
            return Err(RemoteError::Conflict(format!(
                "an MCP server named `{}` that you or everyone can see",
                row.name
            )));
        }
        Ok(())
    }

    /// Register a server and start connecting; waits a moment so the answer
    /// can say whether the first connection worked.
    pub async fn create(&self, caller: &Caller, new: NewServer) -> Result<Server, RemoteError> {
        let own = self
            .store
            .mcp_servers()
            .await?
            .iter()
            .filter(|r| r.owner_id == caller.user_id)
            .count();
        if own >= MAX_PER_USER {
            return Err(RemoteError::TooMany(format!(
                "you have {own} MCP servers, the most allowed; remove one first"
            )));
        }
        if let Some(command) = &new.command {
            check_command(command)?;
        }
        let now = crate::store::now_ms();
        let mut row = McpServerRow {
            id: crate::store::new_id(),
            owner_id: caller.user_id.clone(),
            name: new.name.trim().to_string(),
            transport: String::new(),
            url: new.url,
            command: new
                .command
                .map(|c| serde_json::to_string(&c).unwrap_or_default()),
            header_names: "[]".into(),
            headers: None,
            shared: new.shared,
            enabled: new.enabled.unwrap_or(true),
            timeout_secs: new.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS),
            created_at: now,
            updated_at: now,
        };
        self.check(caller, &mut row, Some(&new.headers)).await?;
        self.store.insert_mcp_server(&row).await?;
        let link = self.launch(row.clone());
        if row.enabled {
            link.ready_within(FIRST_CONNECT_WAIT).await;
        }
        Ok(self.view(&row))
    }

    /// Change a server; its connection restarts with the new settings.
    pub async fn update(
        &self,
        caller: &Caller,
        id: &str,
        patch: ServerPatch,
    ) -> Result<Server, RemoteError> {
        let mut row = self.row(caller, id).await?;
        if patch.url.is_some() && patch.command.is_some() {
            return Err(RemoteError::Invalid(
                "give either `url` (streamable HTTP) or `command` (stdio), not both".into(),
            ));
        }
        if let Some(url) = patch.url {
            row.url = Some(url);
            row.command = None;
        }
        if let Some(command) = patch.command {
            check_command(&command)?;
            row.command = Some(serde_json::to_string(&command).unwrap_or_default());
            row.url = None;
        }
        if let Some(shared) = patch.shared {
            row.shared = shared;
        }
        if let Some(enabled) = patch.enabled {
            row.enabled = enabled;
        }
        if let Some(t) = patch.timeout_secs {
            row.timeout_secs = t;
        }
        row.updated_at = crate::store::now_ms().max(row.updated_at + 1);
        // Checked with the owner's rights: an administrator editing a user's
        // server does not lift its address rule.
        let owner = self.owner_caller(&row.owner_id, caller).await;
        self.check(&owner, &mut row, patch.headers.as_ref()).await?;
        if !self.store.update_mcp_server(&row).await? {
            return Err(RemoteError::NotFound(format!("no MCP server `{id}`")));
        }
        let link = self.launch(row.clone());
        if row.enabled {
            link.ready_within(FIRST_CONNECT_WAIT).await;
        }
        Ok(self.view(&row))
    }

    async fn owner_caller(&self, owner_id: &str, caller: &Caller) -> Caller {
        if owner_id == caller.user_id {
            return caller.clone();
        }
        match self.store.user(owner_id).await {
            Ok(u) => Caller {
                user_id: u.id.clone(),
                username: u.username.clone(),
                admin: u.role == crate::store::Role::Admin,
            },
            Err(_) => Caller {
                user_id: owner_id.to_string(),
                username: String::new(),
                admin: false,
            },
        }
    }

    /// Remove a server and close its connection.
    pub async fn delete(&self, caller: &Caller, id: &str) -> Result<(), RemoteError> {
        let row = self.row(caller, id).await?;
        self.store.delete_mcp_server(&row.id).await?;
        if let Ok(mut links) = self.links.write()
            && let Some(link) = links.remove(&row.id)
        {
            link.stop();
        }
        self.changes.send_modify(|n| *n += 1);
        if row.transport == "stdio"
            && let Some(sandboxes) = &self.sandboxes
        {
            super::stdio::remove_sandbox(sandboxes, &row).await;
        }
        Ok(())
    }

    /// One server with its status.
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<Server, RemoteError> {
        Ok(self.view(&self.row(caller, id).await?))
    }

    /// Retry a server's connection now and answer with the outcome.
    pub async fn reconnect(&self, caller: &Caller, id: &str) -> Result<Server, RemoteError> {
        let row = self.row(caller, id).await?;
        if row.enabled {
            let link = self.launch(row.clone());
            link.ready_within(FIRST_CONNECT_WAIT).await;
        }
        Ok(self.view(&row))
    }

    /// The caller's servers and the shared ones (every server for an
    /// administrator with `all`), oldest first.
    pub async fn list(&self, caller: &Caller, all: bool) -> Result<Vec<Server>, RemoteError> {
        let rows = self.store.mcp_servers().await?;
        Ok(rows
            .iter()
            .filter(|r| r.owner_id == caller.user_id || r.shared || (all && caller.admin))
            .map(|r| self.view(r))
            .collect())
    }

    /// The tools server `id` offers now.
    pub async fn tools(&self, caller: &Caller, id: &str) -> Result<Vec<ToolEntry>, RemoteError> {
        let row = self.row(caller, id).await?;
        Ok(self
            .link(&row.id)
            .map(|l| l.tools().as_ref().clone())
            .unwrap_or_default())
    }

    /// The links whose tools `caller` uses: their own, then shared ones, one
    /// per name, none named like a plugin the caller sees.
    fn usable(&self, caller: &Caller) -> Vec<Arc<Link>> {
        let mut links: Vec<Arc<Link>> = self
            .all_links()
            .into_iter()
            .filter(|l| l.row.enabled && (l.row.owner_id == caller.user_id || l.row.shared))
            .collect();
        links.sort_by_key(|l| (l.row.owner_id != caller.user_id, l.row.created_at));
        let mut seen = HashSet::new();
        links.retain(|l| {
            let plugin = self
                .plugins
                .get(&l.row.name)
                .is_some_and(|p| p.installed.visible_to(&caller.user_id, caller.admin));
            !plugin && seen.insert(l.row.name.clone())
        });
        links
    }

    /// Every tool `caller` may use, `plugin` being the server's name.
    pub fn visible(&self, caller: &Caller) -> Vec<ToolEntry> {
        self.usable(caller)
            .iter()
            .flat_map(|l| l.tools().as_ref().clone())
            .collect()
    }

    /// Whether `server` names an external server `caller` uses.
    pub fn offers(&self, caller: &Caller, server: &str) -> bool {
        self.usable(caller).iter().any(|l| l.row.name == server)
    }

    /// Hash what `caller` sees of external tools into `hasher`.
    pub fn fingerprint(&self, caller: &Caller, hasher: &mut impl Hasher) {
        for link in self.usable(caller) {
            link.row.id.hash(hasher);
            link.revision().hash(hasher);
        }
    }

    /// Call `tool` of external server `server` for `caller`, with the server's
    /// timeout; `cancel` sends `notifications/cancelled` to it.
    pub async fn call(
        &self,
        caller: &Caller,
        server: &str,
        tool: &str,
        arguments: Option<JsonObject>,
        cancel: &CancellationToken,
    ) -> Result<CallToolResult, CallError> {
        let link = self
            .usable(caller)
            .into_iter()
            .find(|l| l.row.name == server)
            .ok_or_else(|| CallError::Unknown(format!("no MCP server `{server}`")))?;
        let peer = match link.ready_within(RECONNECT_WAIT).await {
            Some(peer) => peer,
            None => {
                let why = link
                    .status()
                    .error
                    .unwrap_or_else(|| "not connected".into());
                return Err(CallError::Unavailable(format!(
                    "MCP server `{server}` is unavailable ({why}); switchyard keeps reconnecting"
                )));
            }
        };
        let tools = link.tools();
        let entry = tools.iter().find(|t| t.name == tool).ok_or_else(|| {
            CallError::Unknown(format!("MCP server `{server}` offers no tool `{tool}`"))
        })?;
        let arguments = arguments.unwrap_or_default();
        let text = serde_json::Value::Object(arguments.clone()).to_string();
        entry
            .check_arguments(&text)
            .map_err(|e| CallError::InvalidArguments(e.message))?;
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
        let timeout = Duration::from_secs(link.row.timeout_secs.max(1) as u64);
        let outcome = tokio::select! {
            r = tokio::time::timeout(timeout, peer.call_tool_once(params)) => r,
            () = cancel.cancelled() => return Err(CallError::Cancelled),
        };
        match outcome {
            Err(_) => Err(CallError::Timeout(format!(
                "MCP server `{server}` did not answer `{tool}` within {} s",
                timeout.as_secs()
            ))),
            Ok(Ok(CallToolResponse::Complete(result))) => Ok(result),
            Ok(Ok(_)) => Err(CallError::Failed(format!(
                "MCP server `{server}` asked for input or started a task; switchyard supports only plain tool results"
            ))),
            Ok(Err(ServiceError::McpError(e))) => Err(CallError::Failed(format!(
                "MCP server `{server}` refused the call: {}",
                e.message
            ))),
            Ok(Err(e)) => {
                let reason = format!("the connection broke: {e}");
                link.broke(&reason);
                Err(CallError::Unavailable(format!(
                    "MCP server `{server}` is unavailable ({reason}); switchyard keeps reconnecting"
                )))
            }
        }
    }
}

impl Drop for Remotes {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn open(
    row: McpServerRow,
    listener: Listener,
    store: Store,
    cipher: SecretCipher,
    sandboxes: Option<Arc<Sandboxes>>,
) -> Result<super::link::Client, String> {
    let owner = store
        .user(&row.owner_id)
        .await
        .map_err(|e| format!("its owner is unavailable: {e}"))?;
    let admin = owner.role == crate::store::Role::Admin;
    match row.transport.as_str() {
        "http" => {
            let headers: BTreeMap<String, String> = match &row.headers {
                Some(sealed) => cipher
                    .open(&sealed_label(&row.id), "headers", sealed)
                    .and_then(|json| serde_json::from_str(&json).ok())
                    .ok_or("its headers cannot be opened (was the secret key changed?)")?,
                None => BTreeMap::new(),
            };
            let url = row.url.as_deref().unwrap_or_default();
            let transport = super::transport::http(url, &headers, !admin)?;
            listener.connect(transport).await
        }
        "stdio" => {
            if !admin {
                return Err("only administrators' stdio servers run".into());
            }
            let sandboxes = sandboxes.ok_or("sandboxes are not available here")?;
            let command: Vec<String> =
                serde_json::from_str(row.command.as_deref().unwrap_or("[]")).unwrap_or_default();
            let pipe = super::stdio::start(&sandboxes, &row, &command).await?;
            listener.connect(pipe).await
        }
        other => Err(format!("unknown transport `{other}`")),
    }
}
