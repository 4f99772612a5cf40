//! The connected MCP sessions: who owns each HTTP session id, and telling each
//! session when what its user sees has changed (`list_changed` notifications).

use super::catalog;
use super::handler::Subscriptions;
use crate::server::Services;
use crate::tools::Caller;
use rmcp::model::LoggingLevel;
use rmcp::{Peer, RoleServer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Most HTTP session owners remembered; the oldest are forgotten beyond it.
const MAX_OWNERS: usize = 10_000;
/// How long sending notifications to one session may take.
pub const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

struct Session {
    peer: Peer<RoleServer>,
    caller: Caller,
    seen: u64,
    subscriptions: Subscriptions,
}

/// What the direct `tools/call` path needs of an HTTP session.
#[derive(Clone)]
pub struct Attached {
    /// The session's client.
    pub peer: Peer<RoleServer>,
    /// The session's minimum log level.
    pub level: Arc<Mutex<LoggingLevel>>,
    /// When a request of the session last went through rmcp (which keeps the
    /// session alive; the direct path does not).
    pub last_rmcp: Arc<Mutex<std::time::Instant>>,
}

impl Attached {
    /// Whether rmcp saw the session recently enough that it is not about to
    /// expire it for idleness (it does after 5 minutes).
    pub fn fresh(&self) -> bool {
        self.last_rmcp
            .lock()
            .is_ok_and(|t| t.elapsed() < std::time::Duration::from_secs(60))
    }
}

/// The registry of live sessions.
#[derive(Default)]
pub struct Hub {
    sessions: Mutex<Vec<Session>>,
    owners: Mutex<HashMap<String, (String, u64)>>,
    attached: Mutex<HashMap<String, Attached>>,
    inflight: Mutex<HashMap<(String, String), CancellationToken>>,
    serial: std::sync::atomic::AtomicU64,
}

/// The key of a JSON-RPC request id (`1` and `"1"` are different ids).
pub fn request_key(id: &rmcp::model::RequestId) -> String {
    serde_json::to_string(id).unwrap_or_default()
}

/// Removes a tracked call from the hub when dropped.
pub struct Tracked<'a> {
    hub: &'a Hub,
    key: (String, String),
    token: CancellationToken,
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        if let Ok(mut inflight) = self.hub.inflight.lock()
            && inflight.get(&self.key).is_some_and(|t| t == &self.token)
        {
            inflight.remove(&self.key);
        }
    }
}

impl Hub {
    /// A hub that follows plugin, installed-skill and external-server tool
    /// changes of `s` until the services are dropped.
    pub fn start(s: &Arc<Services>) -> Arc<Self> {
        let hub = Arc::new(Self::default());
        let mut changes = s.plugins.changes();
        let mut skills = s.skills.changes();
        let mut remotes = s.remotes.changes();
        let services = Arc::downgrade(s);
        let weak = Arc::downgrade(&hub);
        tokio::spawn(async move {
            loop {
                let moved = tokio::select! {
                    r = changes.changed() => r.is_ok(),
                    r = skills.changed() => r.is_ok(),
                    r = remotes.changed() => r.is_ok(),
                };
                if !moved {
                    break;
                }
                let (Some(s), Some(hub)) = (services.upgrade(), weak.upgrade()) else {
                    break;
                };
                hub.notify_changes(&s).await;
            }
        });
        hub
    }

