//! Controllers: alerts, plans, runs.
