//! What a prediction is, independent of the backend that made it: the uncertainty mode, the
//! flat [`PredictionMaps`] that both predictors fill and the page reads, and the tensor form
//! [`Prediction`] for code that keeps computing with candle.
use candle_core::{Device, Tensor};

use crate::Result;

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

    /// The divisor that turns a plain SAM head's binary entropy (nats) into this mode's
    /// unit: 1 for Monte Carlo (nats), ln 2 for analytic (normalised).
    pub fn entropy_divisor(&self) -> f32 {
        match self {
            UncertaintyMode::MonteCarlo { .. } => 1.0,
            UncertaintyMode::Analytic => std::f32::consts::LN_2,
        }
    }
}

/// Index of the highest value (the first one on ties).
pub fn best_index(iou: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in iou.iter().enumerate() {
        if *v > iou[best] {
            best = i;
        }
    }
    best
}

/// One prediction as flat row-major arrays: what `GpuPredictor::predict` fills directly,
/// what `Predictor::predict_maps` returns, and what the page reads. `K` is 3 with multimask
/// output, otherwise 1.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionMaps {
    pub k: usize,
    pub height: usize,
    pub width: usize,
    /// Mask logits at image resolution, `K x H x W` (threshold at 0 for the mask).
    pub masks: Vec<f32>,
    /// Per-pixel uncertainty at image resolution, `K x H x W`.
    pub uncertainty: Vec<f32>,
    /// Side of the low-resolution maps.
    pub low_res: usize,
    /// Low-resolution logits, `K x lr x lr`, clamped to ±32 (reusable as a mask prompt).
    pub low_res_logits: Vec<f32>,
    /// The uncertainty at low resolution, `K x lr x lr`.
    pub uncertainty_low_res: Vec<f32>,
    /// Predicted IoU of each mask (SAM 2.1: sigmoid; SAM 1: the head's raw output).
    pub iou: Vec<f32>,
    /// Object-score logit; `+inf` for SAM 1, which has no object-score head.
    pub obj_score: f32,
    /// Mask token behind each returned mask (0 = single-mask token).
    pub tokens: Vec<usize>,
    pub mode: UncertaintyMode,
}

impl PredictionMaps {
    /// Index of the mask with the highest predicted IoU.
    pub fn best(&self) -> usize {
        best_index(&self.iou)
    }

    /// The tensor form (`K, H, W` and `K, lr, lr`) on `device`.
    pub fn to_prediction(&self, device: &Device) -> Result<Prediction> {
        let (k, lr) = (self.k, self.low_res);
        Ok(Prediction {
            masks: Tensor::from_slice(&self.masks, (k, self.height, self.width), device)?,
            iou: self.iou.clone(),
            obj_score: self.obj_score,
            low_res_logits: Tensor::from_slice(&self.low_res_logits, (k, lr, lr), device)?,
            uncertainty: Tensor::from_slice(&self.uncertainty, (k, self.height, self.width), device)?,
            uncertainty_low_res: Tensor::from_slice(&self.uncertainty_low_res, (k, lr, lr), device)?,
            tokens: self.tokens.clone(),
            mode: self.mode,
        })
    }
}

/// A prediction as candle tensors (what `Predictor::predict` returns; the CLI and the
/// training code keep computing with it).
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
        best_index(&self.iou)
    }

    /// The flat form.
    pub fn to_maps(&self) -> Result<PredictionMaps> {
        let flat = |t: &Tensor| -> Result<Vec<f32>> { Ok(t.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?) };
        let (k, height, width) = self.masks.dims3()?;
        Ok(PredictionMaps {
            k,
            height,
            width,
            masks: flat(&self.masks)?,
            uncertainty: flat(&self.uncertainty)?,
            low_res: self.low_res_logits.dim(1)?,
            low_res_logits: flat(&self.low_res_logits)?,
            uncertainty_low_res: flat(&self.uncertainty_low_res)?,
            iou: self.iou.clone(),
            obj_score: self.obj_score,
            tokens: self.tokens.clone(),
            mode: self.mode,
        })
    }
}
