//! Metrics, health and readiness.
