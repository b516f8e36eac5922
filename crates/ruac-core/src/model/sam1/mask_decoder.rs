//! SAM 1's mask decoder (`segment_anything/modeling/mask_decoder.py`, also vendored by
//! MobileSAM and LiteMedSAM): the two-way transformer over [IoU, 4 mask] tokens plus the
//! prompt tokens, a plain upscaling path (no skip features, no object-score token), the IoU
//! head (no sigmoid), and the per-pixel head: SAM's hypernetwork product or, as in the SAM 2
//! decoder (`model::mask_decoder`), RUAC's [`BayesianPixelHead`] under `pixel_bndl`.
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::model::bayes_head::BayesianPixelHead;
use crate::model::common::{Activation, LayerNorm2d, Mlp};
use crate::model::mask_decoder::PixelHead;
use crate::model::transformer::TwoWayTransformer;
use crate::model::gelu::gelu;
use crate::model::upscale::ConvTranspose2x2;

/// Decoder hyper-parameters (every SAM 1 checkpoint uses the defaults).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sam1DecoderConfig {
    pub transformer_dim: usize,
    pub num_multimask_outputs: usize,
    pub transformer_depth: usize,
    pub transformer_heads: usize,
    pub transformer_mlp_dim: usize,
    pub attention_downsample_rate: usize,
    pub iou_head_depth: usize,
    pub iou_head_hidden_dim: usize,
    /// RUAC's Bayesian pixel head in place of the hypernetwork MLPs.
    pub bayes_head: bool,
}

impl Default for Sam1DecoderConfig {
    fn default() -> Self {
        Self {
            transformer_dim: 256,
            num_multimask_outputs: 3,
            transformer_depth: 2,
            transformer_heads: 8,
            transformer_mlp_dim: 2048,
            attention_downsample_rate: 2,
            iou_head_depth: 3,
            iou_head_hidden_dim: 256,
            bayes_head: false,
        }
    }
}

/// All `1 + num_multimask_outputs` mask tokens' outputs, before selection.
#[derive(Debug, Clone)]
pub struct Sam1DecoderOutput {
    /// Low-resolution mask logits, `B, 4, 4h, 4w`.
    pub masks: Tensor,
    /// Predicted IoU per mask token, `B, 4`.
    pub iou: Tensor,
    /// Upscaled per-pixel embedding, `B, C/8, 4h, 4w` (input of the pixel head).
    pub upscaled: Tensor,
    /// Output mask tokens, `B, 4, C`.
    pub mask_tokens: Tensor,
}

/// SAM 1's `MLPBlock` inside the two-way transformer is named `mlp.lin1`/`mlp.lin2`; SAM 2's
/// `MLP` is `mlp.layers.0`/`mlp.layers.1`, with the same computation (ReLU). The SAM 2
/// [`TwoWayTransformer`] is reused by renaming its requests.
fn sam1_transformer_names(name: &str) -> String {
    name.replace(".mlp.layers.0.", ".mlp.lin1.").replace(".mlp.layers.1.", ".mlp.lin2.")
}

#[derive(Debug, Clone)]
pub struct Sam1MaskDecoder {
    pub transformer: TwoWayTransformer,
    iou_token: Tensor,
    mask_tokens: Tensor,
    upscale_conv1: ConvTranspose2x2,
    upscale_ln: LayerNorm2d,
    upscale_conv2: ConvTranspose2x2,
    pub pixel_head: PixelHead,
    iou_prediction_head: Mlp,
    cfg: Sam1DecoderConfig,
}

