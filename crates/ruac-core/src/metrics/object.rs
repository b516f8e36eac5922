//! Every metric of the evaluation protocol for one predicted object (one mask against its
//! ground truth), in one call: [`evaluate_object`].
//!
//! Definitions (the per-metric modules cite their sources):
//! * the prediction is `prob >= 0.5` ([`FOREGROUND_THRESHOLD`]); a pixel is *wrong* when the
//!   prediction differs from the ground truth;
//! * segmentation: J (IoU) and the DAVIS boundary F-measure ([`super::segmentation`]),
//!   J&F = (J + F) / 2;
//! * uncertainty: AUROC, AUPR, AURC, E-AURC of uncertainty as a wrong-pixel detector
//!   ([`super::ranking`]), PAvPU at one threshold and over a curve ([`super::pavpu`]), and
//!   per-pixel Pearson / Spearman correlation of the uncertainty with the binary error
//!   (wrong = 1) and with the absolute error |p − gt|, computed in f32 as `1 − p` on
//!   foreground and `p` on background ([`super::correlation`]);
//! * calibration of `prob`: ECE with its reliability diagram, Brier, NLL
//!   ([`super::calibration`]).
//!
//! Uncertainty and calibration metrics are computed twice: over the whole image and
//! *near the ground truth*, i.e. over the pixels whose Euclidean distance to a
//! ground-truth pixel is ≤ `near_gt_radius` = 4 (the ground truth dilated by a disk of
//! radius 4, the ground truth itself included). The mask-level baseline repeats the
//! uncertainty metrics with the map that gives every pixel `1 − predicted IoU score`
//! ([`mask_level_uncertainty`]); per object that map ranks nothing (AUROC 0.5, AURC = the
//! error rate), its information is in how the score varies across objects.
//!
//! `None` marks a value that is undefined for this object: AUROC and AUPR when the pixels
//! are all correct or all wrong, correlations when either side is constant (always for the
//! mask-level map), ratios with an empty denominator, everything over an empty region
//! (near the ground truth of an empty ground truth). AURC and E-AURC stay defined with no
//! error (0 and 0) or only errors (1 and 0).
//!
//! Cost: two radix sorts (uncertainty, |p − gt|) shared by every ranking metric and both
//! regions; everything else is linear. About 25 ms for 512 × 512 on one core of the
//! development machine.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::calibration::{calibration_with_subset, CalibrationMetrics};
use super::pavpu::{PatchStats, PavpuConfig, PavpuMetrics};
use super::ranking::{argsort_f32, f32_order_key, write_ranks2, ErrorRanking};
use super::segmentation::{boundary_f_unchecked, boundary_tolerance, dilate_disk_unchecked, iou_unchecked};
use crate::{Error, Result};

/// A pixel is predicted foreground when its probability is ≥ this.
pub const FOREGROUND_THRESHOLD: f32 = 0.5;

/// One predicted object. All maps are row-major `width × height`.
#[derive(Clone, Copy, Debug)]
pub struct ObjectInput<'a> {
    pub width: usize,
    pub height: usize,
    /// Foreground probability in [0, 1].
    pub prob: &'a [f32],
    /// Per-pixel uncertainty (any finite scale; higher = less certain).
    pub uncertainty: &'a [f32],
    pub gt: &'a [bool],
    /// The model's predicted IoU for this mask; enables the mask-level baseline.
    pub iou_score: Option<f32>,
}

/// Metric settings; `Default` is the protocol's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricConfig {
    /// DAVIS boundary tolerance: a fraction of the image diagonal if < 1, else pixels.
    pub boundary_threshold: f64,
    /// Radius (pixels, Euclidean) of the disk that dilates the ground truth into the
    /// "near the ground truth" region.
    pub near_gt_radius: f64,
    /// Equal-width confidence bins of the ECE.
    pub ece_bins: usize,
    /// Probabilities are clamped to [eps, 1 − eps] in the NLL.
    pub nll_eps: f64,
    pub pavpu: PavpuConfig,
}

impl Default for MetricConfig {
    fn default() -> Self {
        Self {
            boundary_threshold: super::segmentation::DAVIS_BOUND_TH,
            near_gt_radius: 4.0,
            ece_bins: 15,
            nll_eps: 1e-7,
            pavpu: PavpuConfig::default(),
        }
    }
}

