//! Leader election on a `coordination.k8s.io/v1` Lease.
//!
//! Every write is an update with the resourceVersion last read (never a patch), so two
//! replicas racing for the same Lease cannot both win: the loser gets 409 Conflict. Another
//! holder's lease is honoured until it expires: `renewTime + leaseDurationSeconds` has
//! passed, or the record has not changed for `leaseDurationSeconds` as observed locally
//! (robust to clock skew between replicas). The leader renews every `renew_interval`;
//! if it cannot renew within `renew_deadline` or sees another holder, [`LeaderGuard::lost`]
//! is cancelled and the process must stop executing. [`LeaderGuard::release`] clears
//! `holderIdentity` so another replica takes over at once.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Errors of leader election.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// Shutdown was requested before leadership was acquired.
    #[error("shutdown requested before leadership was acquired")]
    Cancelled,
    /// The Lease could not be read or written.
    #[error("Lease {namespace}/{name}: {source}")]
    Api {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Timings of the election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTimings {
    /// How long a holder's lease is honoured without renewal (whole seconds, ≥ 1).
    pub lease_duration: Duration,
    /// How often the leader renews.
    pub renew_interval: Duration,
    /// How long the leader keeps trying to renew before giving leadership up.
    pub renew_deadline: Duration,
    /// How often a candidate retries to acquire.
    pub retry_interval: Duration,
}

impl Default for LeaseTimings {
    fn default() -> Self {
        LeaseTimings::for_lease(Duration::from_secs(10))
    }
}

impl LeaseTimings {
    /// Timings for a lease of `lease_duration` (rounded up to whole seconds, at least 1):
    /// the leader renews every fifth of it and gives up after 70 % of it without a
    /// successful renewal; candidates retry every fifth of it. Renewals and retries happen
    /// at least every 2 s, so a long lease still hands over promptly once released.
    pub fn for_lease(lease_duration: Duration) -> Self {
        let secs = lease_duration
            .as_secs()
            .saturating_add(u64::from(lease_duration.subsec_nanos() > 0))
            .max(1);
        let lease_duration = Duration::from_secs(secs);
        let fifth = (lease_duration / 5).min(Duration::from_secs(2));
        LeaseTimings {
            lease_duration,
            renew_interval: fifth,
            renew_deadline: lease_duration * 7 / 10,
            retry_interval: fifth,
        }
    }
}

/// Elects one leader among the replicas sharing a Lease.
#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
    timings: LeaseTimings,
}

/// The last record seen of another holder, and when it was first seen (local clock).
struct Observed {
    resource_version: Option<String>,
    holder: Option<String>,
    renew_time: Option<Timestamp>,
    since: Instant,
}

enum Attempt {
    Acquired(Box<Lease>),
    HeldByOther,
}

impl LeaderElector {
    /// An elector for Lease `namespace/name`, identifying this replica as `identity`.
    pub fn new(client: kube::Client, namespace: &str, name: &str, identity: &str) -> Self {
        LeaderElector {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            timings: LeaseTimings::default(),
        }
    }

    /// Same elector with other timings.
    pub fn with_timings(mut self, timings: LeaseTimings) -> Self {
        self.timings = timings;
        self
    }

    fn api_err(&self, source: kube::Error) -> LeaderError {
        LeaderError::Api {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.timings.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// Waits until this replica leads (or `shutdown` is cancelled), then keeps renewing in
    /// the background for as long as the returned guard lives.
    pub async fn acquire(&self, shutdown: CancellationToken) -> Result<LeaderGuard, LeaderError> {
        let mut observed: Option<Observed> = None;
        loop {
            match self.try_acquire(&mut observed).await {
                Ok(Attempt::Acquired(lease)) => {
                    tracing::info!(lease = %self.name, identity = %self.identity, "acquired leadership");
                    return Ok(self.start_renewing(*lease));
                }
                Ok(Attempt::HeldByOther) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "leader election attempt failed; retrying");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Err(LeaderError::Cancelled),
                _ = tokio::time::sleep(self.timings.retry_interval) => {}
            }
        }
    }

    fn spec_for_me(&self, previous: Option<&LeaseSpec>) -> LeaseSpec {
        let now = MicroTime(Timestamp::now());
        let previous_holder = previous
            .and_then(|s| s.holder_identity.as_deref())
            .filter(|h| !h.is_empty());
        let transitions = previous.and_then(|s| s.lease_transitions).unwrap_or(0);
        let (acquire_time, transitions) = match previous_holder {
            Some(h) if h == self.identity => (
                previous
                    .and_then(|s| s.acquire_time.clone())
                    .unwrap_or_else(|| now.clone()),
                transitions,
            ),
            Some(_) => (now.clone(), transitions.saturating_add(1)),
            None => (now.clone(), transitions),
        };
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.lease_seconds()),
            acquire_time: Some(acquire_time),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    fn expired(&self, spec: &LeaseSpec, observed: &Observed) -> bool {
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs)
            .unwrap_or(self.timings.lease_duration);
        let by_record = spec.renew_time.as_ref().is_none_or(|t| {
            let age = Timestamp::now().duration_since(t.0);
            age.is_positive() && age.unsigned_abs() > duration
        });
        by_record || observed.since.elapsed() > duration
    }

