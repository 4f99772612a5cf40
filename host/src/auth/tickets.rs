//! Short-lived, single-use tickets for browser WebSockets, which cannot send an
//! `Authorization` header: `POST /api/v1/ws-tickets` trades the caller's
//! credential for a ticket that opens one WebSocket within [`TICKET_TTL`] as
//! that caller (same user, session or token, scopes). Tickets live in this
//! process's memory only: a restart or another replica refuses them, which
//! fails closed.

use super::{Identity, token_hash};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a ticket stays valid.
pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// Prefix of ticket values.
pub const TICKET_PREFIX: &str = "syt_";
/// Unused tickets kept at most (older ones are swept first).
const MAX_TICKETS: usize = 10_000;

/// Outstanding tickets by value hash.
#[derive(Default)]
pub(super) struct Tickets {
    live: Mutex<HashMap<String, (Identity, Instant)>>,
}

impl Tickets {
    /// A new ticket for `who`.
    pub(super) fn issue(&self, who: &Identity) -> String {
        let value = format!("{TICKET_PREFIX}{}", hex::encode(rand::random::<[u8; 24]>()));
        if let Ok(mut live) = self.live.lock() {
            if live.len() >= MAX_TICKETS {
                live.retain(|_, (_, at)| at.elapsed() < TICKET_TTL);
            }
            live.insert(token_hash(&value), (who.clone(), Instant::now()));
        }
        value
    }

    /// The identity of a live ticket, which is used up.
    pub(super) fn redeem(&self, value: &str) -> Option<Identity> {
        let mut live = self.live.lock().ok()?;
        let (who, at) = live.remove(&token_hash(value))?;
        (at.elapsed() < TICKET_TTL).then_some(who)
    }

    /// Forget every ticket (after revocations).
    pub(super) fn clear(&self) {
        if let Ok(mut live) = self.live.lock() {
            live.clear();
        }
    }
}
