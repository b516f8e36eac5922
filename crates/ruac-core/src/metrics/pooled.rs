//! Comparisons in which one score per mask has a chance against one uncertainty per pixel
//! (issue 12). Per object, a map that is constant over the object ranks nothing (AUROC 0.5 by
//! construction, [`super::object`]); across objects it does. So, over all objects of a domain:
//!
//! * **pooled AUROC**: the pixels near the ground truth (the ground truth dilated by
//!   `near_gt_radius`, as [`super::object`]) of every object, pooled, ranked once by the
//!   per-pixel uncertainty and once by one minus the mask's predicted IoU (every pixel of an
//!   object sharing its mask's score), each as a detector of wrong pixels;
//! * **object-level uncertainty-accuracy correlation** (the paper's UAC at object level): the
//!   Pearson and Spearman correlation, across objects, of the object's error `1 − J` with its
//!   mean uncertainty near the ground truth, beside the same correlations with `1 − predicted
//!   IoU`. Higher is better for both (a score that tracks the error correlates positively).
//!
//! Memory: one `f32` and one `bool` per pooled pixel (near the ground truth only).
use serde::{Deserialize, Serialize};

use super::correlation::{pearson, spearman};
use super::object::FOREGROUND_THRESHOLD;
use super::ranking::ErrorRanking;
use crate::{Error, Result};

/// Accumulates the objects of one domain; [`PooledComparison::finish`] gives the metrics.
#[derive(Clone, Debug, Default)]
pub struct PooledComparison {
    uncertainty: Vec<f32>,
    mask_score: Vec<f32>,
    wrong: Vec<bool>,
    /// Per object: (1 − J, mean uncertainty near the ground truth, 1 − predicted IoU).
    objects: Vec<(f64, f64, Option<f64>)>,
}

/// The pooled and object-level comparisons of one domain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PooledMetrics {
    pub n_objects: usize,
    pub n_pixels: u64,
    pub n_wrong: u64,
    /// AUROC of the per-pixel uncertainty over the pooled pixels.
    pub auroc_pixel: Option<f64>,
    /// AUROC of `1 − predicted IoU` over the same pixels; `None` without scores.
    pub auroc_mask_score: Option<f64>,
    /// Correlation of `1 − J` with the mean uncertainty near the ground truth.
    pub pearson_uncertainty_error: Option<f64>,
    pub spearman_uncertainty_error: Option<f64>,
    /// Correlation of `1 − J` with `1 − predicted IoU`.
    pub pearson_score_error: Option<f64>,
    pub spearman_score_error: Option<f64>,
}

