//! Values read from the store and trusted for a moment: API keys, and the tenant set-up a send
//! check reads for an agent's licence. A change (a revoked key, a new licence) takes effect
//! within [`KEY_CACHE_TTL`]. Ages are measured on the monotonic clock: they say how old a read
//! is, never what time it is.

use std::time::Instant;

/// How long an API key (or a tenant set-up read for a send check) is trusted.
pub const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Values read from the store, trusted for [`KEY_CACHE_TTL`] after the read.
pub struct TtlCache<K, V>(std::sync::Mutex<rustc_hash::FxHashMap<K, (Instant, V)>>);

impl<K, V> Default for TtlCache<K, V> {
    fn default() -> Self {
        TtlCache(std::sync::Mutex::default())
    }
}

impl<K: std::hash::Hash + Eq, V: Clone> TtlCache<K, V> {
    /// The value, if it was read less than [`KEY_CACHE_TTL`] ago.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let cache = self.0.lock().expect("not poisoned");
        cache
            .get(key)
            .filter(|(at, _)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(_, v)| v.clone())
    }

    /// Keeps a value just read (and lets go of the stale ones).
    pub fn put(&self, key: K, value: V) {
        let mut cache = self.0.lock().expect("not poisoned");
        cache.retain(|_, (at, _)| at.elapsed() < KEY_CACHE_TTL);
        cache.insert(key, (Instant::now(), value));
    }

    /// Forgets everything (after a write that changes what was read).
    pub fn clear(&self) {
        self.0.lock().expect("not poisoned").clear();
    }
}