impl MetricConfig {
    pub fn validate(&self) -> Result<()> {
        if !(self.boundary_threshold > 0.0 && self.boundary_threshold.is_finite()) {
            return Err(Error::Invalid(format!(
                "metrics: boundary threshold {} must be finite and > 0",
                self.boundary_threshold
            )));
        }
        if !(self.near_gt_radius >= 0.0 && self.near_gt_radius.is_finite()) {
            return Err(Error::Invalid(format!(
                "metrics: near-gt radius {} must be finite and >= 0",
                self.near_gt_radius
            )));
        }
        if self.ece_bins == 0 {
            return Err(Error::Invalid("metrics: ece_bins must be >= 1".into()));
        }
        if !(self.nll_eps > 0.0 && self.nll_eps < 0.5) {
            return Err(Error::Invalid(format!("metrics: nll_eps {} must be in (0, 0.5)", self.nll_eps)));
        }
        self.pavpu.validate()
    }
}

/// Everything measured for one object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectMetrics {
    pub segmentation: SegmentationMetrics,
    /// Over every pixel of the image.
    pub whole: RegionMetrics,
    /// Over the ground truth dilated by a disk of `near_gt_radius` (4 px).
    pub near_gt: RegionMetrics,
    /// The baseline whose uncertainty is `1 − iou_score` everywhere; `None` without a score.
    pub mask_level: Option<MaskLevelMetrics>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentationMetrics {
    /// IoU of `prob >= 0.5` with the ground truth (1 when both are empty).
    pub j: f64,
    /// DAVIS boundary F-measure.
    pub f: f64,
    /// (J + F) / 2.
    pub jf: f64,
    /// The boundary tolerance the F-measure used, in pixels.
    pub boundary_tolerance_px: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegionMetrics {
    pub n_pixels: u64,
    pub n_wrong: u64,
    /// n_wrong / n_pixels.
    pub error_rate: Option<f64>,
    pub calibration: CalibrationMetrics,
    pub uncertainty: UncertaintyMetrics,
}

/// How well one uncertainty map marks the wrong pixels of one region.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UncertaintyMetrics {
    pub mean_uncertainty: Option<f64>,
    /// AUROC of uncertainty detecting wrong pixels (ties count half, as scikit-learn).
    pub auroc: Option<f64>,
    /// Average precision of the same detector (scikit-learn's `average_precision_score`).
    pub aupr: Option<f64>,
    /// Area under the risk-coverage curve (most uncertain rejected first; lower is better).
    pub aurc: Option<f64>,
    /// AURC minus the AURC of the oracle ordering.
    pub eaurc: Option<f64>,
    /// PAvPU at `PavpuConfig::uncertainty_threshold`.
    pub pavpu: PavpuMetrics,
    /// PAvPU at each `PavpuConfig::curve_thresholds`.
    pub pavpu_curve: Vec<PavpuMetrics>,
    /// Pearson r between uncertainty and the wrong-pixel indicator (0/1).
    pub pearson_wrong: Option<f64>,
    /// Spearman ρ between uncertainty and the wrong-pixel indicator.
    pub spearman_wrong: Option<f64>,
    /// Pearson r between uncertainty and |p − gt|.
    pub pearson_abs_error: Option<f64>,
    /// Spearman ρ between uncertainty and |p − gt|.
    pub spearman_abs_error: Option<f64>,
}

/// The mask-level baseline: one score per mask, broadcast to every pixel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaskLevelMetrics {
    pub iou_score: f64,
    /// The constant uncertainty, `1 − iou_score` (computed in f32).
    pub uncertainty_value: f64,
    pub whole: UncertaintyMetrics,
    pub near_gt: UncertaintyMetrics,
}

/// The mask-level baseline's uncertainty map: `1 − iou_score` at each of `len` pixels.
pub fn mask_level_uncertainty(iou_score: f32, len: usize) -> Vec<f32> {
    vec![1.0 - iou_score; len]
}

/// The "near the ground truth" region: pixels whose Euclidean distance to a ground-truth
/// pixel is ≤ `radius` (a disk dilation of `gt`).
pub fn near_gt_region(gt: &[bool], width: usize, height: usize, radius: f64) -> Result<Vec<bool>> {
    super::segmentation::dilate_disk(gt, width, height, radius)
}

