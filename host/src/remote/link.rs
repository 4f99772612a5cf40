//! One live connection to an external MCP server: a task that connects (MCP
//! `initialize`), reads the tool list, follows `tools/list_changed`, checks the
//! connection with `ping`, and after any failure retries with backoff (at once
//! when a call needs the server). Its status says which of that is happening.

use super::spec;
use crate::store::McpServerRow;
use crate::tools::ToolEntry;
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::{ClientHandler, Peer, RoleClient, ServiceExt};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Longest a connection attempt (transport and `initialize`) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest reading the tool list may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a ready connection is checked with `ping`.
const PING_EVERY: Duration = Duration::from_secs(30);
/// Most pages of a tool list read.
const MAX_PAGES: usize = 20;
/// Longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Why a connected client was given up.
enum End {
    /// The link was stopped for good.
    Stopped,
    /// A call found it broken and already recorded why.
    Broke,
    /// The connection failed for this reason.
    Lost(String),
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Connecting or reading the tool list.
    Connecting,
    /// Connected; its tools are offered.
    Ready,
    /// The last attempt failed; retried with backoff.
    Error,
    /// Switched off by its owner.
    Disabled,
}

/// A server's connection status.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Status {
    /// Where the connection stands.
    pub state: State,
    /// Why the last attempt or call failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the state last changed (ms since the epoch).
    pub since_ms: i64,
    /// Tools offered.
    pub tools: usize,
    /// Tools the server listed that are not offered.
    pub skipped: usize,
    /// Why they were skipped (the first few).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_reasons: Vec<String>,
    /// The server's name and version, from `initialize`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_info: Option<String>,
    /// Failed attempts since it was last ready.
    pub failures: u32,
}

impl Status {
    /// The status of a server without a running connection.
    pub fn stopped(enabled: bool) -> Self {
        Self::new(if enabled {
            State::Connecting
        } else {
            State::Disabled
        })
    }

    fn new(state: State) -> Self {
        Self {
            state,
            error: None,
            since_ms: crate::store::now_ms(),
            tools: 0,
            skipped: 0,
            skipped_reasons: Vec::new(),
            server_info: None,
            failures: 0,
        }
    }
}

/// What opens a connection: the HTTP transport, or a command in a sandbox.
pub type Opener =
    Box<dyn Fn() -> futures_util::future::BoxFuture<'static, Result<Client, String>> + Send + Sync>;

/// A connected client session.
pub type Client = RunningService<RoleClient, Listener>;

/// The client side of the session: identifies the host and hears list changes.
#[derive(Clone)]
pub struct Listener {
    refetch: Arc<Notify>,
}

impl ClientHandler for Listener {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("switchyard", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.refetch.notify_one();
    }
}

impl Listener {
    /// Serve this client over `transport` (MCP `initialize` included).
    pub async fn connect<T, E, A>(self, transport: T) -> Result<Client, String>
    where
        T: rmcp::transport::IntoTransport<RoleClient, E, A>,
        E: std::error::Error + Send + Sync + 'static,
    {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.serve(transport)).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(format!("cannot connect: {e}")),
            Err(_) => Err(format!(
                "no answer to `initialize` within {} s",
                CONNECT_TIMEOUT.as_secs()
            )),
        }
    }
}

/// One server's live connection.
pub struct Link {
    /// The server as registered.
    pub row: McpServerRow,
    status: Mutex<Status>,
    tools: RwLock<Arc<Vec<ToolEntry>>>,
    peer: Mutex<Option<Peer<RoleClient>>>,
    revision: AtomicU64,
    nudge: Notify,
    broken: Notify,
    refetch: Arc<Notify>,
    stop: CancellationToken,
    moved: tokio::sync::watch::Sender<u64>,
}

