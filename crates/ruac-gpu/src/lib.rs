//! `ruac-gpu`: RUAC inference (SAM 2.1 + the Bayesian pixel head of ruac-core) on wgpu, with
//! a WGSL kernel for every operation: preprocessing, Hiera, FPN neck, prompt encoder,
//! two-way transformer, mask decoder, the Bayesian head's analytic and Monte Carlo
//! uncertainty, bilinear upsampling and the inferno colormap. The same code runs natively
//! (Vulkan, Metal, DX12, GL) and in the browser (WebGPU, `wasm32-unknown-unknown`).
//!
//! [`GpuPredictor`] mirrors `ruac_core::predictor::Predictor`: `set_image` encodes once and
//! keeps the embeddings on the GPU, each `predict` runs the prompt encoder and decoder and
//! fills the same `PredictionMaps` (within float rounding; the Monte Carlo draws are the
//! CPU's PCG32 stream). ruac-gpu owns no semantics: prompt checks and placement, token
//! selection, resize plans and the colour table are ruac-core's; the model files mirror
//! ruac-core's `model/` file by file (`hiera`, `neck`, `sam2`, `prompt_encoder`,
//! `transformer`, `mask_decoder`, `bayes_head`, `sam1/`), each built from a scoped loader by
//! the checkpoint's own names.
mod bayes_head;
pub mod adapter;
pub mod error;
pub mod gpu;
mod hiera;
pub mod kernels;
mod layers;
mod loader;
mod mask_decoder;
mod neck;
pub mod predictor;
mod prompt_encoder;
mod sam1;
mod sam2;
mod transformer;

pub use error::GpuError;
pub use gpu::{Gpu, Limits};
pub use predictor::{GpuConfig, GpuOptions, GpuPredictor};
