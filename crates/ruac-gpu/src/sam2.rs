//! SAM 2.1 (+ RUAC's Bayesian head) on the GPU, as ruac-core's `model/sam2.rs`
//! (`sam2/modeling/sam2_base.py`): the Hiera trunk and FPN neck (`scalp` drops the
//! lowest-resolution level), `no_mem_embed`, the decoder's `conv_s0` / `conv_s1` skips, and
//! the [`Decoder`].
use ruac_core::checkpoint::Checkpoint;
use ruac_core::image_io::RgbImage;
use ruac_core::model::config::Sam2Config;
use ruac_core::predictor::UncertaintyMode;

use crate::error::{GpuError, Result};
use crate::gpu::{GBuf, Gpu};
use crate::hiera::HieraTrunk;
use crate::kernels::eltwise::add_bcast;
use crate::kernels::matmul::Act;
use crate::layers::Lin;
use crate::loader::Upload;
use crate::mask_decoder::{DecodeInput, Decoder, DecoderDims, DecoderKind, DecoderOut};
use crate::neck::FpnNeck;

/// Image features kept on the GPU between clicks (`ImageFeatures` of ruac-core),
/// channels-last.
pub struct Features {
    /// `e*e x d`, with `no_mem_embed` added.
    pub image_embed: GBuf,
    /// `conv_s0` of the stride-4 level, `16 e*e x d/8`.
    pub feat_s0: GBuf,
    /// `conv_s1` of the stride-8 level, `4 e*e x d/4`.
    pub feat_s1: GBuf,
}

/// `Sam2Model` on the GPU.
pub struct Sam2GpuModel {
    pub cfg: Sam2Config,
    /// Bytes of GPU memory the weights take (f16 linear weights halve most of it).
    pub weight_bytes: u64,
    /// Checkpoint tensors stored as f16 (empty with f32 weights).
    pub f16_tensors: Vec<String>,
    trunk: HieraTrunk,
    neck: FpnNeck,
    no_mem_embed: wgpu::Buffer,
    conv_s0: Lin,
    conv_s1: Lin,
    pub decoder: Decoder,
}

impl Sam2GpuModel {
    /// Uploads the weights of `cfg` from `ck` (already checked by `Checkpoint::build_model`).
    pub fn new(gpu: &Gpu, ck: &Checkpoint, cfg: &Sam2Config) -> Result<Self> {
        let up = Upload::new(ck, gpu);
        let w = up.root();
        let encoder = w.pp("image_encoder");
        let trunk = HieraTrunk::new(&encoder.pp("trunk"), &cfg.hiera, cfg.image_size)?;
        let neck = FpnNeck::new(&encoder.pp("neck"), cfg)?;
        let mask = w.pp("sam_mask_decoder");
        let decoder = Decoder::new((&w.pp("sam_prompt_encoder"), &mask), DecoderKind::Sam2, &DecoderDims::sam2(cfg))?;
        let no_mem_embed = w.buf("no_mem_embed")?;
        let (conv_s0, conv_s1) = (mask.lin("conv_s0")?, mask.lin("conv_s1")?);
        let (weight_bytes, f16_tensors) = up.finish();
        Ok(Self { cfg: cfg.clone(), weight_bytes, f16_tensors, trunk, neck, no_mem_embed, conv_s0, conv_s1, decoder })
    }

    /// `set_image`: trunk, FPN neck, scalp, `no_mem_embed` and the decoder's `conv_s0` /
    /// `conv_s1` skips.
    pub fn encode(&self, gpu: &Gpu, img: &RgbImage) -> Result<Features> {
        let trunk = self.trunk.forward(gpu, img)?;
        let levels = self.neck.forward(gpu, &trunk)?;
        drop(trunk);
        let d = self.cfg.d_model;
        let missing = || GpuError::Internal(format!("{} FPN levels, scalp {}", levels.len(), self.cfg.scalp));
        let keep = levels.len().checked_sub(self.cfg.scalp).filter(|&k| k >= 1).ok_or_else(missing)?;
        let last = &levels[keep - 1];
        let image_embed = gpu.alloc(last.h * last.w * d)?;
        gpu.copy(&last.buf, 0, &image_embed, 0, last.h * last.w * d);
        add_bcast(gpu, &image_embed, 0, last.h * last.w * d, &self.no_mem_embed, 0, d)?;
        let (l0, l1) = (&levels[0], levels.get(1).ok_or_else(missing)?);
        let feat_s0 = self.conv_s0.forward(gpu, &l0.buf, l0.h * l0.w, Act::None)?;
        let feat_s1 = self.conv_s1.forward(gpu, &l1.buf, l1.h * l1.w, Act::None)?;
        Ok(Features { image_embed, feat_s0, feat_s1 })
    }

    /// The decoder on the cached features; `points` as `PlacedPrompt::encoder_points` gives
    /// them.
    pub fn decode(&self, gpu: &Gpu, f: &Features, points: &[(f32, f32, f32)], mask_input: Option<&[f32]>, mode: UncertaintyMode) -> Result<DecoderOut> {
        let input = DecodeInput { image_embed: &f.image_embed, skips: Some((&f.feat_s0, &f.feat_s1)), points, mask_input };
        self.decoder.decode(gpu, &input, mode)
    }
}