impl Link {
    /// A link for `row`, not yet running.
    pub fn new(row: McpServerRow) -> Arc<Self> {
        let state = if row.enabled {
            State::Connecting
        } else {
            State::Disabled
        };
        Arc::new(Self {
            row,
            status: Mutex::new(Status::new(state)),
            tools: RwLock::default(),
            peer: Mutex::default(),
            revision: AtomicU64::new(0),
            nudge: Notify::new(),
            broken: Notify::new(),
            refetch: Arc::new(Notify::new()),
            stop: CancellationToken::new(),
            moved: tokio::sync::watch::Sender::new(0),
        })
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|_| Status::new(State::Error))
    }

    /// The tools offered now (none unless ready).
    pub fn tools(&self) -> Arc<Vec<ToolEntry>> {
        self.tools.read().map(|t| t.clone()).unwrap_or_default()
    }

    /// Changes whenever the offered tools or the readiness change.
    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::Relaxed)
    }

    /// The connected client, if ready.
    pub fn peer(&self) -> Option<Peer<RoleClient>> {
        self.peer.lock().ok().and_then(|p| p.clone())
    }

    /// A listener that tells this link when the server's tools change.
    pub fn listener(&self) -> Listener {
        Listener {
            refetch: self.refetch.clone(),
        }
    }

    /// Stop the connection for good.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Note that a call found the connection broken: the status says so and
    /// the tools leave the lists before this returns; then reconnect.
    pub fn broke(&self, reason: &str) {
        tracing::warn!(server = %self.row.name, error = %reason, "external MCP server connection lost");
        self.set_error(reason.to_string());
        self.broken.notify_one();
    }

    /// Retry now if the link is waiting between attempts (an attempt under
    /// way is not disturbed, and nothing is remembered for later ones).
    pub fn retry_now(&self) {
        self.nudge.notify_waiters();
    }

    /// Wait up to `limit` for the link to be ready, retrying at once if it is
    /// waiting between attempts; `None` when it is not ready by then or the
    /// attempt failed.
    pub async fn ready_within(&self, limit: Duration) -> Option<Peer<RoleClient>> {
        if let Some(peer) = self.peer() {
            return Some(peer);
        }
        if !self.row.enabled {
            return None;
        }
        let mut moved = self.moved.subscribe();
        let failures = self.status().failures;
        self.retry_now();
        let _ = tokio::time::timeout(limit, async {
            while self.peer().is_none() && self.status().failures <= failures {
                if moved.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        self.peer()
    }

    fn update(&self, change: impl FnOnce(&mut Status)) {
        if let Ok(mut status) = self.status.lock() {
            let before = status.state;
            change(&mut status);
            if status.state != before {
                status.since_ms = crate::store::now_ms();
            }
        }
        self.moved.send_modify(|n| *n += 1);
    }

    fn set_error(&self, reason: String) {
        let had_peer = self.peer.lock().ok().and_then(|mut p| p.take()).is_some();
        if let Ok(mut tools) = self.tools.write() {
            *tools = Arc::default();
        }
        if had_peer {
            self.revision.fetch_add(1, Ordering::Relaxed);
        }
        self.update(|s| {
            s.state = State::Error;
            s.error = Some(reason);
            s.tools = 0;
            s.failures += 1;
        });
    }

    /// Run the connection until stopped; `changed` is called whenever the
    /// offered tools change.
    pub async fn run(self: Arc<Self>, open: Opener, changed: Arc<dyn Fn() + Send + Sync>) {
        if !self.row.enabled {
            return;
        }
        loop {
            self.update(|s| s.state = State::Connecting);
            let attempt = tokio::select! {
                r = open() => r,
                () = self.stop.cancelled() => return,
            };
            match attempt {
                Ok(client) => {
                    let end = self.serve(&client, &*changed).await;
                    let _ = client.cancel().await;
                    match end {
                        End::Stopped => return,
                        End::Broke => changed(),
                        End::Lost(reason) => {
                            tracing::warn!(server = %self.row.name, error = %reason, "external MCP server connection lost");
                            self.set_error(reason);
                            changed();
                        }
                    }
                }
                Err(reason) => {
                    tracing::warn!(server = %self.row.name, error = %reason, "cannot connect to an external MCP server");
                    self.set_error(reason);
                }
            }
            let failures = self.status().failures.max(1);
            let delay = Duration::from_secs(1 << (failures - 1).min(6)).min(MAX_BACKOFF);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.nudge.notified() => {}
                () = self.stop.cancelled() => return,
            }
        }
    }

    /// Use a connected client until it breaks or the link stops.
    async fn serve(&self, client: &Client, changed: &(dyn Fn() + Send + Sync)) -> End {
        let peer = client.peer().clone();
        let info = client
            .peer_info()
            .and_then(|i| i.server_info.clone())
            .map(|i| format!("{} {}", i.name, i.version));
        if let Err(reason) = self.fetch_tools(&peer).await {
            return End::Lost(reason);
        }
        if let Ok(mut p) = self.peer.lock() {
            *p = Some(peer.clone());
        }
        self.revision.fetch_add(1, Ordering::Relaxed);
        self.update(|s| {
            s.state = State::Ready;
            s.error = None;
            s.failures = 0;
            s.server_info = info.map(|i| i.chars().take(200).collect());
        });
        changed();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        let mut closed = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return End::Stopped,
                () = self.broken.notified() => return End::Broke,
                () = self.refetch.notified() => {
                    if let Err(reason) = self.fetch_tools(&peer).await {
                        return End::Lost(reason);
                    }
                    self.revision.fetch_add(1, Ordering::Relaxed);
                    self.update(|_| {});
                    changed();
                }
                _ = ping.tick() => {
                    match tokio::time::timeout(LIST_TIMEOUT, peer.send_request(rmcp::model::ClientRequest::PingRequest(Default::default()))).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return End::Lost(format!("ping failed: {e}")),
                        Err(_) => return End::Lost(format!("no answer to ping within {} s", LIST_TIMEOUT.as_secs())),
                    }
                }
                _ = closed.tick() => {
                    if peer.is_transport_closed() {
                        return End::Lost("the server closed the connection".into());
                    }
                }
            }
        }
    }

    async fn fetch_tools(&self, peer: &Peer<RoleClient>) -> Result<(), String> {
        let read = async {
            let mut listed = Vec::new();
            let mut cursor = None;
            for _ in 0..MAX_PAGES {
                let page = peer
                    .list_tools(Some(
                        rmcp::model::PaginatedRequestParams::default().with_cursor(cursor),
                    ))
                    .await
                    .map_err(|e| format!("cannot list its tools: {e}"))?;
                listed.extend(page.tools);
                cursor = page.next_cursor;
                if cursor.is_none() || listed.len() > spec::MAX_REMOTE_TOOLS {
                    break;
                }
            }
            Ok::<_, String>(listed)
        };
        let listed = tokio::time::timeout(LIST_TIMEOUT, read)
            .await
            .map_err(|_| {
                format!(
                    "its tool list took longer than {} s",
                    LIST_TIMEOUT.as_secs()
                )
            })??;
        let checked = spec::check(&self.row.name, listed);
        let count = checked.tools.len();
        if let Ok(mut tools) = self.tools.write() {
            *tools = Arc::new(checked.tools);
        }
        self.update(|s| {
            s.tools = count;
            s.skipped = checked.skipped;
            s.skipped_reasons = checked.reasons;
        });
        Ok(())
    }
}