/// All metrics of one object (see the module docs for the definitions). Errors
/// (`Error::Invalid`) on mismatched sizes, an empty image, a probability outside [0, 1] or
/// NaN, a non-finite uncertainty or IoU score, or an invalid configuration.
pub fn evaluate_object(input: &ObjectInput, config: &MetricConfig) -> Result<ObjectMetrics> {
    validate(input)?;
    config.validate()?;
    let (width, height) = (input.width, input.height);
    let n = width * height;

    let px = Pixels::new(input);
    let j = iou_unchecked(&px.pred, input.gt);
    let f = boundary_f_unchecked(&px.pred, input.gt, width, height, config.boundary_threshold);
    let segmentation = SegmentationMetrics {
        j,
        f,
        jf: (j + f) / 2.0,
        boundary_tolerance_px: boundary_tolerance(width, height, config.boundary_threshold),
    };

    let near_mask = dilate_disk_unchecked(input.gt, width, height, config.near_gt_radius);
    let (whole_calibration, near_calibration) =
        calibration_with_subset(input.prob, input.gt, &near_mask, config.ece_bins, config.nll_eps);

    // One sort of |p - gt| serves both regions' Spearman ranks.
    let mut sort_buffer = Vec::new();
    let abs_sorted = argsort_f32(&px.abs_err, &mut sort_buffer);
    let whole_region = Region::new(&px, None, &abs_sorted);
    let near_region = Region::new(&px, Some(near_mask), &abs_sorted);
    drop(abs_sorted);

    let mut scratch = vec![0u32; n];
    let pixel_map = SortedMap::new(input.uncertainty, &mut sort_buffer);
    drop(sort_buffer);
    let region_metrics = |region: &Region, calibration: CalibrationMetrics, scratch: &mut [u32]| {
        let (uncertainty, patches) = uncertainty_metrics(&px, &pixel_map, region, config, scratch, None);
        let metrics = RegionMetrics {
            n_pixels: region.n,
            n_wrong: region.n_wrong,
            error_rate: (region.n > 0).then(|| region.n_wrong as f64 / region.n as f64),
            calibration,
            uncertainty,
        };
        (metrics, patches)
    };
    let (whole, whole_patches) = region_metrics(&whole_region, whole_calibration, &mut scratch);
    let (near_gt, near_patches) = region_metrics(&near_region, near_calibration, &mut scratch);

    let mask_level = input.iou_score.map(|score| {
        // the value of mask_level_uncertainty(score, n), without the n copies: a constant
        // map only ever reads its one value when the window accuracies are given
        let constant = [1.0f32 - score];
        let map = SortedMap::constant(&constant);
        MaskLevelMetrics {
            iou_score: score as f64,
            uncertainty_value: constant[0] as f64,
            whole: uncertainty_metrics(&px, &map, &whole_region, config, &mut scratch, Some(&whole_patches.accurate)).0,
            near_gt: uncertainty_metrics(&px, &map, &near_region, config, &mut scratch, Some(&near_patches.accurate)).0,
        }
    });
    Ok(ObjectMetrics { segmentation, whole, near_gt, mask_level })
}

fn validate(input: &ObjectInput) -> Result<()> {
    let (w, h) = (input.width, input.height);
    let n = match w.checked_mul(h) {
        Some(n) if n > 0 && n <= u32::MAX as usize => n,
        _ => return Err(Error::Invalid(format!("metrics: image size {w}x{h} is empty or too large"))),
    };
    for (name, len) in [("prob", input.prob.len()), ("uncertainty", input.uncertainty.len()), ("gt", input.gt.len())] {
        if len != n {
            return Err(Error::Invalid(format!("metrics: {name} has {len} values, expected {w}x{h} = {n}")));
        }
    }
    if let Some(i) = input.prob.iter().position(|p| !(0.0..=1.0).contains(p)) {
        return Err(Error::Invalid(format!("metrics: prob[{i}] = {} is not a probability in [0, 1]", input.prob[i])));
    }
    if let Some(i) = input.uncertainty.iter().position(|u| !u.is_finite()) {
        return Err(Error::Invalid(format!("metrics: uncertainty[{i}] = {} is not finite", input.uncertainty[i])));
    }
    if let Some(s) = input.iou_score.filter(|s| !s.is_finite()) {
        return Err(Error::Invalid(format!("metrics: IoU score {s} is not finite")));
    }
    Ok(())
}

/// Per-pixel facts shared by every region and map.
struct Pixels {
    width: usize,
    height: usize,
    pred: Vec<bool>,
    wrong: Vec<bool>,
    /// |p − gt| computed in f32 (1 − p for foreground pixels, p for background).
    abs_err: Vec<f32>,
}

impl Pixels {
    fn new(input: &ObjectInput) -> Self {
        let pred: Vec<bool> = input.prob.iter().map(|&p| p >= FOREGROUND_THRESHOLD).collect();
        let wrong = pred.iter().zip(input.gt).map(|(&p, &g)| p != g).collect();
        let abs_err = input.prob.iter().zip(input.gt).map(|(&p, &g)| if g { 1.0 - p } else { p }).collect();
        Self { width: input.width, height: input.height, pred, wrong, abs_err }
    }
}

