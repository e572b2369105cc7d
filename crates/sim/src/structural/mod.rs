//! Structural schemas of CRDs (work in progress).
