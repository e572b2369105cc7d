//! Runtime fault knobs of one simulated cluster.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Knobs {
    /// Error rate by verb (`None` = every verb).
    error_rates: HashMap<Option<String>, f64>,
    throttle_rate: f64,
    retry_after_secs: u64,
    latency: Duration,
    status_conflict_rate: f64,
    drop_watches_after: Option<Duration>,
}

/// Fault injection for one cluster, settable at run time. Faults apply to resource
/// requests (not to discovery or OpenAPI documents).
pub struct Faults {
    knobs: Mutex<Knobs>,
    /// Cancelled to close every open watch stream; replaced afterwards.
    watches: Mutex<CancellationToken>,
    /// `true` while the cluster is unreachable.
    pub(crate) unreachable: watch::Sender<bool>,
    /// Called by `expire_watches` to compact the store.
    pub(crate) on_expire: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").finish_non_exhaustive()
    }
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            knobs: Mutex::new(Knobs::default()),
            watches: Mutex::new(CancellationToken::new()),
            unreachable: watch::channel(false).0,
            on_expire: Mutex::new(None),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the server should do with one request, decided by the knobs.
#[derive(Debug, PartialEq)]
pub(crate) enum Injected {
    /// Answer 500 or 503.
    Error(u16),
    /// Answer 429 with Retry-After.
    Throttle(u64),
}

impl Faults {
    /// Fail a fraction (0.0–1.0) of requests of one verb (`get`, `list`, `watch`, `create`,
    /// `update`, `patch`, `delete`, `deletecollection`), or of every verb with `None`, with
    /// 500 InternalError or 503 ServiceUnavailable.
    pub fn set_error_rate(&self, verb: Option<&str>, rate: f64) {
        lock(&self.knobs)
            .error_rates
            .insert(verb.map(str::to_string), rate.clamp(0.0, 1.0));
    }

    /// Answer a fraction of requests with 429 TooManyRequests and `Retry-After`.
    pub fn set_throttle_rate(&self, rate: f64, retry_after_secs: u64) {
        let mut k = lock(&self.knobs);
        k.throttle_rate = rate.clamp(0.0, 1.0);
        k.retry_after_secs = retry_after_secs;
    }

    /// Delay every request by this much.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.knobs).latency = latency;
    }

    /// Answer a fraction of status writes (PUT/PATCH of `/status`) with 409 Conflict.
    pub fn set_status_conflict_rate(&self, rate: f64) {
        lock(&self.knobs).status_conflict_rate = rate.clamp(0.0, 1.0);
    }

    /// Close every watch stream this long after it opened (`Duration::ZERO` turns it off).
    pub fn drop_watches_after(&self, after: Duration) {
        lock(&self.knobs).drop_watches_after = (!after.is_zero()).then_some(after);
    }

    /// Close every open watch stream now.
    pub fn drop_watches(&self) {
        let mut t = lock(&self.watches);
        t.cancel();
        *t = CancellationToken::new();
    }

    /// Close every open watch stream and forget the change history: a watch resuming from
    /// any version seen so far gets an ERROR event with 410 Expired, and so does a list
    /// continuing with an older continue token.
    pub fn expire_watches(&self) {
        if let Some(f) = lock(&self.on_expire).as_ref() {
            f();
        }
        self.drop_watches();
    }

    /// Make the cluster unreachable (connections refused, open ones closed) or bring it
    /// back on the same port.
    pub fn set_unreachable(&self, unreachable: bool) {
        self.unreachable.send_replace(unreachable);
    }

    /// Whether the cluster is set unreachable.
    pub fn is_unreachable(&self) -> bool {
        *self.unreachable.borrow()
    }

    /// Turn every fault off (the cluster stays reachable or not as it is).
    pub fn clear(&self) {
        *lock(&self.knobs) = Knobs::default();
    }

    pub(crate) fn latency(&self) -> Duration {
        lock(&self.knobs).latency
    }

    pub(crate) fn watch_token(&self) -> CancellationToken {
        lock(&self.watches).clone()
    }

    pub(crate) fn watch_deadline(&self) -> Option<Duration> {
        lock(&self.knobs).drop_watches_after
    }

    pub(crate) fn decide(&self, verb: &str) -> Option<Injected> {
        let k = lock(&self.knobs);
        let rate = k
            .error_rates
            .get(&Some(verb.to_string()))
            .or_else(|| k.error_rates.get(&None))
            .copied()
            .unwrap_or(0.0);
        if rate > 0.0 && rand::random::<f64>() < rate {
            let code = if rand::random::<bool>() { 500 } else { 503 };
            return Some(Injected::Error(code));
        }
        if k.throttle_rate > 0.0 && rand::random::<f64>() < k.throttle_rate {
            return Some(Injected::Throttle(k.retry_after_secs));
        }
        None
    }

    pub(crate) fn status_conflict(&self) -> bool {
        let rate = lock(&self.knobs).status_conflict_rate;
        rate > 0.0 && rand::random::<f64>() < rate
    }
}
