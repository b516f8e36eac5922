//! Segmentation quality of a binary mask: region similarity J (IoU) and the DAVIS boundary
//! F-measure (Perazzi et al., CVPR 2016; the DAVIS 2017 evaluation's `db_eval_iou` and
//! `f_measure` without void pixels), plus the disk dilation both the F-measure and the
//! "near the ground truth" region use.
//!
//! All masks are row-major `width × height` slices.

use crate::{Error, Result};

/// The DAVIS default boundary tolerance: a fraction of the image diagonal.
pub const DAVIS_BOUND_TH: f64 = 0.008;

fn check_len(name: &str, len: usize, width: usize, height: usize) -> Result<()> {
    match width.checked_mul(height) {
        Some(n) if n == len && n > 0 => Ok(()),
        _ => Err(Error::Invalid(format!("metrics: {name} has {len} values, expected {width}x{height}"))),
    }
}

/// Jaccard index |pred ∧ gt| / |pred ∨ gt|; 1 when both masks are empty (as DAVIS).
pub fn iou(pred: &[bool], gt: &[bool]) -> Result<f64> {
    if pred.len() != gt.len() {
        return Err(Error::Invalid(format!("metrics: masks of {} and {} pixels", pred.len(), gt.len())));
    }
    Ok(iou_unchecked(pred, gt))
}

