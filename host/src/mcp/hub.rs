//! The connected MCP sessions: who owns each HTTP session id, and telling each
//! session when what its user sees has changed (`list_changed` notifications).

use super::catalog;
use super::handler::Subscriptions;
use crate::server::Services;
use crate::tools::Caller;
use rmcp::{Peer, RoleServer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Most HTTP session owners remembered; the oldest are forgotten beyond it.
const MAX_OWNERS: usize = 10_000;

struct Session {
    peer: Peer<RoleServer>,
    caller: Caller,
    seen: u64,
    subscriptions: Subscriptions,
}

/// The registry of live sessions.
#[derive(Default)]
pub struct Hub {
    sessions: Mutex<Vec<Session>>,
    owners: Mutex<HashMap<String, (String, u64)>>,
    serial: std::sync::atomic::AtomicU64,
}

impl Hub {
    /// A hub that follows plugin changes of `s` until the services are dropped.
    pub fn start(s: &Arc<Services>) -> Arc<Self> {
        let hub = Arc::new(Self::default());
        let mut changes = s.plugins.changes();
        let services = Arc::downgrade(s);
        let weak = Arc::downgrade(&hub);
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
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
        let seen = catalog::fingerprint(&s.plugins, &caller);
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
                let now = catalog::fingerprint(&s.plugins, &session.caller);
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
            tokio::spawn(async move {
                let _ = peer.notify_tool_list_changed().await;
                let _ = peer.notify_prompt_list_changed().await;
                let _ = peer.notify_resource_list_changed().await;
                for uri in uris {
                    let param = rmcp::model::ResourceUpdatedNotificationParam::new(uri);
                    let _ = peer.notify_resource_updated(param).await;
                }
            });
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
    }
}
