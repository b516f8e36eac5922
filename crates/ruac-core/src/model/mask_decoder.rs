//! SAM 2.1 mask decoder (`sam2/modeling/sam/mask_decoder.py`): two-way transformer over
//! [object-score, IoU, 4 mask] tokens plus prompt tokens, an upscaling path fed with the
//! high-resolution skip features, IoU and object-score heads, and the per-pixel head: SAM's
//! hypernetwork dot product, or RUAC's [`BayesianPixelHead`].
use candle_core::{Module, Result, Tensor};
use candle_nn::{conv2d, Conv2d, Conv2dConfig, VarBuilder};

use super::bayes_head::BayesianPixelHead;
use super::common::{Activation, LayerNorm2d, Mlp};
use super::config::{DecoderConfig, Sam2Config, SingleMask};
use super::transformer::TwoWayTransformer;
use crate::model::gelu::gelu;
use crate::model::upscale::ConvTranspose2x2;

/// Everything the decoder computes for all `1 + num_multimask_outputs` mask tokens, before
/// the single/multi-mask selection.
#[derive(Debug, Clone)]
pub struct DecoderOutput {
    /// Mask logits from the analytic (mean) pixel head, `B, 4, 4h, 4w`.
    pub masks: Tensor,
    /// Predicted IoU per mask token, `B, 4`.
    pub iou: Tensor,
    /// Object-score logit, `B, 1`.
    pub obj_score: Tensor,
    /// Upscaled per-pixel embedding, `B, C/8, 4h, 4w` (input of the pixel head).
    pub upscaled: Tensor,
    /// Output mask tokens, `B, 4, C`.
    pub mask_tokens: Tensor,
}

/// The per-pixel step: SAM's hypernetwork product or RUAC's Bayesian head.
#[derive(Debug, Clone)]
pub enum PixelHead {
    /// `output_hypernetworks_mlps`: one MLP per mask token, dotted with the pixel embedding.
    Hypernetwork(Vec<Mlp>),
    Bayesian(BayesianPixelHead),
}

impl PixelHead {
    /// Mask logits `B, K, H, W` from the upscaled embedding `B, C, H, W` and the mask tokens
    /// `B, K, D` (the last step of `MaskDecoder.predict_masks`, SAM 1 and SAM 2 alike; the
    /// Bayesian head gives its mean logits).
    pub fn logits(&self, up: &Tensor, mask_tokens: &Tensor) -> Result<Tensor> {
        match self {
            PixelHead::Hypernetwork(mlps) => {
                let hyper = mlps
                    .iter()
                    .enumerate()
                    .map(|(i, m)| m.forward(&mask_tokens.narrow(1, i, 1)?))
                    .collect::<Result<Vec<_>>>()?;
                let hyper = Tensor::cat(&hyper, 1)?;
                let (b, cu, hu, wu) = up.dims4()?;
                hyper.matmul(&up.reshape((b, cu, hu * wu))?)?.reshape((b, mlps.len(), hu, wu))
            }
            PixelHead::Bayesian(head) => head.mean_logits(up, mask_tokens),
        }
    }
}

#[derive(Debug, Clone)]
pub struct MaskDecoder {
    pub transformer: TwoWayTransformer,
    iou_token: Tensor,
    mask_tokens: Tensor,
    obj_score_token: Tensor,
    upscale_conv1: ConvTranspose2x2,
    upscale_ln: LayerNorm2d,
    upscale_conv2: ConvTranspose2x2,
    pub conv_s0: Conv2d,
    pub conv_s1: Conv2d,
    pub pixel_head: PixelHead,
    iou_prediction_head: Mlp,
    pred_obj_score_head: Mlp,
    cfg: DecoderConfig,
}

impl MaskDecoder {
    pub fn new(cfg: &Sam2Config, vb: VarBuilder) -> Result<Self> {
        let d = cfg.d_model;
        let dc = &cfg.decoder;
        let n_tokens = dc.num_multimask_outputs + 1;
        let ou = vb.pp("output_upscaling");
        let pixel_head = match &cfg.bayes_head {
            Some(_) => PixelHead::Bayesian(BayesianPixelHead::new(d, d / 8, n_tokens, vb.clone())?),
            None => PixelHead::Hypernetwork(
                (0..n_tokens)
                    .map(|i| Mlp::new(vb.pp(format!("output_hypernetworks_mlps.{i}")), d, d, d / 8, 3, Activation::Relu, false))
                    .collect::<Result<Vec<_>>>()?,
            ),
        };
        Ok(Self {
            transformer: TwoWayTransformer::new(
                dc.transformer_depth,
                d,
                dc.transformer_heads,
                dc.transformer_mlp_dim,
                dc.attention_downsample_rate,
                vb.pp("transformer"),
            )?,
            iou_token: vb.pp("iou_token").get((1, d), "weight")?,
            mask_tokens: vb.pp("mask_tokens").get((n_tokens, d), "weight")?,
            obj_score_token: vb.pp("obj_score_token").get((1, d), "weight")?,
            upscale_conv1: ConvTranspose2x2::new(d, d / 4, ou.pp("0"))?,
            upscale_ln: LayerNorm2d::new(d / 4, ou.pp("1"))?,
            upscale_conv2: ConvTranspose2x2::new(d / 4, d / 8, ou.pp("3"))?,
            conv_s0: conv2d(d, d / 8, 1, Conv2dConfig::default(), vb.pp("conv_s0"))?,
            conv_s1: conv2d(d, d / 4, 1, Conv2dConfig::default(), vb.pp("conv_s1"))?,
            pixel_head,
            iou_prediction_head: Mlp::new(vb.pp("iou_prediction_head"), d, dc.iou_head_hidden_dim, n_tokens, dc.iou_head_depth, Activation::Relu, true)?,
            pred_obj_score_head: Mlp::new(vb.pp("pred_obj_score_head"), d, d, 1, 3, Activation::Relu, false)?,
            cfg: dc.clone(),
        })
    }