pub(crate) fn iou_unchecked(pred: &[bool], gt: &[bool]) -> f64 {
    let (mut inter, mut union) = (0usize, 0usize);
    for (&p, &g) in pred.iter().zip(gt) {
        inter += (p & g) as usize;
        union += (p | g) as usize;
    }
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// The DAVIS one-pixel-wide boundary map (`_seg2bmap` at the native size): a pixel is on
/// the boundary when it differs from its east, south or south-east neighbour. The last row
/// compares with the east neighbour only, the last column with the south one only, and
/// the bottom-right pixel is never on the boundary. So the boundary sits half a pixel
/// towards the origin from the true segment edge.
pub fn boundary_map(mask: &[bool], width: usize, height: usize) -> Result<Vec<bool>> {
    check_len("mask", mask.len(), width, height)?;
    Ok(boundary_map_unchecked(mask, width, height))
}

pub(crate) fn boundary_map_unchecked(mask: &[bool], width: usize, height: usize) -> Vec<bool> {
    let mut b = vec![false; mask.len()];
    for y in 0..height {
        let row = &mask[y * width..(y + 1) * width];
        let out = &mut b[y * width..(y + 1) * width];
        if y + 1 < height {
            let below = &mask[(y + 1) * width..(y + 2) * width];
            for x in 0..width - 1 {
                let s = row[x];
                out[x] = (s != row[x + 1]) | (s != below[x]) | (s != below[x + 1]);
            }
            out[width - 1] = row[width - 1] != below[width - 1];
        } else {
            for x in 0..width - 1 {
                out[x] = row[x] != row[x + 1];
            }
            out[width - 1] = false;
        }
    }
    b
}

/// The boundary tolerance in pixels: `ceil(bound_th · √(width² + height²))`, or `bound_th`
/// itself when it is ≥ 1 (taken as pixels), as the DAVIS `f_measure`.
pub fn boundary_tolerance(width: usize, height: usize, bound_th: f64) -> f64 {
    if bound_th >= 1.0 {
        bound_th
    } else {
        let (w, h) = (width as f64, height as f64);
        (bound_th * (h * h + w * w).sqrt()).ceil()
    }
}

/// Binary dilation by the disk of `radius` (offsets with dx² + dy² ≤ radius², the
/// `skimage.morphology.disk` footprint); pixels outside the image are background. In other
/// words, a pixel is set when its Euclidean distance to a set pixel is ≤ radius.
pub fn dilate_disk(mask: &[bool], width: usize, height: usize, radius: f64) -> Result<Vec<bool>> {
    check_len("mask", mask.len(), width, height)?;
    if !(radius >= 0.0 && radius.is_finite()) {
        return Err(Error::Invalid(format!("metrics: dilation radius {radius} must be finite and >= 0")));
    }
    Ok(dilate_disk_unchecked(mask, width, height, radius))
}

/// The disk's half-width on each row `d` = 0, 1, … away from its centre (while ≤ radius).
fn disk_half_widths(radius: f64, width: usize, height: usize) -> Vec<u32> {
    let reach = (radius.floor() as usize).min(height.saturating_sub(1).max(width.saturating_sub(1)));
    let r2 = radius * radius;
    (0..=reach)
        .map(|d| {
            let mut hw = 0usize;
            while hw < width && ((hw + 1) * (hw + 1) + d * d) as f64 <= r2 {
                hw += 1;
            }
            hw as u32
        })
        .collect()
}

/// Distance along the row to the nearest set pixel (`u32::MAX`: none in the row), and
/// whether each row has a set pixel.
fn row_distances(mask: &[bool], width: usize, height: usize) -> (Vec<u32>, Vec<bool>) {
    let mut row_dist = vec![u32::MAX; mask.len()];
    let mut row_any = vec![false; height];
    for y in 0..height {
        let m = &mask[y * width..(y + 1) * width];
        let d = &mut row_dist[y * width..(y + 1) * width];
        let mut last: Option<usize> = None;
        for x in 0..width {
            if m[x] {
                last = Some(x);
            }
            if let Some(l) = last {
                d[x] = (x - l) as u32;
            }
        }
        row_any[y] = last.is_some();
        let mut next: Option<usize> = None;
        for x in (0..width).rev() {
            if m[x] {
                next = Some(x);
            }
            if let Some(nx) = next {
                d[x] = d[x].min((nx - x) as u32);
            }
        }
    }
    (row_dist, row_any)
}

pub(crate) fn dilate_disk_unchecked(mask: &[bool], width: usize, height: usize, radius: f64) -> Vec<bool> {
    let half = disk_half_widths(radius, width, height);
    let reach = half.len() - 1;
    let (row_dist, row_any) = row_distances(mask, width, height);
    let mut out = vec![false; mask.len()];
    for y in 0..height {
        let o = &mut out[y * width..(y + 1) * width];
        let lo = y.saturating_sub(reach);
        let hi = (y + reach).min(height - 1);
        for (yy, &any) in row_any.iter().enumerate().take(hi + 1).skip(lo) {
            if !any {
                continue;
            }
            let hw = half[yy.abs_diff(y)];
            let d = &row_dist[yy * width..(yy + 1) * width];
            for (ov, &dv) in o.iter_mut().zip(d) {
                *ov |= dv <= hw;
            }
        }
    }
    out
}

/// How many set pixels of `points` lie within the disk of `radius` around a set pixel of
/// `target` (= |points ∧ dilate_disk(target)|, without dilating the whole image: the
/// boundary maps of the F-measure are sparse).
fn count_within_disk(points: &[bool], target: &[bool], width: usize, height: usize, radius: f64) -> usize {
    let half = disk_half_widths(radius, width, height);
    let reach = half.len() - 1;
    let (row_dist, row_any) = row_distances(target, width, height);
    let mut count = 0;
    for (i, _) in points.iter().enumerate().filter(|(_, &p)| p) {
        let (y, x) = (i / width, i % width);
        let lo = y.saturating_sub(reach);
        let hi = (y + reach).min(height - 1);
        if (lo..=hi).any(|yy| row_any[yy] && row_dist[yy * width + x] <= half[yy.abs_diff(y)]) {
            count += 1;
        }
    }
    count
}

/// The DAVIS boundary F-measure of `pred` against `gt`: boundary precision (predicted
/// boundary pixels within the tolerance disk of a ground-truth boundary pixel) and recall
/// (the converse), F = 2PR / (P + R). Tolerance: [`boundary_tolerance`]. Empty
/// boundaries follow DAVIS: both empty → 1; one empty → 0.
pub fn boundary_f_measure(pred: &[bool], gt: &[bool], width: usize, height: usize, bound_th: f64) -> Result<f64> {
    check_len("prediction", pred.len(), width, height)?;
    check_len("ground truth", gt.len(), width, height)?;
    if !(bound_th > 0.0 && bound_th.is_finite()) {
        return Err(Error::Invalid(format!("metrics: boundary threshold {bound_th} must be finite and > 0")));
    }
    Ok(boundary_f_unchecked(pred, gt, width, height, bound_th))
}

pub(crate) fn boundary_f_unchecked(pred: &[bool], gt: &[bool], width: usize, height: usize, bound_th: f64) -> f64 {
    let radius = boundary_tolerance(width, height, bound_th);
    let pred_b = boundary_map_unchecked(pred, width, height);
    let gt_b = boundary_map_unchecked(gt, width, height);
    let n_pred = pred_b.iter().filter(|&&b| b).count();
    let n_gt = gt_b.iter().filter(|&&b| b).count();
    let (precision, recall) = match (n_pred, n_gt) {
        (0, 0) => (1.0, 1.0),
        (0, _) => (1.0, 0.0),
        (_, 0) => (0.0, 1.0),
        _ => {
            let pred_match = count_within_disk(&pred_b, &gt_b, width, height, radius);
            let gt_match = count_within_disk(&gt_b, &pred_b, width, height, radius);
            (pred_match as f64 / n_pred as f64, gt_match as f64 / n_gt as f64)
        }
    };
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}
