//! A short-lived cache of verified credentials. Revocations through this
//! process clear it; a check that began before a clear is not remembered, so a
//! revocation racing a lookup cannot leave a stale entry behind.

use super::Identity;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a verified credential is trusted without asking the database.
const CACHE_TTL: Duration = Duration::from_secs(5);
/// Entries kept before expired ones are swept.
const SWEEP_AT: usize = 10_000;

/// Which kind of credential an entry is for.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    /// Keyed by login session id.
    Session,
    /// Keyed by API token hash.
    ApiToken,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, (Identity, Instant)>,
    api_tokens: HashMap<String, (Identity, Instant)>,
    generation: u64,
}

impl Inner {
    fn map(&mut self, kind: Kind) -> &mut HashMap<String, (Identity, Instant)> {
        match kind {
            Kind::Session => &mut self.sessions,
            Kind::ApiToken => &mut self.api_tokens,
        }
    }
}

/// Verified credentials, by kind and key.
#[derive(Default)]
pub(super) struct CredentialCache {
    inner: Mutex<Inner>,
}

impl CredentialCache {
    /// The generation to pass to [`Self::remember`] for a lookup starting now.
    pub(super) fn generation(&self) -> u64 {
        self.inner.lock().map_or(0, |i| i.generation)
    }

    /// A fresh cached identity.
    pub(super) fn get(&self, kind: Kind, key: &str) -> Option<Identity> {
        let mut inner = self.inner.lock().ok()?;
        let (identity, at) = inner.map(kind).get(key)?;
        (at.elapsed() < CACHE_TTL).then(|| identity.clone())
    }

    /// Remember an identity looked up since `generation` (dropped if the cache
    /// was cleared meanwhile).
    pub(super) fn remember(&self, kind: Kind, key: String, identity: &Identity, generation: u64) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.generation != generation {
            return;
        }
        let map = inner.map(kind);
        if map.len() > SWEEP_AT {
            map.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        map.insert(key, (identity.clone(), Instant::now()));
    }

    /// Forget everything.
    pub(super) fn clear(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.generation += 1;
            inner.sessions.clear();
            inner.api_tokens.clear();
        }
    }
}
