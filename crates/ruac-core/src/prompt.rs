//! Prompts: what a user gives (points, a box, an earlier mask), their checks, and where
//! they land in the model's square input. Both predictors (`Predictor` here, `GpuPredictor`
//! in ruac-gpu) and the web module call these functions, so every backend accepts the same
//! prompts with the same messages and places them identically.
//!
//! Placement follows `SAM2ImagePredictor._prep_prompts` (`sam2/sam2_image_predictor.py`:
//! coordinates scaled to the square input, the box as two corner points first) and
//! `ResizeLongestSide.apply_coords` / `apply_boxes` (`segment_anything/utils/transforms.py`:
//! `x * new_w / old_w` in f64, points before the box).
use candle_core::Tensor;

use crate::model::prompt_encoder::labels;
use crate::{Error, Result};

const BOX_TOP_LEFT: f32 = labels::BOX_TOP_LEFT as f32;
const BOX_BOTTOM_RIGHT: f32 = labels::BOX_BOTTOM_RIGHT as f32;
const PADDING: f32 = labels::PADDING as f32;

/// A point label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointLabel {
    Negative,
    Positive,
}

impl PointLabel {
    /// SAM's numeric label (1 foreground, 0 background).
    pub fn value(self) -> f32 {
        match self {
            PointLabel::Positive => labels::POSITIVE as f32,
            PointLabel::Negative => labels::NEGATIVE as f32,
        }
    }
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

impl Prompt {
    /// The checks every backend runs before decoding: something to segment, finite
    /// coordinates inside the `(h, w)` image, a non-empty box, a mask prompt of
    /// `1, 1, low_res, low_res`.
    pub fn validate(&self, (h, w): (usize, usize), low_res: usize) -> Result<()> {
        let bad = |m: String| Err(Error::Prompt(m));
        if self.points.is_empty() && self.bbox.is_none() && self.mask_input.is_none() {
            return bad("no prompt: give at least one point, a box or a mask".into());
        }
        if self.points.len() > crate::limits::MAX_POINTS {
            return bad(format!("{} points, over the limit of {}", self.points.len(), crate::limits::MAX_POINTS));
        }
        for &(x, y, _) in &self.points {
            if !x.is_finite() || !y.is_finite() {
                return bad(format!("point ({x}, {y}) is not a finite coordinate"));
            }
            if x < 0.0 || y < 0.0 || x > w as f32 || y > h as f32 {
                return bad(format!("point ({x}, {y}) lies outside the {w}x{h} image"));
            }
        }
        if let Some([x0, y0, x1, y1]) = self.bbox {
            if [x0, y0, x1, y1].iter().any(|v| !v.is_finite()) {
                return bad("box has a non-finite coordinate".into());
            }
            if x1 <= x0 || y1 <= y0 {
                return bad(format!("box ({x0}, {y0}, {x1}, {y1}) is empty: need x0 < x1 and y0 < y1"));
            }
            if x0 < 0.0 || y0 < 0.0 || x1 > w as f32 || y1 > h as f32 {
                return bad(format!("box ({x0}, {y0}, {x1}, {y1}) extends outside the {w}x{h} image"));
            }
        }
        if let Some(m) = &self.mask_input {
            if m.dims() != [1, 1, low_res, low_res] {
                return bad(format!("mask prompt has shape {:?}, expected [1, 1, {low_res}, {low_res}]", m.dims()));
            }
        }
        Ok(())
    }

    /// The mask prompt's values, row-major (`None` without one).
    pub fn mask_values(&self) -> Result<Option<Vec<f32>>> {
        match &self.mask_input {
            Some(m) => Ok(Some(m.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?)),
            None => Ok(None),
        }
    }
}

/// How a model family maps image coordinates into its square input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Placement {
    /// SAM 2.1: `x / w * S` in f32, the box as corner points (labels 2, 3) before the points.
    Sam2 { image_size: usize },
    /// SAM 1: `x * (new_w / old_w)` in f64 to the `input_hw` the image was resized to
    /// (LiteMedSAM stretches to the square, so there it is the square), the box kept apart.
    Sam1 { input_hw: (usize, usize) },
}

/// A prompt in input pixels, before the prompt encoder adds 0.5 and the padding point.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedPrompt {
    /// `(x, y, label)` in the order the prompt encoder embeds them (SAM 2.1: box corners
    /// first, labels 2 and 3).
    pub points: Vec<(f32, f32, f32)>,
    /// SAM 1's box `(x0, y0, x1, y1)`, embedded after the points (always `None` for SAM 2.1).
    pub bbox: Option<[f32; 4]>,
}

