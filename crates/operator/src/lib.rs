//! lifeboat's operator: the controllers, the step executor, the Alertmanager webhook
//! receiver and telemetry, assembled by [`serve`].
//!
//! - `controller/` — alert controller (alert → runs), plan controller (validation),
//!   run controller (drives the executor);
//! - `executor/` — one module per step type;
//! - `clusters` — clients for registered clusters (Secrets) and impersonation;
//! - `api_errors` — what a Kubernetes API error means, the one retry policy, metric categories;
//! - `webhook/` — the Alertmanager receiver;
//! - `telemetry/` — metrics, health and readiness;
//! - `leader` — leader election on a Lease;
//! - `writes` — API writes that decode only the part of the answer read back.

pub mod api_client;
mod api_errors;
mod cache;
mod clusters;
mod config;
mod context;
mod controller;
mod events;
mod executor;
mod index;
mod last_run;
mod leader;
pub mod naming;
mod recent_runs;
pub mod run;
mod telemetry;
mod wait;
pub mod webhook;
mod writes;

pub use config::{ControllerConfig, WebhookConfig};
pub use leader::LeaseTimings;
pub use run::{OperatorError, serve, serve_with_lease};
