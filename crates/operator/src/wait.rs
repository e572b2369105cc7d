//! Waiting for a condition that a [`Notify`] announces, with a deadline.

use tokio::sync::Notify;
use tokio::time::Instant;

/// Returns once `done()` holds, or at `until`. `changed` must be notified (with
/// `notify_waiters`) whenever `done()` may have become true.
pub async fn until(changed: &Notify, until: Instant, done: impl Fn() -> bool) {
    loop {
        let notified = changed.notified();
        tokio::pin!(notified);
        // Registered before the check, so a change between the two is not missed.
        notified.as_mut().enable();
        if done() || tokio::time::timeout_at(until, notified).await.is_err() {
            return;
        }
    }
}
