//! The mask decoder on the GPU, as ruac-core's `model/mask_decoder.rs` and
//! `model/sam1/mask_decoder.rs` (`sam/mask_decoder.py`, `segment_anything/modeling/
//! mask_decoder.py`): output tokens, the two-way transformer, the upscaling path (with SAM
//! 2.1's high-resolution skips), the IoU and object-score heads and the pixel head. One
//! decoder serves both families; [`DecoderKind`] picks the checkpoint names and the parts
//! SAM 1 lacks.
use ruac_core::model::config::Sam2Config;
use ruac_core::model::sam1::Sam1Config;
use ruac_core::predictor::UncertaintyMode;

use crate::bayes_head::{PixelHead, PixelInputs};
use crate::error::Result;
use crate::gpu::{GBuf, Gpu};
use crate::kernels::bayes::HeadShape;
use crate::kernels::conv::{conv_t2x2, Conv2d};
use crate::kernels::matmul::Act;
use crate::layers::{Lin, Norm, Out};
use crate::loader::Weights;
use crate::prompt_encoder::PromptEncoder;
use crate::transformer::TwoWayTransformer;

/// Which decoder: SAM 2.1's (object-score token and head, high-resolution skips, sigmoid
/// IoU, `sam_*` names) or SAM 1's (none of these, `prompt_encoder` / `mask_decoder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecoderKind {
    Sam2,
    Sam1,
}

/// The decoder's sizes, read from either family's configuration.
pub struct DecoderDims {
    /// Transformer width.
    pub d: usize,
    /// Side of the image embedding.
    pub embedding_size: usize,
    pub image_size: usize,
    pub heads: usize,
    pub depth: usize,
    pub n_tokens: usize,
    pub iou_head_depth: usize,
    pub bayes: bool,
}

impl DecoderDims {
    pub fn sam2(cfg: &Sam2Config) -> Self {
        let dc = &cfg.decoder;
        Self {
            d: cfg.d_model,
            embedding_size: cfg.embedding_size(),
            image_size: cfg.image_size,
            heads: dc.transformer_heads,
            depth: dc.transformer_depth,
            n_tokens: dc.num_multimask_outputs + 1,
            iou_head_depth: dc.iou_head_depth,
            bayes: cfg.bayes_head.is_some(),
        }
    }

    pub fn sam1(cfg: &Sam1Config) -> Self {
        let dc = &cfg.decoder;
        Self {
            d: dc.transformer_dim,
            embedding_size: cfg.embedding_size(),
            image_size: cfg.image_size(),
            heads: dc.transformer_heads,
            depth: dc.transformer_depth,
            n_tokens: dc.num_multimask_outputs + 1,
            iou_head_depth: dc.iou_head_depth,
            bayes: dc.bayes_head,
        }
    }
}

/// A 2x2 stride-2 transposed convolution of the upscaling path.
struct ConvT2x2 {
    w: wgpu::Buffer,
    b: wgpu::Buffer,
    cin: usize,
    cout: usize,
}

impl ConvT2x2 {
    fn new(w: &Weights, cin: usize, cout: usize) -> Result<Self> {
        Ok(Self { w: w.buf("weight")?, b: w.buf("bias")?, cin, cout })
    }

    fn forward(&self, gpu: &Gpu, x: &wgpu::Buffer, side: usize, skip: Option<&wgpu::Buffer>, act: Act) -> Result<GBuf> {
        let c = Conv2d { w: &self.w, b: &self.b, cin: self.cin, cout: self.cout, k: 2, stride: 2, pad: 0 };
        conv_t2x2(gpu, x, (side, side), &c, skip, act)
    }
}

/// `MaskDecoder`.
pub struct MaskDecoder {
    kind: DecoderKind,
    transformer: TwoWayTransformer,
    /// SAM 2.1: `[obj_score_token, iou_token, mask_tokens]`, `(2 + k) x d`; SAM 1:
    /// `[iou_token, mask_tokens]`.
    output_tokens: wgpu::Buffer,
    upscale_conv1: ConvT2x2,
    upscale_norm: Norm,
    upscale_conv2: ConvT2x2,
    pixel_head: PixelHead,
    iou_prediction_head: Vec<Lin>,
    pred_obj_score_head: Vec<Lin>,
    d: usize,
    embedding_size: usize,
    pub n_tokens: usize,
}

