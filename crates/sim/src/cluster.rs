//! One simulated cluster's shared parts: its objects, fault knobs, authorization, tokens and
//! request counters, shared by the HTTP server, the authenticator and the Job controller.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::api::{SharedState, State};
use crate::authz::Authz;
use crate::faults::Faults;
use crate::tokens::Tokens;

/// One simulated cluster's shared parts.
pub struct Cluster {
    /// Cluster name.
    pub name: String,
    /// Address served.
    pub addr: SocketAddr,
    /// Objects and resources.
    pub state: SharedState,
    /// Fault knobs.
    pub faults: Faults,
    /// Authorization table.
    pub authz: Authz,
    /// ServiceAccount tokens issued by the TokenRequest subresource.
    pub tokens: Tokens,
    /// Request counters.
    pub stats: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// Cancelled on shutdown.
    pub shutdown: CancellationToken,
    /// Watch streams currently being served.
    pub open_watches: Arc<std::sync::atomic::AtomicUsize>,
}

impl Cluster {
    /// The cluster's objects and resources, locked.
    pub fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn count(&self, verb: &str, resource: &str, code: u16) {
        let mut s = self
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *s.entry((verb.to_string(), resource.to_string(), code))
            .or_insert(0) += 1;
    }
}