impl PooledComparison {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one object: its probability, uncertainty and ground truth (row-major, same
    /// length), the near-ground-truth region, the mask's predicted IoU, and its J
    /// ([`super::object::SegmentationMetrics::j`]).
    pub fn add(&mut self, maps: ObjectMaps<'_>, iou_score: Option<f32>, j: f64) -> Result<()> {
        let n = maps.gt.len();
        if maps.prob.len() != n || maps.uncertainty.len() != n || maps.near_gt.len() != n {
            return Err(Error::Invalid(format!(
                "pooled metrics: maps of {} / {} / {} / {} pixels",
                maps.prob.len(),
                maps.uncertainty.len(),
                n,
                maps.near_gt.len()
            )));
        }
        if let Some(s) = iou_score.filter(|s| !s.is_finite()) {
            return Err(Error::Invalid(format!("pooled metrics: predicted IoU {s} is not finite")));
        }
        let score = iou_score.map(|s| 1.0 - s);
        let (mut sum, mut count) = (0f64, 0u64);
        for i in (0..n).filter(|&i| maps.near_gt[i]) {
            let u = maps.uncertainty[i];
            if !u.is_finite() {
                return Err(Error::Invalid(format!("pooled metrics: uncertainty[{i}] = {u} is not finite")));
            }
            self.uncertainty.push(u);
            self.mask_score.push(score.unwrap_or(0.0));
            self.wrong.push((maps.prob[i] >= FOREGROUND_THRESHOLD) != maps.gt[i]);
            sum += u as f64;
            count += 1;
        }
        if count > 0 {
            self.objects.push((1.0 - j, sum / count as f64, score.map(|s| s as f64)));
        }
        Ok(())
    }

    pub fn finish(&self) -> Result<PooledMetrics> {
        let pixel = ErrorRanking::new(&self.uncertainty, &self.wrong)?;
        let all_scored = !self.objects.is_empty() && self.objects.iter().all(|o| o.2.is_some());
        let auroc_mask_score = if all_scored {
            ErrorRanking::new(&self.mask_score, &self.wrong)?.auroc()
        } else {
            None
        };
        let err: Vec<f64> = self.objects.iter().map(|o| o.0).collect();
        let unc: Vec<f64> = self.objects.iter().map(|o| o.1).collect();
        let (ps, ss) = if all_scored {
            let sc: Vec<f64> = self.objects.iter().filter_map(|o| o.2).collect();
            (pearson(&sc, &err), spearman(&sc, &err))
        } else {
            (None, None)
        };
        Ok(PooledMetrics {
            n_objects: self.objects.len(),
            n_pixels: pixel.len(),
            n_wrong: pixel.n_wrong(),
            auroc_pixel: pixel.auroc(),
            auroc_mask_score,
            pearson_uncertainty_error: pearson(&unc, &err),
            spearman_uncertainty_error: spearman(&unc, &err),
            pearson_score_error: ps,
            spearman_score_error: ss,
        })
    }
}

/// One object's maps for [`PooledComparison::add`].
#[derive(Clone, Copy, Debug)]
pub struct ObjectMaps<'a> {
    pub prob: &'a [f32],
    pub uncertainty: &'a [f32],
    pub gt: &'a [bool],
    pub near_gt: &'a [bool],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(p: &mut PooledComparison, prob: &[f32], unc: &[f32], gt: &[u8], near: &[u8], score: f32, j: f64) {
        let gt: Vec<bool> = gt.iter().map(|&v| v == 1).collect();
        let near: Vec<bool> = near.iter().map(|&v| v == 1).collect();
        p.add(ObjectMaps { prob, uncertainty: unc, gt: &gt, near_gt: &near }, Some(score), j).unwrap();
    }

    /// Worked by hand: object A (4 pixels near the ground truth, 2 wrong: uncertainty 0.8
    /// and 0.3), object B (3 pixels near, none wrong). Per-pixel AUROC: 0.8 beats all 5
    /// correct pixels, 0.3 beats 4 of them (not 0.4): 9/10. Mask score (A 0.1, B 0.4): both
    /// wrong pixels tie with A's 2 correct ones and lose to B's 3: (2 x 2 x 0.5)/10 = 0.2.
    /// Objects: errors 2/3 and 1/2, mean uncertainty 0.35 and 0.55/3, scores 0.1 and 0.4.
    #[test]
    fn hand_worked_two_objects() {
        let mut p = PooledComparison::new();
        add(&mut p, &[0.9, 0.2, 0.1, 0.6], &[0.1, 0.8, 0.2, 0.3], &[1, 1, 0, 0], &[1, 1, 1, 1], 0.9, 1.0 / 3.0);
        add(&mut p, &[0.8, 0.3, 0.1, 0.9], &[0.05, 0.4, 0.1, 0.9], &[1, 0, 0, 0], &[1, 1, 1, 0], 0.6, 0.5);
        let m = p.finish().unwrap();
        assert_eq!((m.n_objects, m.n_pixels, m.n_wrong), (2, 7, 2));
        assert!((m.auroc_pixel.unwrap() - 0.9).abs() < 1e-12);
        assert!((m.auroc_mask_score.unwrap() - 0.2).abs() < 1e-12);
        // Two objects: both correlations are ±1, their signs hand-checked.
        assert!((m.pearson_uncertainty_error.unwrap() - 1.0).abs() < 1e-12);
        assert!((m.spearman_uncertainty_error.unwrap() - 1.0).abs() < 1e-12);
        assert!((m.pearson_score_error.unwrap() + 1.0).abs() < 1e-12);
        assert!((m.spearman_score_error.unwrap() + 1.0).abs() < 1e-12);
    }

    /// Three objects: Pearson by hand. Errors e = (0.2, 0.5, 0.8), mean uncertainty
    /// u = (0.1, 0.1, 0.4): r = cov/(sd sd) = 0.09 / sqrt(0.18 * 0.06) = 0.866025...
    #[test]
    fn hand_worked_object_correlation() {
        let mut p = PooledComparison::new();
        for (u, j, s) in [(0.1f32, 0.8, 0.5f32), (0.1, 0.5, 0.7), (0.4, 0.2, 0.6)] {
            add(&mut p, &[1.0], &[u], &[1], &[1], s, j);
        }
        let m = p.finish().unwrap();
        assert!((m.pearson_uncertainty_error.unwrap() - 0.09 / (0.18f64 * 0.06).sqrt()).abs() < 1e-6);
        // Scores 1 - (0.5, 0.7, 0.6) = (0.5, 0.3, 0.4) against errors (0.2, 0.5, 0.8): ranks
        // (3, 1, 2) vs (1, 2, 3): Spearman = 1 - 6 * (4 + 1 + 1) / (3 * 8) = -0.5.
        assert!((m.spearman_score_error.unwrap() + 0.5).abs() < 1e-12);
        // Every pixel correct: no AUROC.
        assert_eq!(m.auroc_pixel, None);
    }

    #[test]
    fn mismatched_maps_are_refused() {
        let mut p = PooledComparison::new();
        let e = p
            .add(ObjectMaps { prob: &[0.5], uncertainty: &[0.1, 0.2], gt: &[true], near_gt: &[true] }, None, 1.0)
            .unwrap_err();
        assert!(e.to_string().contains("pooled metrics"), "{e}");
    }
}
