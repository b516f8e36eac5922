//! The single-image SAM 2.1 model (`sam2/modeling/sam2_base.py`, image path only), with the
//! checkpoint's own top-level names: `image_encoder`, `sam_prompt_encoder`,
//! `sam_mask_decoder`, `no_mem_embed`.
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::config::Sam2Config;
use super::mask_decoder::MaskDecoder;
use super::neck::ImageEncoder;
use super::prompt_encoder::PromptEncoder;

/// Cached per-image features: what `SAM2ImagePredictor.set_image` keeps.
#[derive(Debug, Clone)]
pub struct ImageFeatures {
    /// Lowest-resolution FPN level plus `no_mem_embed`, `B, C, h, w`.
    pub image_embed: Tensor,
    /// `conv_s0` of the stride-4 level, `B, C/8, 4h, 4w`.
    pub feat_s0: Tensor,
    /// `conv_s1` of the stride-8 level, `B, C/4, 2h, 2w`.
    pub feat_s1: Tensor,
}

/// Intermediate tensors of [`Sam2Model::encode_image_traced`], for parity tests and tools.
#[derive(Debug, Clone)]
pub struct EncoderTrace {
    pub trunk: Vec<Tensor>,
    pub neck: Vec<Tensor>,
    pub features: ImageFeatures,
}

#[derive(Debug, Clone)]
pub struct Sam2Model {
    pub cfg: Sam2Config,
    pub image_encoder: ImageEncoder,
    pub prompt_encoder: PromptEncoder,
    pub mask_decoder: MaskDecoder,
    no_mem_embed: Tensor,
}

impl Sam2Model {
    pub fn new(cfg: &Sam2Config, vb: VarBuilder) -> Result<Self> {
        let e = cfg.embedding_size();
        Ok(Self {
            cfg: cfg.clone(),
            image_encoder: ImageEncoder::new(cfg, vb.pp("image_encoder"))?,
            prompt_encoder: PromptEncoder::new(cfg.d_model, (e, e), (cfg.image_size, cfg.image_size), vb.pp("sam_prompt_encoder"))?,
            mask_decoder: MaskDecoder::new(cfg, vb.pp("sam_mask_decoder"))?,
            no_mem_embed: vb.get((1, 1, cfg.d_model), "no_mem_embed")?,
        })
    }

    /// Encodes a preprocessed `B, 3, S, S` batch (`forward_image` + `_prepare_backbone_features`).
    pub fn encode_image(&self, input: &Tensor) -> Result<ImageFeatures> {
        Ok(self.encode_image_traced(input)?.features)
    }

    pub fn encode_image_traced(&self, input: &Tensor) -> Result<EncoderTrace> {
        let (trunk, neck) = self.image_encoder.forward_with_trunk(input)?;
        let d = self.cfg.d_model;
        let last = neck.last().ok_or_else(|| candle_core::Error::Msg("FPN produced no levels".into()))?;
        let image_embed = last.broadcast_add(&self.no_mem_embed.reshape((1, d, 1, 1))?)?;
        let feat_s0 = self.mask_decoder.conv_s0.forward(&neck[0])?;
        let feat_s1 = self.mask_decoder.conv_s1.forward(&neck[1])?;
        Ok(EncoderTrace { trunk, neck, features: ImageFeatures { image_embed, feat_s0, feat_s1 } })
    }
}
