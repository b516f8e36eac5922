//! Patch accuracy versus patch uncertainty (PAvPU; Mukhoti & Gal, "Evaluating Bayesian
//! deep learning methods for semantic segmentation", 2018).
//!
//! The image is cut into non-overlapping `patch × patch` windows from the top-left corner;
//! windows cut by the right or bottom edge are kept with the pixels they have. When the
//! metric is restricted to a region (e.g. near the ground truth), only the region's pixels
//! of a window count, and windows without any are skipped. A window is *accurate* when its
//! pixel accuracy is ≥ the accuracy threshold and *certain* when its mean uncertainty is
//! < the uncertainty threshold. With the four counts n_ac, n_au, n_ic, n_iu:
//! PAvPU = (n_ac + n_iu) / (n_ac + n_au + n_ic + n_iu),
//! p(accurate | certain) = n_ac / (n_ac + n_ic),
//! p(uncertain | inaccurate) = n_iu / (n_ic + n_iu).

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// PAvPU settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PavpuConfig {
    /// Window side in pixels (Mukhoti & Gal: 4).
    pub patch_size: usize,
    /// A window is accurate when its pixel accuracy is ≥ this (Mukhoti & Gal: 0.5).
    pub accuracy_threshold: f64,
    /// A window is certain when its mean uncertainty is < this. It is in the unit of the
    /// map: the default, ln 2 / 2 ≈ 0.347, is half the largest binary entropy in nats (the
    /// released RUAC MC uncertainty, 0..ln 2); use 0.5 for maps normalised to 0..1.
    pub uncertainty_threshold: f64,
    /// Uncertainty thresholds of the PAvPU curve (default 0, 0.05, …, 1).
    pub curve_thresholds: Vec<f64>,
}

impl Default for PavpuConfig {
    fn default() -> Self {
        Self {
            patch_size: 4,
            accuracy_threshold: 0.5,
            uncertainty_threshold: std::f64::consts::LN_2 / 2.0,
            curve_thresholds: (0..=20).map(|k| k as f64 / 20.0).collect(),
        }
    }
}

impl PavpuConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.patch_size == 0 {
            return Err(Error::Invalid("metrics: PAvPU patch size must be >= 1".into()));
        }
        if !self.accuracy_threshold.is_finite() {
            return Err(Error::Invalid(format!(
                "metrics: PAvPU accuracy threshold {} is not finite",
                self.accuracy_threshold
            )));
        }
        if let Some(t) = std::iter::once(&self.uncertainty_threshold).chain(&self.curve_thresholds).find(|t| t.is_nan())
        {
            return Err(Error::Invalid(format!("metrics: PAvPU uncertainty threshold {t} is NaN")));
        }
        Ok(())
    }
}

/// The PAvPU counts and ratios at one uncertainty threshold. Ratios are `None` when their
/// denominator is 0 (no window at all, no certain window, no inaccurate window).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PavpuMetrics {
    pub uncertainty_threshold: f64,
    /// accurate & certain
    pub n_ac: u64,
    /// accurate & uncertain
    pub n_au: u64,
    /// inaccurate & certain
    pub n_ic: u64,
    /// inaccurate & uncertain
    pub n_iu: u64,
    pub pavpu: Option<f64>,
    pub p_accurate_given_certain: Option<f64>,
    pub p_uncertain_given_inaccurate: Option<f64>,
}

/// Per-window accuracy flag and mean uncertainty, computed once and thresholded many times.
/// One entry per window that has a counted pixel, in row-major window order.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchStats {
    pub accurate: Vec<bool>,
    pub mean_uncertainty: Vec<f64>,
}

impl PatchStats {
    /// Window statistics of a `width × height` map. `correct[i]`: pixel i is predicted
    /// correctly; `region`: the pixels that count (`None`: all).
    pub fn new(
        width: usize,
        height: usize,
        correct: &[bool],
        uncertainty: &[f32],
        region: Option<&[bool]>,
        patch_size: usize,
        accuracy_threshold: f64,
    ) -> Result<Self> {
        let n = width.checked_mul(height).filter(|&n| n > 0);
        let lens_ok =
            n == Some(correct.len()) && n == Some(uncertainty.len()) && region.is_none_or(|r| Some(r.len()) == n);
        if !lens_ok {
            return Err(Error::Invalid(format!("metrics: PAvPU inputs do not all have {width}x{height} values")));
        }
        if patch_size == 0 {
            return Err(Error::Invalid("metrics: PAvPU patch size must be >= 1".into()));
        }
        if let Some(i) = uncertainty.iter().position(|u| !u.is_finite()) {
            return Err(Error::Invalid(format!("metrics: uncertainty[{i}] = {} is not finite", uncertainty[i])));
        }
        let wrong: Vec<bool> = correct.iter().map(|&c| !c).collect();
        Ok(Self::from_wrong(width, height, &wrong, uncertainty, region, patch_size, accuracy_threshold))
    }

