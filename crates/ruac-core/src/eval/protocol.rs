//! The prompt protocols of the paper's evaluation (1, 3 and 5 deterministic clicks, the ground
//! truth's box) and where an object's predictions come from: a model run through the click
//! protocol (`clicks.rs`), or maps saved by another tool (`.npy`, layout in
//! docs/EVALUATION.md).
use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};

use super::clicks::{gt_box, run_click_protocol, CLICK_COUNTS};
use crate::data::Sample;
use crate::image_io::RgbImage;
use crate::predictor::{Prediction, Prompt, PromptModel};
use crate::{Error, Result};

/// A prompt protocol of the paper's evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Clicks(usize),
    GtBox,
}

impl Protocol {
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "box" => Ok(Protocol::GtBox),
            c if c.starts_with("click") => {
                let n: usize = c[5..].parse().map_err(|_| Error::Invalid(format!("bad prompt protocol {s:?}")))?;
                if !CLICK_COUNTS.contains(&n) {
                    return Err(Error::Invalid(format!("click protocols are click1, click3, click5; got {s:?}")));
                }
                Ok(Protocol::Clicks(n))
            }
            _ => Err(Error::Invalid(format!("unknown prompt protocol {s:?} (click1, click3, click5, box)"))),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Protocol::Clicks(n) => format!("click{n}"),
            Protocol::GtBox => "box".into(),
        }
    }
}

/// One object's prediction: foreground probability, uncertainty (image size) and the mask score.
#[derive(Debug, Clone)]
pub struct ObjectPrediction {
    pub prob: Vec<f32>,
    pub uncertainty: Vec<f32>,
    pub iou_score: Option<f32>,
}

/// Where an evaluation's predictions come from.
pub trait PredictionSource {
    /// Whether predictions need the image (a model), so that the domain loop loads it.
    fn needs_image(&self) -> bool;
    /// The image of the sample whose objects come next (a model encodes it).
    fn set_image(&mut self, image: &RgbImage) -> Result<()>;
    /// Predictions of every requested protocol for object `obj_idx` of `sample`, in domain
    /// `domain`.
    fn predict_object(
        &mut self,
        domain: &str,
        sample: &Sample,
        obj_idx: usize,
        protocols: &[Protocol],
    ) -> Result<Vec<(Protocol, ObjectPrediction)>>;
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn to_object_prediction(r: &Prediction, k: usize) -> Result<ObjectPrediction> {
    let logits = r.masks.get(k)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let unc = r.uncertainty.get(k)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    Ok(ObjectPrediction { prob: logits.iter().map(|l| sigmoid(*l)).collect(), uncertainty: unc, iou_score: r.iou.get(k).copied() })
}

/// A model as the source: clicks by the deterministic protocol, one click answered with three
/// candidates (the best by predicted IoU), later clicks refining that mask with the previous
/// low-resolution logits as the mask prompt; the box with one mask.
impl<M: PromptModel> PredictionSource for M {
    fn needs_image(&self) -> bool {
        true
    }

    fn set_image(&mut self, image: &RgbImage) -> Result<()> {
        PromptModel::set_image(self, image)
    }

    fn predict_object(
        &mut self,
        _domain: &str,
        sample: &Sample,
        obj_idx: usize,
        protocols: &[Protocol],
    ) -> Result<Vec<(Protocol, ObjectPrediction)>> {
        let (w, h) = (sample.width, sample.height);
        let obj = &sample.objects[obj_idx];
        let mut out = vec![];
        let max_clicks = protocols.iter().filter_map(|p| if let Protocol::Clicks(n) = p { Some(*n) } else { None }).max();
        if let Some(max_clicks) = max_clicks {
            let mut outputs: Vec<ObjectPrediction> = vec![];
            let mut last_low: Option<Tensor> = None;
            let run = run_click_protocol(&obj.mask, w, h, max_clicks, |clicks| {
                let prompt = Prompt {
                    points: clicks.iter().map(|c| c.as_point()).collect(),
                    bbox: None,
                    mask_input: if clicks.len() > 1 { last_low.clone().map(|t| t.unsqueeze(0)).transpose()? } else { None },
                    multimask: clicks.len() == 1,
                };
                let r = PromptModel::predict(self, &prompt)?;
                let best = r.best();
                last_low = Some(r.low_res_logits.narrow(0, best, 1)?);
                let o = to_object_prediction(&r, best)?;
                let mask = o.prob.iter().map(|p| *p >= 0.5).collect();
                outputs.push(o);
                Ok(mask)
            })?;
            for p in protocols {
                if let Protocol::Clicks(k) = p {
                    if run.after(*k).is_some() {
                        let i = (k - 1).min(outputs.len() - 1);
                        out.push((*p, outputs[i].clone()));
                    }
                }
            }
        }
        if protocols.contains(&Protocol::GtBox) {
            if let Some(b) = gt_box(&obj.mask, w, h) {
                let r = PromptModel::predict(self, &Prompt { bbox: Some(b), multimask: false, ..Default::default() })?;
                out.push((Protocol::GtBox, to_object_prediction(&r, 0)?));
            }
        }
        Ok(out)
    }
}

/// Predictions saved by another tool: `<root>/<domain>/<image>/<object id>/<protocol>.prob.npy`
/// and `.unc.npy` (float32 or float64, `H x W`), with an optional `<protocol>.json` holding
/// `{"iou_score": x}`.
pub struct SavedPredictions(pub PathBuf);

impl PredictionSource for SavedPredictions {
    fn needs_image(&self) -> bool {
        false
    }

    fn set_image(&mut self, _image: &RgbImage) -> Result<()> {
        Ok(())
    }

    fn predict_object(
        &mut self,
        domain: &str,
        sample: &Sample,
        obj_idx: usize,
        protocols: &[Protocol],
    ) -> Result<Vec<(Protocol, ObjectPrediction)>> {
        let obj = &sample.objects[obj_idx];
        let base = self.0.join(domain).join(&sample.name).join(obj.id.to_string());
        protocols.iter().map(|p| Ok((*p, load_saved(&base, &p.name(), sample.width, sample.height)?))).collect()
    }
}

fn load_saved(base: &Path, protocol: &str, w: usize, h: usize) -> Result<ObjectPrediction> {
    let read = |suffix: &str| -> Result<Vec<f32>> {
        let p = base.join(format!("{protocol}.{suffix}.npy"));
        let a = crate::npy::read_npy(&p)?;
        if a.shape != [h, w] {
            return Err(Error::Invalid(format!("{}: shape {:?}, expected [{h}, {w}]", p.display(), a.shape)));
        }
        Ok(a.data)
    };
    let prob = read("prob")?;
    if prob.iter().any(|p| !(0.0..=1.0).contains(p)) {
        let p = base.join(format!("{protocol}.prob.npy"));
        return Err(Error::Invalid(format!("{}: probabilities must lie in [0, 1]", p.display())));
    }
    let uncertainty = read("unc")?;
    let js = base.join(format!("{protocol}.json"));
    let iou_score = if js.exists() {
        let text = std::fs::read_to_string(&js).map_err(|e| Error::Io { path: js.display().to_string(), source: e })?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Invalid(format!("parsing {}: {e}", js.display())))?;
        v.get("iou_score").and_then(|x| x.as_f64()).map(|x| x as f32)
    } else {
        None
    };
    Ok(ObjectPrediction { prob, uncertainty, iou_score })
}