    async fn try_acquire(&self, observed: &mut Option<Observed>) -> Result<Attempt, LeaderError> {
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.api_err(e))?;
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec_for_me(None)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(l) => Ok(Attempt::Acquired(Box::new(l))),
                Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(Attempt::HeldByOther),
                Err(e) => Err(self.api_err(e)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let free = match holder.as_deref() {
            None => true,
            Some(h) if h == self.identity => true,
            Some(_) => {
                let seen = Observed {
                    resource_version: lease.metadata.resource_version.clone(),
                    holder: holder.clone(),
                    renew_time: spec.renew_time.as_ref().map(|t| t.0),
                    since: Instant::now(),
                };
                let same = observed.as_ref().is_some_and(|o| {
                    o.resource_version == seen.resource_version
                        && o.holder == seen.holder
                        && o.renew_time == seen.renew_time
                });
                if !same {
                    *observed = Some(seen);
                }
                observed.as_ref().is_some_and(|o| self.expired(&spec, o))
            }
        };
        if !free {
            return Ok(Attempt::HeldByOther);
        }
        lease.spec = Some(self.spec_for_me(Some(&spec)));
        // `replace` sends metadata.resourceVersion: if anyone wrote in between, 409.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(l) => {
                if let Some(h) = holder.filter(|h| *h != self.identity) {
                    tracing::info!(previous = %h, "took over an expired or released lease");
                }
                Ok(Attempt::Acquired(Box::new(l)))
            }
            Err(kube::Error::Api(s)) if s.is_conflict() => Ok(Attempt::HeldByOther),
            Err(e) => Err(self.api_err(e)),
        }
    }

    /// One renewal: update renewTime with the last resourceVersion; on conflict, re-read and
    /// retry once if we still hold it. `Ok(false)` means another replica holds the lease.
    async fn renew(&self, last: &mut Lease) -> Result<bool, LeaderError> {
        for _ in 0..2 {
            let mut next = last.clone();
            next.spec = Some(self.spec_for_me(last.spec.as_ref()));
            match self
                .api
                .replace(&self.name, &PostParams::default(), &next)
                .await
            {
                Ok(l) => {
                    *last = l;
                    return Ok(true);
                }
                Err(kube::Error::Api(s)) if s.is_conflict() => {
                    let current = self
                        .api
                        .get_opt(&self.name)
                        .await
                        .map_err(|e| self.api_err(e))?;
                    match current {
                        Some(l) if holder_of(&l) == Some(self.identity.as_str()) => *last = l,
                        _ => return Ok(false),
                    }
                }
                Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(false),
                Err(e) => return Err(self.api_err(e)),
            }
        }
        Ok(false)
    }

    fn start_renewing(&self, lease: Lease) -> LeaderGuard {
        let lost = CancellationToken::new();
        let stop = CancellationToken::new();
        let last = Arc::new(Mutex::new(lease));
        let task = tokio::spawn(renew_loop(
            self.clone(),
            last.clone(),
            lost.clone(),
            stop.clone(),
        ));
        LeaderGuard {
            elector: self.clone(),
            lost,
            stop,
            last,
            task: Some(task),
        }
    }
}

fn holder_of(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty())
}

async fn renew_loop(
    elector: LeaderElector,
    last: Arc<Mutex<Lease>>,
    lost: CancellationToken,
    stop: CancellationToken,
) {
    let mut last_renewed = Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(elector.timings.renew_interval) => {}
        }
        let mut lease = last.lock().await;
        if stop.is_cancelled() {
            return;
        }
        // A renewal that hangs (slow or unresponsive API server) must not outlive the renew
        // deadline: past it, another replica may take the lease over, so this one has to have
        // stopped executing by then. Shutdown does not wait for it either.
        let budget = elector
            .timings
            .renew_deadline
            .saturating_sub(last_renewed.elapsed());
        let outcome = tokio::select! {
            _ = stop.cancelled() => return,
            r = tokio::time::timeout(budget, elector.renew(&mut lease)) => r,
        };
        let Ok(outcome) = outcome else {
            tracing::error!(lease = %elector.name, "leadership lost: the lease renewal did not finish in time");
            lost.cancel();
            return;
        };
        match outcome {
            Ok(true) => last_renewed = Instant::now(),
            Ok(false) => {
                tracing::error!(lease = %elector.name, "leadership lost: another replica holds the lease");
                lost.cancel();
                return;
            }
            Err(e) => {
                if last_renewed.elapsed() >= elector.timings.renew_deadline {
                    tracing::error!(error = %e, "leadership lost: could not renew the lease in time");
                    lost.cancel();
                    return;
                }
                tracing::warn!(error = %e, "lease renewal failed; retrying");
            }
        }
    }
}

