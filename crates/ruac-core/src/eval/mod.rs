//! The evaluation protocol (paper §4, docs/EVALUATION.md): deterministic click prompts
//! (`clicks`), the prompt protocols and prediction sources (`protocol`), one domain's loop
//! and aggregation (`domain`) and the results it produces (`results`). The trainer chooses
//! the domains (its manifest), caches, prints and plots.
pub mod clicks;
pub mod domain;
pub mod protocol;
pub mod results;