    /// `predict_masks`. `image_embeddings` `B, C, h, w` (already with `no_mem_embed`),
    /// `image_pe` `1, C, h, w`, `sparse` `B, N, C`, `dense` `B, C, h, w`,
    /// `high_res` = (`feat_s0` `B, C/8, 4h, 4w`, `feat_s1` `B, C/4, 2h, 2w`).
    pub fn predict_masks(
        &self,
        image_embeddings: &Tensor,
        image_pe: &Tensor,
        sparse: &Tensor,
        dense: &Tensor,
        high_res: (&Tensor, &Tensor),
    ) -> Result<DecoderOutput> {
        let b = sparse.dim(0)?;
        let output_tokens = Tensor::cat(&[&self.obj_score_token, &self.iou_token, &self.mask_tokens], 0)?;
        let (nt, d) = output_tokens.dims2()?;
        let output_tokens = output_tokens.unsqueeze(0)?.broadcast_as((b, nt, d))?;
        let tokens = Tensor::cat(&[&output_tokens, &sparse.to_dtype(output_tokens.dtype())?], 1)?;
        let src = image_embeddings.broadcast_add(dense)?;
        let (_, c, h, w) = src.dims4()?;
        let (hs, src) = self.transformer.forward(&src, image_pe, &tokens)?;
        let iou_token_out = hs.narrow(1, 1, 1)?.squeeze(1)?;
        let n_mask = self.cfg.num_multimask_outputs + 1;
        let mask_tokens_out = hs.narrow(1, 2, n_mask)?;

        let src = src.transpose(1, 2)?.reshape((b, c, h, w))?;
        let (feat_s0, feat_s1) = high_res;
        let up = self.upscale_conv1.forward(&src)?.broadcast_add(feat_s1)?;
        let up = gelu(&self.upscale_ln.forward(&up)?)?;
        let up = gelu(&self.upscale_conv2.forward(&up)?.broadcast_add(feat_s0)?)?;

        let masks = self.pixel_head.logits(&up, &mask_tokens_out)?;
        let iou = self.iou_prediction_head.forward(&iou_token_out)?;
        let obj_score = self.pred_obj_score_head.forward(&hs.narrow(1, 0, 1)?.squeeze(1)?)?;
        Ok(DecoderOutput { masks, iou, obj_score, upscaled: up, mask_tokens: mask_tokens_out })
    }

    /// Which mask tokens to return for each batch element (`forward` of the reference):
    /// [`select_tokens`] with the stability fallback.
    pub fn select_tokens(&self, out: &DecoderOutput, multimask_output: bool) -> Result<Vec<Vec<usize>>> {
        let b = out.masks.dim(0)?;
        let rule = SingleMask::stability(&self.cfg);
        let iou = out.iou.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
        let mut picks = Vec::with_capacity(b);
        for (bi, iou_b) in iou.iter().enumerate() {
            let single = out.masks.get(bi)?.get(0)?.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
            picks.push(select_tokens(multimask_output, self.cfg.num_multimask_outputs, rule, &single, iou_b));
        }
        Ok(picks)
    }
}

/// The mask tokens returned for one prompt: tokens `1..=n_multimask` for multimask output;
/// otherwise token 0, or with [`SingleMask::Stability`] the multimask token with the best
/// predicted IoU when token 0's stability score (`single_logits`, its low-resolution logits)
/// is below the threshold (`_dynamic_multimask_via_stability`). `iou` has every token's
/// predicted IoU.
pub fn select_tokens(multimask: bool, n_multimask: usize, rule: SingleMask, single_logits: &[f32], iou: &[f32]) -> Vec<usize> {
    if multimask {
        return (1..=n_multimask).collect();
    }
    match rule {
        SingleMask::FirstToken => vec![0],
        SingleMask::Stability { delta, thresh } => {
            if stability_score(single_logits, delta) >= thresh {
                return vec![0];
            }
            // First maximum, as torch.argmax.
            let mut best = 1;
            for k in 2..=n_multimask {
                if iou[k] > iou[best] {
                    best = k;
                }
            }
            vec![best]
        }
    }
}

/// `_get_stability_scores`: IoU of the mask thresholded at +delta and at -delta.
pub fn stability_score(logits: &[f32], delta: f32) -> f32 {
    let inter = logits.iter().filter(|&&x| x > delta).count() as f32;
    let union = logits.iter().filter(|&&x| x > -delta).count() as f32;
    if union > 0.0 {
        inter / union
    } else {
        1.0
    }
}

/// Gathers per-batch token indices along dimension 1 of a `B, K, ...` tensor.
pub fn gather_tokens(t: &Tensor, picks: &[Vec<usize>]) -> Result<Tensor> {
    let rows = picks
        .iter()
        .enumerate()
        .map(|(bi, ks)| {
            let idx = Tensor::new(ks.iter().map(|&k| k as u32).collect::<Vec<_>>().as_slice(), t.device())?;
            t.get(bi)?.index_select(&idx, 0)
        })
        .collect::<Result<Vec<_>>>()?;
    Tensor::stack(&rows, 0)
}
