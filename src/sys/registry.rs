//! Things shared by key while anyone holds them: one Docker events stream per host, one
//! systemd bus connection per address. The daemon owns the registry and passes it in, so
//! nothing lives in a global and a test gets registries of its own.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, Weak};

/// Values by key, held weakly: when the last user of a value drops it, it goes — unless
/// the registry keeps what it made ([`Registry::keeping`]).
pub struct Registry<K, T> {
    map: Mutex<HashMap<K, Weak<T>>>,
    /// Strong references to everything made, for values that must outlive their users
    /// (a bus connection across a reload that restarts every probe).
    kept: Option<Mutex<Vec<Arc<T>>>>,
}

impl<K, T> Default for Registry<K, T> {
    fn default() -> Self {
        Registry {
            map: Mutex::new(HashMap::new()),
            kept: None,
        }
    }
}

impl<K, T> Registry<K, T> {
    /// A registry that keeps every value it makes for as long as it lives itself.
    pub fn keeping() -> Self {
        Registry {
            map: Mutex::new(HashMap::new()),
            kept: Some(Mutex::new(Vec::new())),
        }
    }
}

impl<K: Eq + Hash + Clone, T> Registry<K, T> {
    /// The live value for `key`, or a new one from `make`.
    pub fn get_or_make(&self, key: &K, make: impl FnOnce() -> Arc<T>) -> Arc<T> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = map.get(key).and_then(Weak::upgrade) {
            return v;
        }
        let v = make();
        if let Some(kept) = &self.kept {
            kept.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(v.clone());
        }
        map.retain(|_, w| w.strong_count() > 0);
        map.insert(key.clone(), Arc::downgrade(&v));
        v
    }

    /// How many values are alive.
    pub fn live(&self) -> usize {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.values().filter(|w| w.strong_count() > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_while_held_and_gone_after() {
        let r: Registry<String, u32> = Registry::default();
        let a = r.get_or_make(&"x".into(), || Arc::new(1));
        let b = r.get_or_make(&"x".into(), || Arc::new(2));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(r.live(), 1);
        drop((a, b));
        assert_eq!(r.live(), 0);
        assert_eq!(*r.get_or_make(&"x".into(), || Arc::new(3)), 3);
    }

    #[test]
    fn a_keeping_registry_outlives_the_users() {
        let r: Registry<String, u32> = Registry::keeping();
        drop(r.get_or_make(&"x".into(), || Arc::new(1)));
        assert_eq!(r.live(), 1);
        assert_eq!(*r.get_or_make(&"x".into(), || Arc::new(2)), 1);
    }
}