    /// Remember a session that completed `initialize`.
    pub fn register(
        &self,
        s: &Services,
        peer: Peer<RoleServer>,
        caller: Caller,
        subscriptions: Subscriptions,
    ) {
        let seen = catalog::fingerprint(&s.plugins, &s.skills, &s.remotes, &caller);
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.retain(|x| !x.peer.is_transport_closed());
            sessions.push(Session {
                peer,
                caller,
                seen,
                subscriptions,
            });
        }
    }

    /// Number of sessions still connected.
    pub fn live_sessions(&self) -> usize {
        self.sessions.lock().map_or(0, |mut sessions| {
            sessions.retain(|x| !x.peer.is_transport_closed());
            sessions.len()
        })
    }

    /// Send the list_changed notifications (and `resources/updated` for each
    /// subscribed URI, whose contents may have changed) to every session whose
    /// view moved.
    async fn notify_changes(&self, s: &Services) {
        let mut changed = Vec::new();
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.retain(|x| !x.peer.is_transport_closed());
            for session in sessions.iter_mut() {
                let now = catalog::fingerprint(&s.plugins, &s.skills, &s.remotes, &session.caller);
                if now != session.seen {
                    session.seen = now;
                    let uris: Vec<String> = session
                        .subscriptions
                        .lock()
                        .map(|s| s.iter().cloned().collect())
                        .unwrap_or_default();
                    changed.push((session.peer.clone(), uris));
                }
            }
        }
        for (peer, uris) in changed {
            let notify = async move {
                let _ = peer.notify_tool_list_changed().await;
                let _ = peer.notify_prompt_list_changed().await;
                let _ = peer.notify_resource_list_changed().await;
                for uri in uris {
                    let param = rmcp::model::ResourceUpdatedNotificationParam::new(uri);
                    let _ = peer.notify_resource_updated(param).await;
                }
            };
            // A client that stopped reading its stream must not keep tasks alive.
            tokio::spawn(tokio::time::timeout(SEND_TIMEOUT, notify));
        }
    }

    /// Record that HTTP session `id` belongs to user `user_id`.
    pub fn set_owner(&self, id: &str, user_id: &str) {
        let serial = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut owners) = self.owners.lock() {
            if owners.len() >= MAX_OWNERS
                && let Some(oldest) = owners
                    .iter()
                    .min_by_key(|(_, (_, n))| *n)
                    .map(|(k, _)| k.clone())
            {
                owners.remove(&oldest);
            }
            owners.insert(id.to_string(), (user_id.to_string(), serial));
        }
    }

    /// Whether HTTP session `id` belongs to `user_id`.
    pub fn owned_by(&self, id: &str, user_id: &str) -> bool {
        self.owners
            .lock()
            .is_ok_and(|owners| owners.get(id).is_some_and(|(u, _)| u == user_id))
    }

    /// Forget HTTP session `id`.
    pub fn forget(&self, id: &str) {
        if let Ok(mut owners) = self.owners.lock() {
            owners.remove(id);
        }
        if let Ok(mut attached) = self.attached.lock() {
            attached.remove(id);
        }
    }

    /// Remember the client and log level of HTTP session `id` (once initialized).
    pub fn attach(&self, id: &str, session: Attached) {
        if let Ok(mut attached) = self.attached.lock() {
            attached.retain(|_, s| !s.peer.is_transport_closed());
            attached.insert(id.to_string(), session);
        }
    }

    /// Note that a request of HTTP session `id` went through rmcp.
    pub fn touch(&self, id: &str) {
        if let Ok(attached) = self.attached.lock()
            && let Some(session) = attached.get(id)
            && let Ok(mut t) = session.last_rmcp.lock()
        {
            *t = std::time::Instant::now();
        }
    }

    /// Keep only the session owners for which `open` holds.
    pub fn retain_owners(&self, open: impl Fn(&str) -> bool) {
        if let Ok(mut owners) = self.owners.lock() {
            owners.retain(|id, _| open(id));
        }
        if let Ok(mut attached) = self.attached.lock() {
            attached.retain(|id, _| open(id));
        }
    }

    /// How many sessions `user_id` owns.
    pub fn sessions_of(&self, user_id: &str) -> usize {
        self.owners.lock().map_or(0, |owners| {
            owners.values().filter(|(u, _)| u == user_id).count()
        })
    }

    /// The attached HTTP session `id`, while its transport is open.
    pub fn attached(&self, id: &str) -> Option<Attached> {
        let attached = self.attached.lock().ok()?;
        attached
            .get(id)
            .filter(|s| !s.peer.is_transport_closed())
            .cloned()
    }

    /// Track request `request_id` of session `id` so `notifications/cancelled` can stop it.
    pub fn track(
        &self,
        id: &str,
        request_id: &rmcp::model::RequestId,
        cancel: CancellationToken,
    ) -> Tracked<'_> {
        let key = (id.to_string(), request_key(request_id));
        if let Ok(mut inflight) = self.inflight.lock() {
            inflight.insert(key.clone(), cancel.clone());
        }
        Tracked {
            hub: self,
            key,
            token: cancel,
        }
    }

    /// Cancel tracked request `request_id` of session `id`, if it is running.
    pub fn cancel(&self, id: &str, request_id: &rmcp::model::RequestId) {
        let token = self.inflight.lock().ok().and_then(|inflight| {
            inflight
                .get(&(id.to_string(), request_key(request_id)))
                .cloned()
        });
        if let Some(token) = token {
            token.cancel();
        }
    }
}
