//! Alertmanager webhook receiver.