/// Everything the decoder computes for all mask tokens (before the selection).
pub struct DecoderOut {
    /// Mask logits, `k x lr*lr`.
    pub masks: GBuf,
    /// IoU per token (`k`), then the object-score logit, in one buffer.
    pub iou_obj: GBuf,
    /// Uncertainty per token, `k x lr*lr`.
    pub uncertainty: GBuf,
}

/// The decoder's inputs for one prompt.
pub struct DecodeInput<'a> {
    /// `e*e x d` (SAM 2.1: with `no_mem_embed` added).
    pub image_embed: &'a wgpu::Buffer,
    /// SAM 2.1's `conv_s0` / `conv_s1` features.
    pub skips: Option<(&'a wgpu::Buffer, &'a wgpu::Buffer)>,
    /// As `PlacedPrompt::encoder_points` gives them.
    pub points: &'a [(f32, f32, f32)],
    /// A `4e x 4e` mask prompt.
    pub mask_input: Option<&'a [f32]>,
}

impl MaskDecoder {
    pub fn new(w: &Weights, kind: DecoderKind, dims: &DecoderDims) -> Result<Self> {
        let d = dims.d;
        let sam2 = kind == DecoderKind::Sam2;
        // SAM 1's `MLPBlock` in the two-way transformer is `lin1`/`lin2` (sam1/mask_decoder.rs).
        let mlp = if sam2 { ["mlp.layers.0", "mlp.layers.1"] } else { ["mlp.lin1", "mlp.lin2"] };
        let mut output_tokens = if sam2 { w.pp("obj_score_token").host("weight")?.0 } else { vec![] };
        output_tokens.extend(w.pp("iou_token").host("weight")?.0);
        output_tokens.extend(w.pp("mask_tokens").host("weight")?.0);
        let up = w.pp("output_upscaling");
        let mlp_head = |name: &str, depth: usize| (0..depth).map(|i| w.lin(format!("{name}.layers.{i}"))).collect::<Result<Vec<_>>>();
        Ok(Self {
            kind,
            transformer: TwoWayTransformer::new(&w.pp("transformer"), dims.depth, dims.heads, mlp)?,
            output_tokens: w.gpu().upload("output_tokens", &output_tokens),
            upscale_conv1: ConvT2x2::new(&up.pp("0"), d, d / 4)?,
            upscale_norm: up.norm("1", 1e-6)?,
            upscale_conv2: ConvT2x2::new(&up.pp("3"), d / 4, d / 8)?,
            pixel_head: PixelHead::new(w, dims.bayes, dims.n_tokens)?,
            iou_prediction_head: mlp_head("iou_prediction_head", dims.iou_head_depth)?,
            pred_obj_score_head: if sam2 { mlp_head("pred_obj_score_head", 3)? } else { vec![] },
            d,
            embedding_size: dims.embedding_size,
            n_tokens: dims.n_tokens,
        })
    }

    /// Output tokens before the mask tokens: `[obj, iou]` (SAM 2.1) or `[iou]` (SAM 1).
    fn n_special(&self) -> usize {
        match self.kind {
            DecoderKind::Sam2 => 2,
            DecoderKind::Sam1 => 1,
        }
    }

