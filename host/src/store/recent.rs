//! Short-lived copies of rows that every webhook reads — a channel
//! instance's row and opened secrets, the session a conversation is bound to —
//! so a burst of deliveries does not read the store for each. Their users
//! clear them when this process changes what they copy; changes made by
//! another host sharing the store show within [`TTL`].

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a copy is used.
pub const TTL: Duration = Duration::from_secs(2);
/// Most copies kept; beyond it the cache starts over.
const MAX_ENTRIES: usize = 10_000;

/// Values remembered for [`TTL`].
pub struct Recent<K, V> {
    map: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K, V> Default for Recent<K, V> {
    fn default() -> Self {
        Self {
            map: Mutex::default(),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Recent<K, V> {
    /// The value for `key`, if remembered less than [`TTL`] ago.
    pub fn get(&self, key: &K) -> Option<V> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(v, _)| v.clone())
    }

    /// Remember `value` for `key`.
    pub fn put(&self, key: K, value: V) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, (value, Instant::now()));
    }

    /// Forget `key`.
    pub fn forget(&self, key: &K) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Forget everything.
    pub fn clear(&self) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::Recent;

    #[test]
    fn values_are_kept_until_cleared() {
        let r: Recent<&str, u32> = Recent::default();
        assert_eq!(r.get(&"a"), None);
        r.put("a", 1);
        assert_eq!(r.get(&"a"), Some(1));
        r.forget(&"a");
        assert_eq!(r.get(&"a"), None);
        r.put("a", 1);
        r.clear();
        assert_eq!(r.get(&"a"), None);
    }
}