/// A set of pixels (the whole image or near the ground truth) with what does not depend
/// on the uncertainty map.
struct Region {
    /// `None`: every pixel.
    mask: Option<Vec<bool>>,
    /// The region's pixels in ascending order when `mask` is set.
    pixels: Vec<u32>,
    n: u64,
    n_wrong: u64,
    /// Twice the average rank of |p − gt| within the region, indexed by pixel (entries
    /// outside the region unused).
    abs_ranks2: Vec<u32>,
    /// Mean of |p − gt| over the region, and whether it is constant there.
    abs_mean: f64,
    abs_constant: bool,
}

impl Region {
    fn new(px: &Pixels, mask: Option<Vec<bool>>, abs_sorted: &[u64]) -> Self {
        let total = px.wrong.len();
        let pixels: Vec<u32> = match &mask {
            None => Vec::new(),
            Some(m) => (0..total as u32).filter(|&i| m[i as usize]).collect(),
        };
        let n = if mask.is_some() { pixels.len() as u64 } else { total as u64 };
        let mut region =
            Self { mask, pixels, n, n_wrong: 0, abs_ranks2: vec![0; total], abs_mean: 0.0, abs_constant: true };
        let (mut n_wrong, mut abs_sum) = (0u64, 0.0f64);
        let (mut abs_min, mut abs_max) = (f32::INFINITY, f32::NEG_INFINITY);
        region.for_each(|i| {
            n_wrong += px.wrong[i] as u64;
            let a = px.abs_err[i];
            abs_sum += a as f64;
            abs_min = abs_min.min(a);
            abs_max = abs_max.max(a);
        });
        region.n_wrong = n_wrong;
        region.abs_mean = abs_sum / n.max(1) as f64;
        region.abs_constant = abs_min >= abs_max;
        let sorted = filter_sorted(abs_sorted, region.mask.as_deref());
        write_ranks2(&sorted, &mut region.abs_ranks2);
        region
    }

    /// Calls `f` with every pixel of the region, in ascending order.
    #[inline]
    fn for_each(&self, mut f: impl FnMut(usize)) {
        match self.mask {
            None => (0..self.n as usize).for_each(f),
            Some(_) => self.pixels.iter().for_each(|&i| f(i as usize)),
        }
    }
}

/// An uncertainty map sorted once (ascending), shared by both regions.
struct SortedMap<'a> {
    values: &'a [f32],
    /// Every value is the same (then `sorted` stays empty: nothing to sort).
    constant: bool,
    /// Packed `key << 32 | pixel`, ascending (see `argsort_f32`).
    sorted: Vec<u64>,
}

impl<'a> SortedMap<'a> {
    fn new(values: &'a [f32], sort_buffer: &mut Vec<u64>) -> Self {
        let first = f32_order_key(values[0]);
        if values.iter().all(|&v| f32_order_key(v) == first) {
            return Self::constant(values);
        }
        Self { values, constant: false, sorted: argsort_f32(values, sort_buffer) }
    }

    /// A map known to be constant (the mask-level baseline). `values` may hold a single
    /// copy of the constant when the caller passes the window accuracies to
    /// `uncertainty_metrics`.
    fn constant(values: &'a [f32]) -> Self {
        debug_assert!(values.iter().all(|&v| f32_order_key(v) == f32_order_key(values[0])));
        Self { values, constant: true, sorted: Vec::new() }
    }
}

/// The entries of a packed sorted list whose pixel lies in `mask` (all if `None`).
fn filter_sorted<'k>(sorted: &'k [u64], mask: Option<&[bool]>) -> Cow<'k, [u64]> {
    match mask {
        None => Cow::Borrowed(sorted),
        Some(m) => Cow::Owned(sorted.iter().copied().filter(|&v| m[v as u32 as usize]).collect()),
    }
}