    /// [`Self::new`] from the wrong-pixel mask, inputs already checked.
    pub(crate) fn from_wrong(
        width: usize,
        height: usize,
        wrong: &[bool],
        uncertainty: &[f32],
        region: Option<&[bool]>,
        patch_size: usize,
        accuracy_threshold: f64,
    ) -> Self {
        let cols = width.div_ceil(patch_size);
        let mut count = vec![0u32; cols];
        let mut n_wrong = vec![0u32; cols];
        let mut u_sum = vec![0.0f64; cols];
        let capacity = cols * height.div_ceil(patch_size);
        let (mut accurate, mut mean_uncertainty) = (Vec::with_capacity(capacity), Vec::with_capacity(capacity));
        for y0 in (0..height).step_by(patch_size) {
            count.fill(0);
            n_wrong.fill(0);
            u_sum.fill(0.0);
            for y in y0..(y0 + patch_size).min(height) {
                let row = y * width..(y + 1) * width;
                let (w_row, u_row) = (&wrong[row.clone()], &uncertainty[row.clone()]);
                match region {
                    None => {
                        for (cell, (ws, us)) in w_row.chunks(patch_size).zip(u_row.chunks(patch_size)).enumerate() {
                            count[cell] += ws.len() as u32;
                            n_wrong[cell] += ws.iter().map(|&w| w as u32).sum::<u32>();
                            u_sum[cell] += us.iter().map(|&u| u as f64).sum::<f64>();
                        }
                    }
                    Some(r) => {
                        let r_row = &r[row];
                        for (x, ((&w, &u), &inside)) in w_row.iter().zip(u_row).zip(r_row).enumerate() {
                            if inside {
                                let cell = x / patch_size;
                                count[cell] += 1;
                                n_wrong[cell] += w as u32;
                                u_sum[cell] += u as f64;
                            }
                        }
                    }
                }
            }
            for cell in 0..cols {
                if count[cell] > 0 {
                    let c = count[cell] as f64;
                    let n_correct = count[cell] - n_wrong[cell];
                    accurate.push(n_correct as f64 / c >= accuracy_threshold);
                    mean_uncertainty.push(u_sum[cell] / c);
                }
            }
        }
        Self { accurate, mean_uncertainty }
    }

    /// The counts and ratios at one uncertainty threshold.
    pub fn at(&self, uncertainty_threshold: f64) -> PavpuMetrics {
        // certain: mean < threshold; two branch-free counts give the four cells
        let (mut n_certain, mut n_ac, mut n_accurate) = (0u64, 0u64, 0u64);
        for (&acc, &mean_u) in self.accurate.iter().zip(&self.mean_uncertainty) {
            let certain = mean_u < uncertainty_threshold;
            n_certain += certain as u64;
            n_ac += (acc & certain) as u64;
            n_accurate += acc as u64;
        }
        let total = self.accurate.len() as u64;
        let (n_au, n_ic) = (n_accurate - n_ac, n_certain - n_ac);
        let n_iu = total - n_ac - n_au - n_ic;
        let ratio = |a: u64, b: u64| if b > 0 { Some(a as f64 / b as f64) } else { None };
        PavpuMetrics {
            uncertainty_threshold,
            n_ac,
            n_au,
            n_ic,
            n_iu,
            pavpu: ratio(n_ac + n_iu, n_ac + n_au + n_ic + n_iu),
            p_accurate_given_certain: ratio(n_ac, n_ac + n_ic),
            p_uncertain_given_inaccurate: ratio(n_iu, n_ic + n_iu),
        }
    }

    /// [`Self::at`] for every threshold of a curve.
    pub fn curve(&self, thresholds: &[f64]) -> Vec<PavpuMetrics> {
        thresholds.iter().map(|&t| self.at(t)).collect()
    }
}