/// Held while this replica leads. Dropping it stops renewing (the lease then expires);
/// [`LeaderGuard::release`] hands leadership over at once.
pub struct LeaderGuard {
    elector: LeaderElector,
    lost: CancellationToken,
    stop: CancellationToken,
    last: Arc<Mutex<Lease>>,
    task: Option<JoinHandle<()>>,
}

impl LeaderGuard {
    /// Cancelled when leadership is lost: stop executing and exit non-zero.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Stops renewing and clears `holderIdentity` (if still ours) so another replica can
    /// take over without waiting for the lease to expire.
    pub async fn release(mut self) -> Result<(), LeaderError> {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            // The task ends at its next await point; a panic there is not ours to re-raise.
            let _ = task.await;
        }
        if self.lost.is_cancelled() {
            return Ok(());
        }
        let mut lease = self.last.lock().await.clone();
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(Timestamp::now()));
        }
        let e = &self.elector;
        match e.api.replace(&e.name, &PostParams::default(), &lease).await {
            Ok(_) => {
                tracing::info!(lease = %e.name, "released leadership");
                Ok(())
            }
            // Someone else already wrote the lease: it is not ours to clear any more.
            Err(kube::Error::Api(s)) if s.is_conflict() || s.is_not_found() => Ok(()),
            Err(err) => Err(e.api_err(err)),
        }
    }
}

impl Drop for LeaderGuard {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use kube::api::{Patch, PatchParams};

    const NS: &str = "default";

    async fn cluster() -> (lifeboat_sim::SimCluster, kube::Client) {
        let sim = lifeboat_sim::SimCluster::start("leader").await.unwrap();
        let kc = kube::config::Kubeconfig::from_yaml(&sim.kubeconfig_yaml()).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(cfg).unwrap();
        (sim, client)
    }

    fn timings(lease_secs: u64) -> LeaseTimings {
        LeaseTimings {
            lease_duration: Duration::from_secs(lease_secs),
            renew_interval: Duration::from_millis(200),
            renew_deadline: Duration::from_millis(1500),
            retry_interval: Duration::from_millis(100),
        }
    }

    fn elector(client: &kube::Client, id: &str, lease_secs: u64) -> LeaderElector {
        LeaderElector::new(client.clone(), NS, "lifeboat", id).with_timings(timings(lease_secs))
    }

    async fn lease(client: &kube::Client) -> LeaseSpec {
        Api::<Lease>::namespaced(client.clone(), NS)
            .get("lifeboat")
            .await
            .unwrap()
            .spec
            .unwrap()
    }

    #[test]
    fn timings_scale_with_the_lease() {
        assert_eq!(
            LeaseTimings::default(),
            LeaseTimings {
                lease_duration: Duration::from_secs(10),
                renew_interval: Duration::from_secs(2),
                renew_deadline: Duration::from_secs(7),
                retry_interval: Duration::from_secs(2),
            }
        );
        let short = LeaseTimings::for_lease(Duration::from_secs(2));
        assert_eq!(short.renew_interval, Duration::from_millis(400));
        assert_eq!(short.renew_deadline, Duration::from_millis(1400));
        assert_eq!(short.retry_interval, Duration::from_millis(400));
        let long = LeaseTimings::for_lease(Duration::from_secs(3600));
        assert_eq!(long.renew_interval, Duration::from_secs(2));
        assert_eq!(long.retry_interval, Duration::from_secs(2));
        assert_eq!(
            LeaseTimings::for_lease(Duration::from_millis(1500)).lease_duration,
            Duration::from_secs(2),
            "a lease is whole seconds, rounded up"
        );
        assert_eq!(
            LeaseTimings::for_lease(Duration::ZERO).lease_duration,
            Duration::from_secs(1)
        );
    }

