//! Helpers for kube-runtime's reflector stores (the controllers' caches).

use kube::runtime::reflector::Store;

/// Waits until `store` has been listed once.
///
/// `Store::wait_until_ready` keeps only the waker of the last task that polled it, and other
/// tasks (a controller's runner, other reconciles) may wait on the same store; so this waits
/// in short slices, each of which re-registers (readiness is memoised once any waiter has
/// seen it).
pub async fn store_ready<K>(store: &Store<K>)
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    const SLICE: std::time::Duration = std::time::Duration::from_millis(20);
    loop {
        if let Ok(r) = tokio::time::timeout(SLICE, store.wait_until_ready()).await {
            if r.is_err() {
                // The writer is gone: the store will never fill; do not wait forever.
                tracing::warn!("cache writer dropped before the first list");
            }
            return;
        }
    }
}