impl PlacedPrompt {
    /// The sparse prompt as the prompt encoder embeds it (`_embed_points` / `_embed_boxes`):
    /// every coordinate + 0.5; after the points a padding point (label -1) when there is no
    /// separate box (SAM 2.1 always pads, SAM 1 only without a box); then the box's corners
    /// (labels 2, 3).
    pub fn encoder_points(&self) -> Vec<(f32, f32, f32)> {
        let mut out: Vec<(f32, f32, f32)> = self.points.iter().map(|&(x, y, l)| (x + 0.5, y + 0.5, l)).collect();
        if !out.is_empty() && self.bbox.is_none() {
            out.push((0.0, 0.0, PADDING));
        }
        if let Some([x0, y0, x1, y1]) = self.bbox {
            out.push((x0 + 0.5, y0 + 0.5, BOX_TOP_LEFT));
            out.push((x1 + 0.5, y1 + 0.5, BOX_BOTTOM_RIGHT));
        }
        out
    }

    /// Flat `x, y` coordinates and labels of [`PlacedPrompt::points`] (`None` without points).
    pub fn coords_labels(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        if self.points.is_empty() {
            return None;
        }
        Some((self.points.iter().flat_map(|p| [p.0, p.1]).collect(), self.points.iter().map(|p| p.2).collect()))
    }
}

impl Placement {
    /// `prompt` (image pixels of an `(h, w)` image) in input pixels.
    pub fn place(&self, prompt: &Prompt, (h, w): (usize, usize)) -> PlacedPrompt {
        match *self {
            Placement::Sam2 { image_size } => {
                let s = image_size as f32;
                let at = |x: f32, y: f32| (x / w as f32 * s, y / h as f32 * s);
                let mut points = Vec::with_capacity(prompt.points.len() + 2);
                if let Some([x0, y0, x1, y1]) = prompt.bbox {
                    let ((a, b), (c, d)) = (at(x0, y0), at(x1, y1));
                    points.push((a, b, BOX_TOP_LEFT));
                    points.push((c, d, BOX_BOTTOM_RIGHT));
                }
                points.extend(prompt.points.iter().map(|&(x, y, l)| {
                    let (px, py) = at(x, y);
                    (px, py, l.value())
                }));
                PlacedPrompt { points, bbox: None }
            }
            Placement::Sam1 { input_hw: (nh, nw) } => {
                let (sx, sy) = (nw as f64 / w as f64, nh as f64 / h as f64);
                let at = |x: f32, y: f32| ((x as f64 * sx) as f32, (y as f64 * sy) as f32);
                let points = prompt
                    .points
                    .iter()
                    .map(|&(x, y, l)| {
                        let (px, py) = at(x, y);
                        (px, py, l.value())
                    })
                    .collect();
                let bbox = prompt.bbox.map(|[x0, y0, x1, y1]| {
                    let ((a, b), (c, d)) = (at(x0, y0), at(x1, y1));
                    [a, b, c, d]
                });
                PlacedPrompt { points, bbox }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sam2_puts_the_box_first_and_always_pads() {
        let p = Prompt { points: vec![(10.0, 5.0, PointLabel::Positive)], bbox: Some([0.0, 0.0, 20.0, 10.0]), ..Default::default() };
        let placed = Placement::Sam2 { image_size: 64 }.place(&p, (10, 20));
        assert_eq!(placed.points, vec![(0.0, 0.0, 2.0), (64.0, 64.0, 3.0), (32.0, 32.0, 1.0)]);
        let enc = placed.encoder_points();
        assert_eq!(enc.last(), Some(&(0.0, 0.0, PADDING)));
        assert_eq!(enc[2], (32.5, 32.5, 1.0));
    }

    #[test]
    fn sam1_keeps_the_box_apart_and_pads_only_without_it() {
        let p = Prompt { points: vec![(10.0, 5.0, PointLabel::Negative)], ..Default::default() };
        let sam1 = Placement::Sam1 { input_hw: (32, 64) };
        assert_eq!(sam1.place(&p, (10, 20)).encoder_points(), vec![(32.5, 16.5, 0.0), (0.0, 0.0, PADDING)]);
        let with_box = Prompt { bbox: Some([0.0, 0.0, 20.0, 10.0]), ..p };
        let enc = sam1.place(&with_box, (10, 20)).encoder_points();
        assert_eq!(enc, vec![(32.5, 16.5, 0.0), (0.5, 0.5, 2.0), (64.5, 32.5, 3.0)]);
    }

    #[test]
    fn validation_names_the_problem() {
        let msg = |p: &Prompt| p.validate((10, 20), 16).unwrap_err().to_string();
        assert!(msg(&Prompt::default()).contains("no prompt"));
        let p = Prompt { points: vec![(30.0, 1.0, PointLabel::Positive)], ..Default::default() };
        assert!(msg(&p).contains("outside the 20x10 image"));
        let p = Prompt { bbox: Some([5.0, 5.0, 5.0, 9.0]), ..Default::default() };
        assert!(msg(&p).contains("empty"));
    }
}