    #[tokio::test]
    async fn only_one_of_two_electors_leads_and_release_hands_over_at_once() {
        let (_sim, client) = cluster().await;
        // A lease far longer than the test: only a release can explain a takeover.
        let a = elector(&client, "replica-a", 300);
        let b = elector(&client, "replica-b", 300);
        let ga = a.acquire(CancellationToken::new()).await.unwrap();
        assert_eq!(
            lease(&client).await.holder_identity.as_deref(),
            Some("replica-a")
        );

        let b_task = tokio::spawn(async move { b.acquire(CancellationToken::new()).await });
        // While A renews, B keeps trying and must not win.
        let mut seen_renewals = 0;
        let mut last_renew = lease(&client).await.renew_time;
        while seen_renewals < 3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let spec = lease(&client).await;
            assert_eq!(
                spec.holder_identity.as_deref(),
                Some("replica-a"),
                "B took a lease A holds"
            );
            assert!(!b_task.is_finished(), "B acquired while A leads");
            if spec.renew_time != last_renew {
                seen_renewals += 1;
                last_renew = spec.renew_time;
            }
        }
        assert!(!ga.lost().is_cancelled());

        ga.release().await.unwrap();
        let gb = tokio::time::timeout(Duration::from_secs(20), b_task)
            .await
            .expect("B did not take over after A released")
            .unwrap()
            .unwrap();
        let spec = lease(&client).await;
        assert_eq!(spec.holder_identity.as_deref(), Some("replica-b"));
        assert_eq!(
            spec.lease_transitions,
            Some(0),
            "a released lease is taken over, not stolen"
        );
        assert!(!gb.lost().is_cancelled());
        gb.release().await.unwrap();
        assert_eq!(lease(&client).await.holder_identity, None);
    }

    #[tokio::test]
    async fn a_dead_leader_is_replaced_once_its_lease_expires() {
        let (_sim, client) = cluster().await;
        let a = elector(&client, "replica-a", 1);
        let b = elector(&client, "replica-b", 1);
        let ga = a.acquire(CancellationToken::new()).await.unwrap();
        // Killed: no release, no more renewals.
        drop(ga);
        let gb = tokio::time::timeout(Duration::from_secs(20), b.acquire(CancellationToken::new()))
            .await
            .expect("B did not take over the expired lease")
            .unwrap();
        let spec = lease(&client).await;
        assert_eq!(spec.holder_identity.as_deref(), Some("replica-b"));
        assert_eq!(spec.lease_transitions, Some(1));
        assert!(!gb.lost().is_cancelled());
    }

    #[tokio::test]
    async fn leadership_taken_by_another_is_reported_lost() {
        let (_sim, client) = cluster().await;
        let a = elector(&client, "replica-a", 300);
        let ga = a.acquire(CancellationToken::new()).await.unwrap();
        let lost = ga.lost();
        // Someone else overwrites the lease (e.g. an operator forcing a failover).
        let patch = serde_json::json!({"spec": {"holderIdentity": "replica-z"}});
        Api::<Lease>::namespaced(client.clone(), NS)
            .patch("lifeboat", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(20), lost.cancelled())
            .await
            .expect("A did not notice it lost the lease");
        // A released guard that already lost must not clear the new holder's lease.
        ga.release().await.unwrap();
        assert_eq!(
            lease(&client).await.holder_identity.as_deref(),
            Some("replica-z")
        );
    }

    #[tokio::test]
    async fn a_renewal_hanging_past_the_deadline_loses_leadership_before_the_lease_expires() {
        let (sim, client) = cluster().await;
        let a = elector(&client, "replica-a", 2);
        let ga = a.acquire(CancellationToken::new()).await.unwrap();
        let lost = ga.lost();
        // Every request now takes far longer than the lease: renewals hang.
        sim.faults().set_latency(Duration::from_secs(600));
        tokio::time::timeout(Duration::from_secs(60), lost.cancelled())
            .await
            .expect("a leader whose renewal hangs kept leading");
        sim.faults().set_latency(Duration::ZERO);
        // The lease, not renewed since, expires: another replica may take over safely.
        let b = elector(&client, "replica-b", 2);
        let gb = tokio::time::timeout(Duration::from_secs(60), b.acquire(CancellationToken::new()))
            .await
            .expect("B did not take over")
            .unwrap();
        assert!(!gb.lost().is_cancelled());
        ga.release().await.unwrap();
        assert_eq!(
            lease(&client).await.holder_identity.as_deref(),
            Some("replica-b"),
            "A, having lost, must not clear B's lease"
        );
    }

    #[tokio::test]
    async fn acquire_gives_up_on_shutdown() {
        let (_sim, client) = cluster().await;
        let a = elector(&client, "replica-a", 300);
        let _ga = a.acquire(CancellationToken::new()).await.unwrap();
        let b = elector(&client, "replica-b", 300);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { b.acquire(shutdown).await }
        });
        shutdown.cancel();
        let r = tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("acquire ignored shutdown")
            .unwrap();
        assert!(matches!(r, Err(LeaderError::Cancelled)), "{:?}", r.err());
    }
}
