//! The model: SAM 2.1's single-image path with RUAC's Bayesian pixel head.
pub mod base;
pub mod bayes_head;
pub mod common;
pub mod config;
pub mod dwconv;
pub mod fastmath;
pub mod flash;
pub mod gelu;
pub mod hiera;
pub mod init;
pub mod mask_decoder;
pub mod neck;
pub mod ops;
pub mod prompt_encoder;
pub mod rowops;
pub mod sam1;
pub mod sam2;
pub mod transformer;
pub mod upscale;

pub use base::{BaseModel, ModelConfig};
pub use bayes_head::BayesianPixelHead;
pub use config::{BayesHeadConfig, DecoderConfig, HieraBlockSpec, HieraConfig, Sam2Config, SingleMask};
pub use hiera::HieraTrunk;
pub use mask_decoder::MaskDecoder;
pub use sam1::{Sam1Config, Sam1Model};
pub use sam2::{ImageFeatures, Sam2Model};