/// The uncertainty metrics of one map over one region, and the PAvPU windows they used.
/// `patch_accuracy`: the region's window accuracy flags when already known (they do not
/// depend on the map); only used for a constant map, whose window means are the constant.
fn uncertainty_metrics(
    px: &Pixels,
    map: &SortedMap,
    region: &Region,
    config: &MetricConfig,
    ranks2: &mut [u32],
    patch_accuracy: Option<&[bool]>,
) -> (UncertaintyMetrics, PatchStats) {
    let u_mean = if map.constant {
        map.values[0] as f64 // the mean of a constant is that constant, exactly
    } else {
        let mut u_sum = 0.0f64;
        region.for_each(|i| u_sum += map.values[i] as f64);
        u_sum / region.n.max(1) as f64
    };
    let mean_uncertainty = (region.n > 0).then_some(u_mean);
    let (ranking, correlations) = if map.constant {
        // one tie group; a constant map (the mask-level baseline) correlates with nothing
        (ErrorRanking::constant(region.n, region.n_wrong), [None; 4])
    } else {
        let sorted = filter_sorted(&map.sorted, region.mask.as_deref());
        let ranking = ErrorRanking::from_sorted(&sorted, &px.wrong, Some(&mut *ranks2));
        let correlations = if ranking.n_distinct() > 1 {
            pixel_correlations(px, map.values, u_mean, ranks2, region)
        } else {
            [None; 4]
        };
        (ranking, correlations)
    };
    let [pearson_wrong, spearman_wrong, pearson_abs_error, spearman_abs_error] = correlations;
    let patches = match patch_accuracy {
        Some(accurate) if map.constant => {
            PatchStats { accurate: accurate.to_vec(), mean_uncertainty: vec![u_mean; accurate.len()] }
        }
        _ => {
            debug_assert_eq!(map.values.len(), px.wrong.len());
            PatchStats::from_wrong(
                px.width,
                px.height,
                &px.wrong,
                map.values,
                region.mask.as_deref(),
                config.pavpu.patch_size,
                config.pavpu.accuracy_threshold,
            )
        }
    };
    let metrics = UncertaintyMetrics {
        mean_uncertainty,
        auroc: ranking.auroc(),
        aupr: ranking.average_precision(),
        aurc: ranking.aurc(),
        eaurc: ranking.eaurc(),
        pavpu: patches.at(config.pavpu.uncertainty_threshold),
        pavpu_curve: patches.curve(&config.pavpu.curve_thresholds),
        pearson_wrong,
        spearman_wrong,
        pearson_abs_error,
        spearman_abs_error,
    };
    (metrics, patches)
}

/// Pearson and Spearman correlation of the uncertainty with the wrong-pixel indicator and
/// with |p − gt| over the region, in one fused pass of centred sums (the means are known
/// beforehand: `u_mean`, the region's |p − gt| mean, n_wrong / n, and n + 1 for doubled
/// average ranks), as [`super::correlation::pearson`] computes each. `u_ranks2`: twice the
/// uncertainty's average ranks within the region, indexed by pixel (Pearson's r does not
/// see the factor 2). Spearman with the 0/1 indicator is Pearson's r of the uncertainty
/// ranks with the indicator itself, since the indicator's average ranks are an increasing
/// affine function of it. Order: pearson_wrong, spearman_wrong, pearson_abs_error,
/// spearman_abs_error.
fn pixel_correlations(px: &Pixels, u: &[f32], u_mean: f64, u_ranks2: &[u32], region: &Region) -> [Option<f64>; 4] {
    let n = region.n;
    if n < 2 {
        return [None; 4];
    }
    let wrong_const = region.n_wrong == 0 || region.n_wrong == n;
    // the mean of twice the average ranks of n values is n + 1, exactly
    let mean = [u_mean, region.n_wrong as f64 / n as f64, region.abs_mean, (n + 1) as f64, (n + 1) as f64];
    let mut sq = [0.0f64; 5];
    let mut cross = [0.0f64; 4];
    region.for_each(|i| {
        let d = [
            u[i] as f64 - mean[0],
            px.wrong[i] as u8 as f64 - mean[1],
            px.abs_err[i] as f64 - mean[2],
            u_ranks2[i] as f64 - mean[3],
            region.abs_ranks2[i] as f64 - mean[4],
        ];
        for k in 0..5 {
            sq[k] += d[k] * d[k];
        }
        cross[0] += d[0] * d[1];
        cross[1] += d[3] * d[1];
        cross[2] += d[0] * d[2];
        cross[3] += d[3] * d[4];
    });
    let r = |c: f64, a: usize, b: usize, constant: bool| -> Option<f64> {
        let denom = sq[a].sqrt() * sq[b].sqrt();
        (!constant && denom > 0.0 && denom.is_finite()).then(|| (c / denom).clamp(-1.0, 1.0))
    };
    let abs_const = region.abs_constant;
    [
        r(cross[0], 0, 1, wrong_const),
        r(cross[1], 3, 1, wrong_const),
        r(cross[2], 0, 2, abs_const),
        r(cross[3], 3, 4, abs_const),
    ]
}
