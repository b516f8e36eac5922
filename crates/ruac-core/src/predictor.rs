//! The predictor, shaped like `SAM2ImagePredictor` (`sam2/sam2_image_predictor.py`):
//! `set_image` encodes once and caches the features; each `predict` runs only the prompt
//! encoder and the mask decoder, and adds RUAC's per-pixel uncertainty.
use candle_core::{DType, Device, Tensor};

use crate::image_io::{preprocess, RgbImage};
use crate::model::mask_decoder::gather_tokens;
use crate::model::mask_decoder::PixelHead;
use crate::model::ops::binary_entropy;
use crate::model::{ImageFeatures, Sam2Model};
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
    /// Predicted IoU of each mask.
    pub iou: Vec<f32>,
    /// Object-score logit (positive: an object is present).
    pub obj_score: f32,
    /// Low-resolution logits `K, S/4, S/4`, clamped to ±32 (reusable as `mask_input`).
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

pub struct Predictor {
    pub model: Sam2Model,
    device: Device,
    features: Option<ImageFeatures>,
    orig_hw: (usize, usize),
    pub mode: UncertaintyMode,
}

impl Predictor {
    pub fn new(model: Sam2Model, device: Device) -> Self {
        Self { model, device, features: None, orig_hw: (0, 0), mode: UncertaintyMode::default() }
    }

    /// Preprocesses and encodes an image of any size; the features are cached.
    pub fn set_image(&mut self, img: &RgbImage) -> Result<()> {
        let s = self.model.cfg.image_size;
        let input = Tensor::from_vec(preprocess(img, s), (1, 3, s, s), &self.device)?;
        self.set_preprocessed(&input, (img.height, img.width))
    }

    /// Encodes an already preprocessed `1, 3, S, S` tensor for an `(h, w)` original image.
    pub fn set_preprocessed(&mut self, input: &Tensor, orig_hw: (usize, usize)) -> Result<()> {
        self.features = Some(self.model.encode_image(input)?);
        self.orig_hw = orig_hw;
        Ok(())
    }

    pub fn features(&self) -> Option<&ImageFeatures> {
        self.features.as_ref()
    }

    pub fn orig_hw(&self) -> (usize, usize) {
        self.orig_hw
    }

    fn validate(&self, p: &Prompt) -> Result<()> {
        let (h, w) = self.orig_hw;
        if p.points.is_empty() && p.bbox.is_none() && p.mask_input.is_none() {
            return Err(Error::Prompt("no prompt: give at least one point, a box or a mask".into()));
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
            let lr = self.model.cfg.low_res_size();
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
        let s = self.model.cfg.image_size as f32;
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

    /// Runs the prompt encoder and mask decoder on the cached image features.
    pub fn predict(&self, p: &Prompt) -> Result<Prediction> {
        let feats = self.features.as_ref().ok_or(Error::NoImage)?;
        self.validate(p)?;
        let model = &self.model;
        let pts = self.prompt_tensors(p)?;
        let (sparse, dense) = model.prompt_encoder.forward(pts.as_ref().map(|(a, b)| (a, b)), p.mask_input.as_ref())?;
        let dense_pe = model.prompt_encoder.get_dense_pe()?;
        let dec = &model.mask_decoder;
        let out = dec.predict_masks(&feats.image_embed, &dense_pe, &sparse, &dense, (&feats.feat_s0, &feats.feat_s1))?;

        // RUAC's decoder does not use the stability fallback (it is not passed in the
        // released trainer); plain SAM 2.1 does.
        let picks = match (&dec.pixel_head, p.multimask) {
            (PixelHead::Bayesian(_), false) => vec![vec![0]],
            _ => dec.select_tokens(&out, p.multimask)?,
        };
        let tokens = picks[0].clone();
        let low = gather_tokens(&out.masks, &picks)?; // 1,K,lr,lr
        let iou = gather_tokens(&out.iou.unsqueeze(2)?, &picks)?.flatten_all()?.to_vec1::<f32>()?;
        let obj_score = out.obj_score.flatten_all()?.to_vec1::<f32>()?[0];

        let unc_all = match &dec.pixel_head {
            PixelHead::Bayesian(head) => match self.mode {
                UncertaintyMode::MonteCarlo { samples, seed } => head.mc_uncertainty(&out.upscaled, &out.mask_tokens, samples.max(1), seed)?.0,
                UncertaintyMode::Analytic => head.analytic_uncertainty(&out.upscaled, &out.mask_tokens, 0.0, 0.02)?,
            },
            // Plain SAM 2.1 has no posterior: its only per-pixel signal is the entropy of its
            // own sigmoid probability, which is what the baseline rows of the paper compare.
            PixelHead::Hypernetwork(_) => {
                let e = binary_entropy(&candle_nn::ops::sigmoid(&out.masks)?, crate::model::bayes_head::PROB_CLAMP)?;
                match self.mode {
                    UncertaintyMode::Analytic => (e / std::f64::consts::LN_2)?,
                    UncertaintyMode::MonteCarlo { .. } => e,
                }
            }
        };
        let unc_low = gather_tokens(&unc_all, &picks)?;

        let (h, w) = self.orig_hw;
        let masks = low.upsample_bilinear2d(h, w, false)?.squeeze(0)?;
        let uncertainty = unc_low.upsample_bilinear2d(h, w, false)?.squeeze(0)?;
        Ok(Prediction {
            masks,
            iou,
            obj_score,
            low_res_logits: low.clamp(-32.0, 32.0)?.squeeze(0)?,
            uncertainty,
            uncertainty_low_res: unc_low.squeeze(0)?,
            tokens,
            mode: self.mode,
        })
    }

    pub fn dtype(&self) -> DType {
        DType::F32
    }
}
