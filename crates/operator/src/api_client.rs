//! Kubernetes clients for the controller: kube's default stack, with a cap on the requests
//! one client has in flight.
//!
//! kube's client speaks HTTP/1.1 and opens a new connection for each request sent while
//! the others are busy, then keeps every one of them idle in its pool (hyper-util's
//! defaults: no cap, 90 s). The run controller runs every run concurrently, so an alert
//! storm left ~340 connections open, each holding its read buffer, write buffer and
//! channels. Capping requests in flight (tower's `ConcurrencyLimit`) caps the pool at about
//! as many connections, as the stream limit of the HTTP/2 connection client-go shares does.
//! A request holds its slot only until the response's headers arrive, so a watch or a long
//! response body does not keep one.

use kube::Client;
use kube::client::ClientBuilder;
use tower::limit::ConcurrencyLimitLayer;

/// Requests one client sends at a time; the rest wait their turn, in order (that watches
/// leave it to other requests is tested in `tests/scenarios.rs`, on both backends).
pub const MAX_IN_FLIGHT: usize = 32;

/// A client for `config`, with at most [`MAX_IN_FLIGHT`] requests in flight.
pub fn build(config: kube::Config) -> Result<Client, kube::Error> {
    Ok(ClientBuilder::try_from(config)?
        .with_layer(&ConcurrencyLimitLayer::new(MAX_IN_FLIGHT))
        .build())
}
