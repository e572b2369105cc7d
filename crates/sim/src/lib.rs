//! placeholder
pub mod patch;
pub mod structural;
