//! `ruac-core`: RUAC (Zhou, Shao, Toussaint, Ye; ICML 2026, arXiv 2605.10603) on candle.
//!
//! SAM 2.1's image path (Hiera trunk, FPN neck, prompt encoder, two-way mask decoder) with
//! RUAC's Bayesian pixel head, which turns every pixel's logit into a Weibull-factored random
//! variable and so gives a per-pixel uncertainty. See ARCHITECTURE.md for the map.
pub mod checkpoint;
mod checkpoint_pth;
pub mod data;
pub mod error;
pub mod eval;
pub mod image_io;
pub mod limits;
#[cfg(not(target_arch = "wasm32"))]
pub mod malloc;
pub mod method;
pub mod metrics;
pub mod model;
pub mod npy;
pub mod prediction;
pub mod predictor;
pub mod prompt;
pub mod rng;
pub mod viz;

pub use error::{Error, Result};
