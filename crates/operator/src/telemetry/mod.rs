//! Metrics, health and readiness.

pub mod health;
pub mod metrics;

pub use health::{HealthError, Readiness, health_router, serve_health};
pub use metrics::Metrics;