    /// `predict_masks` for the image `src` (embedding + dense prompt, consumed) and the
    /// sparse prompt (`n x d`), then every mask token's uncertainty.
    pub fn forward(&self, gpu: &Gpu, (src, image_pe): (GBuf, &wgpu::Buffer), sparse: Option<(&GBuf, usize)>, skips: Option<(&wgpu::Buffer, &wgpu::Buffer)>, mode: UncertaintyMode) -> Result<DecoderOut> {
        let (d, e) = (self.d, self.embedding_size);
        let hw = e * e;
        let lhw = 16 * hw;
        let c8 = d / 8;
        let kt = self.n_tokens;
        // Tokens: [obj (SAM 2.1), iou, mask tokens, sparse].
        let ns = self.n_special();
        let np = sparse.map_or(0, |s| s.1);
        let nt = ns + kt + np;
        let tokens = gpu.alloc(nt * d)?;
        gpu.copy(&self.output_tokens, 0, &tokens, 0, (ns + kt) * d);
        if let Some((s, n)) = sparse {
            gpu.copy(s, 0, &tokens, (ns + kt) * d, n * d);
        }
        let (hs, keys) = self.transformer.forward(gpu, (&tokens, nt), (src, hw), image_pe)?;

        // Upscaling, with the high-resolution skips in SAM 2.1.
        let (s0, s1) = match skips {
            Some((s0, s1)) => (Some(s0), Some(s1)),
            None => (None, None),
        };
        let up1 = self.upscale_conv1.forward(gpu, &keys, e, s1, Act::None)?;
        let up1 = self.upscale_norm.forward(gpu, &up1, 4 * hw, Act::Gelu)?;
        let upscaled = self.upscale_conv2.forward(gpu, &up1, 2 * e, s0, Act::Gelu)?;
        drop((up1, keys));

        // IoU head (SAM 2.1: token 1, sigmoid output; SAM 1: token 0, raw) and SAM 2.1's
        // object-score head (token 0).
        let iou_obj = gpu.alloc(kt + 1)?;
        let head = |layers: &[Lin], row: usize, out_off: usize, last: Act| -> Result<()> {
            let mut x = layers[0].forward_at(gpu, (&hs, row * d), 1, if layers.len() > 1 { Act::Relu } else { last })?;
            for (i, l) in layers.iter().enumerate().skip(1) {
                if i + 1 == layers.len() {
                    l.forward_into(gpu, (&x, 0), 1, last, Out { buf: &iou_obj, off: out_off, add: false })?;
                } else {
                    x = l.forward(gpu, &x, 1, Act::Relu)?;
                }
            }
            if layers.len() == 1 {
                gpu.copy(&x, 0, &iou_obj, out_off, layers[0].dout);
            }
            Ok(())
        };
        if self.kind == DecoderKind::Sam2 {
            head(&self.iou_prediction_head, 1, 0, Act::Sigmoid)?;
            head(&self.pred_obj_score_head, 0, kt, Act::None)?;
        } else {
            head(&self.iou_prediction_head, 0, 0, Act::None)?;
        }

        let inputs = PixelInputs { upscaled: &upscaled, tokens: &hs, first: ns, d, shape: HeadShape { hw: lhw, c: c8, k: kt } };
        let (masks, uncertainty) = self.pixel_head.forward(gpu, &inputs, mode)?;
        Ok(DecoderOut { masks, iou_obj, uncertainty })
    }
}

/// The prompt encoder and the mask decoder, which both families run the same way.
pub struct Decoder {
    pub prompt_encoder: PromptEncoder,
    pub mask_decoder: MaskDecoder,
}

impl Decoder {
    /// `prompt`, `mask`: the two scopes (`sam_prompt_encoder`, `sam_mask_decoder` in SAM
    /// 2.1; `prompt_encoder`, `mask_decoder` in SAM 1).
    pub fn new((prompt, mask): (&Weights, &Weights), kind: DecoderKind, dims: &DecoderDims) -> Result<Self> {
        Ok(Self {
            prompt_encoder: PromptEncoder::new(prompt, dims.d, dims.embedding_size, dims.image_size)?,
            mask_decoder: MaskDecoder::new(mask, kind, dims)?,
        })
    }

    /// Prompt encoder, mask decoder and uncertainty of every mask token.
    pub fn decode(&self, gpu: &Gpu, input: &DecodeInput, mode: UncertaintyMode) -> Result<DecoderOut> {
        let sparse = self.prompt_encoder.sparse(gpu, input.points)?;
        let src = self.prompt_encoder.with_dense(gpu, input.image_embed, input.mask_input)?;
        let sparse = sparse.as_ref().map(|s| (s, input.points.len()));
        self.mask_decoder.forward(gpu, (src, &self.prompt_encoder.dense_pe), sparse, input.skips, mode)
    }
}
