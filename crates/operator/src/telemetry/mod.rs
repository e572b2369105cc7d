//! Metrics, health and readiness.

pub mod health;
pub mod metrics;

pub use health::{HealthError, Readiness, serve_health};
pub use metrics::Metrics;
