//! The object store of one simulated cluster: objects by group-resource, namespace and
//! name; one cluster-wide resourceVersion counter; a bounded history of changes for
//! watches.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

/// How many changes a cluster remembers for watches resuming from an older version. More
/// than [`WATCH_BUFFER`]: a watch closed for falling behind can resume where its client
/// stopped reading, as from kube-apiserver's watch cache, instead of re-listing.
pub const HISTORY_LIMIT: usize = 16_384;

/// How many changes a watch stream may fall behind before it is closed.
pub const WATCH_BUFFER: usize = 8192;

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object changed.
    Modified,
    /// The object was deleted.
    Deleted,
}

impl EventType {
    /// The `type` of the watch event on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change of one object.
#[derive(Debug)]
pub struct Change {
    /// resourceVersion of the change.
    pub rv: u64,
    /// Storage key (`group/plural`).
    pub storage: String,
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    /// What happened.
    pub type_: EventType,
    /// The object after the change (for deletes: the last state, with the delete's version).
    pub object: Arc<Value>,
    /// The object before the change, for MODIFIED (selector transitions).
    pub prev: Option<Arc<Value>>,
}

/// Objects of one group-resource, by (namespace, name). Shared with the watch history and
/// the answers that return them, so a write stores its object without copying it.
pub type Objects = BTreeMap<(String, String), Arc<Value>>;

/// The store.
pub struct Store {
    objects: BTreeMap<String, Objects>,
    rv: u64,
    history: VecDeque<Arc<Change>>,
    /// Versions at or below this one can no longer be watched from.
    compacted: u64,
    /// Per storage key: versions below this one can no longer be watched from that resource
    /// (its history began later, e.g. when its CRD was created).
    history_starts: BTreeMap<String, u64>,
    tx: broadcast::Sender<Arc<Change>>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    /// An empty store.
    pub fn new() -> Store {
        let (tx, _) = broadcast::channel(WATCH_BUFFER);
        Store {
            objects: BTreeMap::new(),
            rv: 0,
            history: VecDeque::new(),
            compacted: 0,
            history_starts: BTreeMap::new(),
            tx,
        }
    }

    /// The latest resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// The oldest version a watch can still start from.
    pub fn compacted(&self) -> u64 {
        self.compacted
    }

    /// One object.
    pub fn get(&self, storage: &str, namespace: &str, name: &str) -> Option<&Value> {
        self.get_shared(storage, namespace, name).map(|o| &**o)
    }

    /// One object, shared (no copy).
    pub fn get_shared(&self, storage: &str, namespace: &str, name: &str) -> Option<&Arc<Value>> {
        self.objects
            .get(storage)?
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// All objects of a group-resource (sorted by namespace, then name).
    pub fn all(&self, storage: &str) -> Option<&Objects> {
        self.objects.get(storage)
    }

    /// Objects of a group-resource, optionally in one namespace.
    pub fn list<'a>(
        &'a self,
        storage: &str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .get(storage)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(move |((ns, _), _)| namespace.is_none_or(|want| want == ns))
            .map(|(_, v)| &**v)
    }

    /// Storage keys that hold objects.
    pub fn storages(&self) -> Vec<String> {
        self.objects.keys().cloned().collect()
    }

    /// Create or replace an object, stamping a new resourceVersion; returns the stored
    /// object.
    pub fn put(&mut self, storage: &str, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        let rv = self.rv;
        obj["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let namespace = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let obj = Arc::new(obj);
        let prev = self
            .objects
            .entry(storage.to_string())
            .or_default()
            .insert((namespace.clone(), name), obj.clone());
        let type_ = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(Change {
            rv,
            storage: storage.to_string(),
            namespace,
            type_,
            object: obj.clone(),
            prev,
        });
        obj
    }

    /// Remove an object; returns its last state, stamped with the delete's version.
    pub fn remove(&mut self, storage: &str, namespace: &str, name: &str) -> Option<Value> {
        let removed = self
            .objects
            .get_mut(storage)?
            .remove(&(namespace.to_string(), name.to_string()))?;
        let mut obj = Arc::unwrap_or_clone(removed);
        self.rv += 1;
        let rv = self.rv;
        obj["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        self.record(Change {
            rv,
            storage: storage.to_string(),
            namespace: namespace.to_string(),
            type_: EventType::Deleted,
            object: Arc::new(obj.clone()),
            prev: None,
        });
        Some(obj)
    }

    /// Drop every stored object of a group-resource (a CRD was deleted), with events.
    pub fn remove_all(&mut self, storage: &str) {
        let keys: Vec<(String, String)> = self
            .objects
            .get(storage)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for (ns, name) in keys {
            self.remove(storage, &ns, &name);
        }
    }

    fn record(&mut self, change: Change) {
        let change = Arc::new(change);
        self.history.push_back(change.clone());
        while self.history.len() > HISTORY_LIMIT {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
        // No receivers is fine.
        let _ = self.tx.send(change);
    }

    /// Changes after `rv` (exclusive), or `None` when `rv` is older than the history window.
    pub fn since(&self, rv: u64) -> Option<Vec<Arc<Change>>> {
        if rv < self.compacted {
            return None;
        }
        Some(self.history.iter().filter(|c| c.rv > rv).cloned().collect())
    }

    /// The history of `storage` begins now: versions before the current one are too old to
    /// watch it from (a list now returns the current one, which can be watched from).
    pub fn start_history(&mut self, storage: &str) {
        self.history_starts.insert(storage.to_string(), self.rv);
    }

    /// Whether a watch of `storage` from version `rv` is too old to be served.
    pub fn too_old(&self, storage: &str, rv: u64) -> bool {
        rv < self.compacted
            || self
                .history_starts
                .get(storage)
                .is_some_and(|start| rv < *start)
    }

    /// Subscribe to future changes.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }

    /// Forget the history: every version up to now becomes too old to watch from.
    pub fn compact(&mut self) {
        self.rv += 1;
        self.compacted = self.rv;
        self.history.clear();
    }
}
