//! Evaluation protocol pieces: deterministic click prompts.
