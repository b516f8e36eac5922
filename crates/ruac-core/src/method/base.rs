//! The base model under RUAC's training. The Bayesian pixel head and the attackers are an
//! add-on to a SAM-family model (paper §3), so one training step serves SAM 2.1
//! (`sam2/modeling/sam2_base.py`) and the SAM 1 family (`segment_anything/modeling/sam.py`,
//! MobileSAM, LiteMedSAM): this module is the little the step and the attackers ask of either.
use candle_core::Tensor;

use crate::model::config::Sam2Config;
use crate::model::sam1::Sam1Config;
use crate::predictor::BaseModel;
use crate::Result;

/// An encoded training image.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The image embedding `1, D, g, g` (the attackers pool and condition on it).
    pub image_embed: Tensor,
    /// SAM 2.1's high-resolution skip features (`feat_s0`, `feat_s1`); SAM 1 has none.
    high_res: Option<(Tensor, Tensor)>,
}

/// Every mask token's outputs for one prompt.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Low-resolution logits `1, K, 4g, 4g` of the model's own pixel head.
    pub masks: Tensor,
    /// Predicted IoU `1, K`.
    pub iou: Tensor,
    /// SAM 2.1's object-score logit `1, 1`; SAM 1 has no object-score head.
    pub obj_score: Option<Tensor>,
    /// The pixel head's inputs: upscaled embedding `1, C, 4g, 4g` and mask tokens `1, K, C`.
    pub upscaled: Tensor,
    pub mask_tokens: Tensor,
}

/// What the attackers' shapes depend on: the image embedding's channels and grid, and the
/// input size (the deformation attacker's mask downsampler spans `image_size / grid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttackGeometry {
    pub dim: usize,
    pub image_size: usize,
    pub grid: usize,
}

impl Encoded {
    /// The image encoder's output alone, when that is the whole encoding (SAM 1). A trainer
    /// with a frozen encoder may cache it per image; SAM 2.1's skip features pass through the
    /// trained `conv_s0`/`conv_s1`, so its encoding is never a function of the image alone.
    pub fn encoder_only(&self) -> Option<&Tensor> {
        match self.high_res {
            None => Some(&self.image_embed),
            Some(_) => None,
        }
    }

    /// A SAM 1 encoding from a cached image embedding `1, D, g, g`.
    pub fn sam1(image_embed: Tensor) -> Self {
        Self { image_embed, high_res: None }
    }
}

impl AttackGeometry {
    pub fn sam2(cfg: &Sam2Config) -> Self {
        Self { dim: cfg.d_model, image_size: cfg.image_size, grid: cfg.embedding_size() }
    }
    pub fn sam1(cfg: &Sam1Config) -> Self {
        Self { dim: cfg.decoder.transformer_dim, image_size: cfg.image_size(), grid: cfg.embedding_size() }
    }
    /// Image pixels per embedding cell.
    pub fn stride(&self) -> usize {
        self.image_size / self.grid
    }
}

impl BaseModel {
    pub fn attack_geometry(&self) -> AttackGeometry {
        match self {
            BaseModel::Sam2(m) => AttackGeometry::sam2(&m.cfg),
            BaseModel::Sam1(m) => AttackGeometry::sam1(&m.cfg),
        }
    }

    /// Mask tokens after the single-mask token (3 in every released model).
    pub fn num_multimask_outputs(&self) -> usize {
        match self {
            BaseModel::Sam2(m) => m.cfg.decoder.num_multimask_outputs,
            BaseModel::Sam1(m) => m.cfg.decoder.num_multimask_outputs,
        }
    }

    /// Encodes a preprocessed `1, 3, S, S` image, keeping the graph to it when it is tracked.
    pub fn encode(&self, image: &Tensor) -> Result<Encoded> {
        Ok(match self {
            BaseModel::Sam2(m) => {
                let f = m.encode_image(image)?;
                Encoded { image_embed: f.image_embed, high_res: Some((f.feat_s0, f.feat_s1)) }
            }
            BaseModel::Sam1(m) => Encoded { image_embed: m.encode_image(image)?, high_res: None },
        })
    }

    /// Decodes one prompt: `points` are `(x, y, label)` in input pixels with SAM's labels (1
    /// positive, 0 negative, 2 and 3 a box's corners), `mask_input` a `1, 1, 4g, 4g` logit map.
    /// SAM 2.1 embeds the box as its two corner points; SAM 1 embeds points, then the box.
    pub fn decode(&self, enc: &Encoded, points: &[(f32, f32, f32)], mask_input: Option<&Tensor>) -> Result<Decoded> {
        let dev = enc.image_embed.device();
        let tensors = |pts: &[(f32, f32, f32)]| -> Result<Option<(Tensor, Tensor)>> {
            if pts.is_empty() {
                return Ok(None);
            }
            let n = pts.len();
            let c: Vec<f32> = pts.iter().flat_map(|p| [p.0, p.1]).collect();
            let l: Vec<f32> = pts.iter().map(|p| p.2).collect();
            Ok(Some((Tensor::from_vec(c, (1, n, 2), dev)?, Tensor::from_vec(l, (1, n), dev)?)))
        };
        match self {
            BaseModel::Sam2(m) => {
                let pts = tensors(points)?;
                let (sparse, dense) = m.prompt_encoder.forward(pts.as_ref().map(|(a, b)| (a, b)), mask_input)?;
                let (s0, s1) = enc
                    .high_res
                    .as_ref()
                    .ok_or_else(|| crate::Error::Invalid("SAM 2.1 features without high-resolution maps".into()))?;
                let pe = m.prompt_encoder.get_dense_pe()?;
                let out = m.mask_decoder.predict_masks(&enc.image_embed, &pe, &sparse, &dense, (s0, s1))?;
                Ok(Decoded {
                    masks: out.masks,
                    iou: out.iou,
                    obj_score: Some(out.obj_score),
                    upscaled: out.upscaled,
                    mask_tokens: out.mask_tokens,
                })
            }
            BaseModel::Sam1(m) => {
                let (corners, clicks): (Vec<(f32, f32, f32)>, Vec<_>) = points.iter().partition(|p| p.2 >= 2.0);
                let bbox = match corners.as_slice() {
                    [] => None,
                    [a, b] => Some(Tensor::from_vec(vec![a.0, a.1, b.0, b.1], (1, 4), dev)?),
                    _ => return Err(crate::Error::Prompt(format!("{} box corners: SAM 1 takes one box", corners.len()))),
                };
                let pts = tensors(&clicks)?;
                let (sparse, dense) = m.embed_prompts(pts.as_ref().map(|(a, b)| (a, b)), bbox.as_ref(), mask_input)?;
                let out = m.predict_masks(&enc.image_embed, &sparse, &dense)?;
                Ok(Decoded {
                    masks: out.masks,
                    iou: out.iou,
                    obj_score: None,
                    upscaled: out.upscaled,
                    mask_tokens: out.mask_tokens,
                })
            }
        }
    }
}
