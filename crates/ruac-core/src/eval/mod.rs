//! Evaluation protocol pieces: deterministic click prompts.
pub mod clicks;
