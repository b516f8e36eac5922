//! `trainer eval` and `trainer compare`: the paper's zero-shot protocol over many domains
//! (click and box prompts, per-object metrics averaged per image and per domain), cached
//! per domain so an interrupted run resumes, and reported as Markdown, CSV, JSON and SVG.
//! The loop over one domain and its aggregation are `ruac_core::eval`; here: the manifest,
//! the command line, the per-domain cache, the progress bar and the reports.
pub mod manifest;
pub mod report;
pub mod run;
pub mod svg;

pub use report::CompareArgs;
pub use run::{run_compare, run_eval, EvalArgs};