impl Sam1MaskDecoder {
    pub fn new(cfg: &Sam1DecoderConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.transformer_dim;
        let n_tokens = cfg.num_multimask_outputs + 1;
        let ou = vb.pp("output_upscaling");
        let pixel_head = if cfg.bayes_head {
            PixelHead::Bayesian(BayesianPixelHead::new(d, d / 8, n_tokens, vb.clone())?)
        } else {
            PixelHead::Hypernetwork(
                (0..n_tokens)
                    .map(|i| {
                        Mlp::new(
                            vb.pp(format!("output_hypernetworks_mlps.{i}")),
                            d,
                            d,
                            d / 8,
                            3,
                            Activation::Relu,
                            false,
                        )
                    })
                    .collect::<Result<Vec<_>>>()?,
            )
        };
        // The renamer sees full names; it is installed at the root so that they resolve there.
        let prefix = vb.prefix();
        let renamed = vb.root().rename_f(sam1_transformer_names);
        let tvb = if prefix.is_empty() { renamed.pp("transformer") } else { renamed.pp(prefix).pp("transformer") };
        Ok(Self {
            transformer: TwoWayTransformer::new(
                cfg.transformer_depth,
                d,
                cfg.transformer_heads,
                cfg.transformer_mlp_dim,
                cfg.attention_downsample_rate,
                tvb,
            )?,
            iou_token: vb.pp("iou_token").get((1, d), "weight")?,
            mask_tokens: vb.pp("mask_tokens").get((n_tokens, d), "weight")?,
            upscale_conv1: ConvTranspose2x2::new(d, d / 4, ou.pp("0"))?,
            upscale_ln: LayerNorm2d::new(d / 4, ou.pp("1"))?,
            upscale_conv2: ConvTranspose2x2::new(d / 4, d / 8, ou.pp("3"))?,
            pixel_head,
            iou_prediction_head: Mlp::new(
                vb.pp("iou_prediction_head"),
                d,
                cfg.iou_head_hidden_dim,
                n_tokens,
                cfg.iou_head_depth,
                Activation::Relu,
                false,
            )?,
            cfg: cfg.clone(),
        })
    }

    pub fn config(&self) -> &Sam1DecoderConfig {
        &self.cfg
    }

    /// `predict_masks`. `image_embeddings` `1` or `B, C, h, w`, `image_pe` `1, C, h, w`,
    /// `sparse` `B, N, C`, `dense` `1` or `B, C, h, w`.
    pub fn predict_masks(
        &self,
        image_embeddings: &Tensor,
        image_pe: &Tensor,
        sparse: &Tensor,
        dense: &Tensor,
    ) -> Result<Sam1DecoderOutput> {
        let b = sparse.dim(0)?;
        let output_tokens = Tensor::cat(&[&self.iou_token, &self.mask_tokens], 0)?;
        let (nt, d) = output_tokens.dims2()?;
        let output_tokens = output_tokens.unsqueeze(0)?.broadcast_as((b, nt, d))?;
        let tokens = Tensor::cat(&[&output_tokens, &sparse.to_dtype(output_tokens.dtype())?], 1)?;
        // One image for several prompts: the reference repeats the embedding per prompt.
        let (_, c, h, w) = image_embeddings.dims4()?;
        let src = image_embeddings.broadcast_add(dense)?.broadcast_as((b, c, h, w))?.contiguous()?;
        let pos = image_pe.broadcast_as((b, c, h, w))?.contiguous()?;
        let (hs, src) = self.transformer.forward(&src, &pos, &tokens)?;
        let iou_token_out = hs.narrow(1, 0, 1)?.squeeze(1)?;
        let n_mask = self.cfg.num_multimask_outputs + 1;
        let mask_tokens_out = hs.narrow(1, 1, n_mask)?;

        let src = src.transpose(1, 2)?.reshape((b, c, h, w))?;
        let up = gelu(&self.upscale_ln.forward(&self.upscale_conv1.forward(&src)?)?)?;
        let up = gelu(&self.upscale_conv2.forward(&up)?)?;
        let masks = self.pixel_head.logits(&up, &mask_tokens_out)?;
        let iou = self.iou_prediction_head.forward(&iou_token_out)?;
        Ok(Sam1DecoderOutput { masks, iou, upscaled: up, mask_tokens: mask_tokens_out })
    }

    /// `forward`'s selection: token 0 for a single mask, tokens 1.. for multimask output
    /// (SAM 1 has no stability fallback). Returns masks and IoU predictions.
    pub fn select(&self, out: &Sam1DecoderOutput, multimask_output: bool) -> Result<(Tensor, Tensor)> {
        let n = self.cfg.num_multimask_outputs;
        let (start, len) = if multimask_output { (1, n) } else { (0, 1) };
        Ok((out.masks.narrow(1, start, len)?, out.iou.narrow(1, start, len)?))
    }
}
