//! Step executor: one module per step type.
