//! Controllers: alerts (alert → runs), plans (validation, history), runs (the executor).

pub mod alerts;
pub mod plans;
pub mod runs;
pub mod stream;
pub mod validation;
