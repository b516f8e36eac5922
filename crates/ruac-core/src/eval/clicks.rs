//! Deterministic click prompts: the 1-, 3- and 5-click protocols and the ground-truth box.
//!
//! The protocol (as the issue states it, following the interactive-segmentation practice of
//! RITM (Sofiiuk et al. 2022) and the SAM / SAM 2 evaluations): the first click is the
//! interior point of the object farthest from its boundary; every next click is the
//! interior point, farthest from its boundary, of the largest error region of the current
//! prediction, positive when that region is missed object (false negative), negative when
//! it is false object (false positive).
//!
//! Conventions (all deterministic, no randomness):
//!
//! * Masks are row-major `h × w` slices of `bool` (`mask[y * w + x]`).
//! * "Distance from the boundary" is the exact Euclidean distance from a pixel centre to the
//!   nearest pixel centre *outside* the region, the image border counting as outside: the
//!   mask is padded by one background pixel, as RITM's and SAM's click simulators do with
//!   `cv2.distanceTransform(np.pad(mask, 1), cv2.DIST_L2, 0)[1:-1, 1:-1]`
//!   (= `scipy.ndimage.distance_transform_edt` of the padded mask). See
//!   [`distance_transform_sq`].
//! * Ties of the maximal distance go to the first pixel in row-major order (smallest `y`,
//!   then smallest `x`), like `np.argmax`.
//! * Error regions are the 8-connected components of the false negatives (`gt && !pred`)
//!   and, separately, of the false positives (`!gt && pred`). The largest by pixel count
//!   wins; on equal sizes a false-negative region wins over a false-positive one, and among
//!   regions of one kind the one whose first pixel comes first in row-major order.
//! * A click's `(x, y)` is the integer column / row index of the chosen pixel, as `f32`
//!   (no `+ 0.5`): SAM 2's predictors take pixel coordinates and scale them by
//!   `S / W`, `S / H`, and the SAM / SAM 2 evaluation code passes the `(x, y)` index.
//! * The ground-truth box is `[x0, y0, x1, y1] = [min x, min y, max x + 1, max y + 1]`:
//!   the box covering the pixel squares, so `x1 - x0` is the object's width in pixels
//!   (the COCO `[x, y, w, h]` box of a mask, converted to corners).
use serde::{Deserialize, Serialize};

use crate::predictor::PointLabel;
use crate::{Error, Result};

/// One click, in pixel-index coordinates (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Click {
    pub x: f32,
    pub y: f32,
    /// `true`: foreground (missed object), `false`: background (false object).
    pub positive: bool,
}

impl Click {
    pub fn label(&self) -> PointLabel {
        if self.positive {
            PointLabel::Positive
        } else {
            PointLabel::Negative
        }
    }

    /// As an entry of [`crate::predictor::Prompt::points`].
    pub fn as_point(&self) -> (f32, f32, PointLabel) {
        (self.x, self.y, self.label())
    }
}

/// The click counts the evaluation reports.
pub const CLICK_COUNTS: [usize; 3] = [1, 3, 5];

fn check_len(what: &str, mask: &[bool], w: usize, h: usize) {
    assert!(w.checked_mul(h) == Some(mask.len()), "{what} mask has {} pixels, expected {w}x{h}", mask.len());
}

/// Squared Euclidean distance of every pixel to the nearest pixel outside `mask` (the image
/// border counts as outside, i.e. the mask is padded by one background pixel), row-major.
/// Background pixels get 0, foreground pixels at least 1. Exact (integer) values: a column
/// scan for the 1-D distances, then the lower-envelope-of-parabolas pass of Felzenszwalb &
/// Huttenlocher, "Distance Transforms of Sampled Functions" (Theory of Computing 2012),
/// along rows. Matches `scipy.ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]²`.
///
/// # Panics
/// If `mask.len() != w * h`.
pub fn distance_transform_sq(mask: &[bool], w: usize, h: usize) -> Vec<u32> {
    check_len("distance-transform", mask, w, h);
    if w == 0 || h == 0 {
        return Vec::new();
    }
    // Pass 1, per column: distance (in rows) to the nearest background pixel, the virtual
    // rows -1 and h being background.
    let mut col = vec![0.0f64; w * h];
    for x in 0..w {
        let mut last_bg: isize = -1;
        for y in 0..h {
            if !mask[y * w + x] {
                last_bg = y as isize;
                col[y * w + x] = 0.0;
            } else {
                col[y * w + x] = (y as isize - last_bg) as f64;
            }
        }
        let mut next_bg = h as isize;
        for y in (0..h).rev() {
            if !mask[y * w + x] {
                next_bg = y as isize;
            } else {
                let down = (next_bg - y as isize) as f64;
                if down < col[y * w + x] {
                    col[y * w + x] = down;
                }
            }
        }
    }
    // Pass 2, per row of the padded image (columns -1 ..= w, the two ends background, f = 0):
    // lower envelope of the parabolas (q - x')² + f(x').
    let wp = w + 2;
    let mut f = vec![0.0f64; wp];
    let mut v = vec![0usize; wp];
    let mut z = vec![0.0f64; wp + 1];
    let mut out = vec![0u32; w * h];
    for y in 0..h {
        f[0] = 0.0;
        f[wp - 1] = 0.0;
        for x in 0..w {
            let c = col[y * w + x];
            f[x + 1] = c * c;
        }
        let mut k = 0usize;
        v[0] = 0;
        z[0] = f64::NEG_INFINITY;
        z[1] = f64::INFINITY;
        for q in 1..wp {
            let fq = f[q] + (q * q) as f64;
            loop {
                let p = v[k];
                let s = (fq - (f[p] + (p * p) as f64)) / (2.0 * (q - p) as f64);
                if s <= z[k] {
                    // p's parabola is never the minimum; k > 0 here since z[0] = -inf
                    k -= 1;
                } else {
                    k += 1;
                    v[k] = q;
                    z[k] = s;
                    z[k + 1] = f64::INFINITY;
                    break;
                }
            }
        }
        k = 0;
        for q in 0..wp {
            while z[k + 1] < q as f64 {
                k += 1;
            }
            if (1..=w).contains(&q) {
                let p = v[k];
                let d = q as f64 - p as f64;
                out[y * w + q - 1] = (d * d + f[p]) as u32;
            }
        }
    }
    out
}

/// Euclidean distance to the nearest pixel outside `mask` (the square root of
/// [`distance_transform_sq`]).
pub fn distance_transform(mask: &[bool], w: usize, h: usize) -> Vec<f32> {
    distance_transform_sq(mask, w, h).into_iter().map(|d| (d as f64).sqrt() as f32).collect()
}

/// The interior point of `mask` farthest from its boundary: index of the first maximum (in
/// row-major order) of [`distance_transform_sq`], or `None` for an empty mask.
pub fn deepest_point(mask: &[bool], w: usize, h: usize) -> Option<(usize, usize)> {
    let d = distance_transform_sq(mask, w, h);
    let mut best: Option<(usize, u32)> = None;
    for (i, &v) in d.iter().enumerate() {
        if v > 0 && best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| (i % w, i / w))
}

/// 8-connected components of `mask`, labelled `1, 2, …` in the row-major order of their
/// first pixel (as `scipy.ndimage.label(mask, structure=np.ones((3, 3)))`); background is 0.
/// Returns the labels and the pixel count of each component (`sizes[l - 1]` for label `l`).
///
/// # Panics
/// If `mask.len() != w * h`.
pub fn connected_components(mask: &[bool], w: usize, h: usize) -> (Vec<u32>, Vec<usize>) {
    check_len("component", mask, w, h);
    let mut labels = vec![0u32; w * h];
    let mut sizes = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !mask[start] || labels[start] != 0 {
            continue;
        }
        let label = sizes.len() as u32 + 1;
        let mut size = 0usize;
        labels[start] = label;
        stack.push(start);
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = ((i % w) as isize, (i / w) as isize);
            for dy in -1..=1isize {
                for dx in -1..=1isize {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if mask[j] && labels[j] == 0 {
                        labels[j] = label;
                        stack.push(j);
                    }
                }
            }
        }
        sizes.push(size);
    }
    (labels, sizes)
}

/// First click: positive, at the interior point of `gt` farthest from its boundary
/// ([`deepest_point`]). `None` when `gt` is empty.
///
/// # Panics
/// If `gt.len() != w * h`.
pub fn first_click(gt: &[bool], w: usize, h: usize) -> Option<Click> {
    check_len("ground-truth", gt, w, h);
    deepest_point(gt, w, h).map(|(x, y)| Click { x: x as f32, y: y as f32, positive: true })
}

/// Next click for the prediction `pred`: at the interior point (farthest from its boundary)
/// of the largest 8-connected error region, positive if it is a false-negative region,
/// negative if a false-positive one; ties as in the module doc. `None` when `pred == gt`.
///
/// # Panics
/// If `gt` or `pred` does not hold `w * h` pixels.
pub fn next_click(gt: &[bool], pred: &[bool], w: usize, h: usize) -> Option<Click> {
    check_len("ground-truth", gt, w, h);
    check_len("prediction", pred, w, h);
    let fn_mask: Vec<bool> = gt.iter().zip(pred).map(|(&g, &p)| g && !p).collect();
    let fp_mask: Vec<bool> = gt.iter().zip(pred).map(|(&g, &p)| !g && p).collect();
    // (size, positive, labels, label)
    let mut best: Option<(usize, bool, Vec<u32>, u32)> = None;
    for (positive, err) in [(true, &fn_mask), (false, &fp_mask)] {
        let (labels, sizes) = connected_components(err, w, h);
        if let Some((i, &s)) = sizes.iter().enumerate().rev().max_by_key(|&(_, &s)| s) {
            // `rev` + `max_by_key` (which keeps the last maximum) = the first largest label
            if best.as_ref().is_none_or(|b| s > b.0) {
                best = Some((s, positive, labels, i as u32 + 1));
            }
        }
    }
    let (_, positive, labels, label) = best?;
    // The component alone, cut to its bounding box: outside the box is background anyway,
    // and the implicit one-pixel background border of the transform is exact there (the
    // nearest background pixel of an inside pixel is never farther than the ring around the
    // box).
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for (i, _) in labels.iter().enumerate().filter(|(_, &l)| l == label) {
        let (x, y) = (i % w, i / w);
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
    let mut comp = vec![false; bw * bh];
    for yy in 0..bh {
        for xx in 0..bw {
            comp[yy * bw + xx] = labels[(y0 + yy) * w + x0 + xx] == label;
        }
    }
    // Row-major order inside the box is row-major order in the image.
    let (cx, cy) = deepest_point(&comp, bw, bh)?;
    Some(Click { x: (x0 + cx) as f32, y: (y0 + cy) as f32, positive })
}

/// The ground-truth box `[min x, min y, max x + 1, max y + 1]` in pixel coordinates (see the
/// module doc), or `None` for an empty mask.
///
/// # Panics
/// If `gt.len() != w * h`.
pub fn gt_box(gt: &[bool], w: usize, h: usize) -> Option<[f32; 4]> {
    check_len("ground-truth", gt, w, h);
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for (i, _) in gt.iter().enumerate().filter(|(_, &g)| g) {
        let (x, y) = (i % w, i / w);
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x + 1);
        y1 = y1.max(y + 1);
    }
    (x0 != usize::MAX).then_some([x0 as f32, y0 as f32, x1 as f32, y1 as f32])
}

/// One run of the click protocol: the clicks given and the prediction after each.
#[derive(Debug, Clone)]
pub struct ClickRun {
    /// `clicks[..k]` is the prompt of the `k`-click result.
    pub clicks: Vec<Click>,
    /// `predictions[k - 1]`: the binary mask predicted from the first `k` clicks.
    pub predictions: Vec<Vec<bool>>,
}

impl ClickRun {
    /// The prediction from the first `k` clicks (`k >= 1`). When the protocol stopped early
    /// because a prediction was already perfect, later counts reuse that prediction.
    pub fn after(&self, k: usize) -> Option<&[bool]> {
        if k == 0 || self.predictions.is_empty() {
            return None;
        }
        let i = (k - 1).min(self.predictions.len() - 1);
        Some(&self.predictions[i])
    }
}

/// Runs the click protocol for up to `max_clicks` clicks (5 covers [`CLICK_COUNTS`]):
/// [`first_click`], then `predict(&clicks)` and [`next_click`] on its mask, and so on. Stops
/// early when a prediction equals `gt` (no error region left); see [`ClickRun::after`].
/// Returns an empty run for an empty `gt`.
///
/// `predict` gets all clicks so far and returns a row-major `w × h` binary mask (threshold
/// the model's logits at 0 first); a mask of another size is an [`Error::Invalid`].
pub fn run_click_protocol<F>(gt: &[bool], w: usize, h: usize, max_clicks: usize, mut predict: F) -> Result<ClickRun>
where
    F: FnMut(&[Click]) -> Result<Vec<bool>>,
{
    check_len("ground-truth", gt, w, h);
    let mut run = ClickRun { clicks: Vec::new(), predictions: Vec::new() };
    let mut next = first_click(gt, w, h);
    while run.clicks.len() < max_clicks {
        let Some(click) = next else { break };
        run.clicks.push(click);
        let pred = predict(&run.clicks)?;
        if pred.len() != w * h {
            return Err(Error::Invalid(format!("predicted mask has {} pixels, expected {w}x{h}", pred.len())));
        }
        next = next_click(gt, &pred, w, h);
        run.predictions.push(pred);
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_edt_sq(mask: &[bool], w: usize, h: usize) -> Vec<u32> {
        let (wi, hi) = (w as i64, h as i64);
        let mut out = vec![0u32; w * h];
        for y in 0..hi {
            for x in 0..wi {
                if !mask[(y * wi + x) as usize] {
                    continue;
                }
                let mut best = i64::MAX;
                for by in -1..=hi {
                    for bx in -1..=wi {
                        let inside = bx >= 0 && by >= 0 && bx < wi && by < hi;
                        if inside && mask[(by * wi + bx) as usize] {
                            continue;
                        }
                        best = best.min((bx - x).pow(2) + (by - y).pow(2));
                    }
                }
                out[(y * wi + x) as usize] = best as u32;
            }
        }
        out
    }

    #[test]
    fn edt_matches_brute_force() {
        let mut rng = crate::rng::Pcg32::new(5);
        for (w, h, p) in [(1, 1, 1.0), (9, 4, 0.8), (13, 11, 0.9), (17, 23, 0.97), (30, 2, 0.9)] {
            let mask: Vec<bool> = (0..w * h).map(|_| rng.uniform() < p).collect();
            assert_eq!(distance_transform_sq(&mask, w, h), brute_edt_sq(&mask, w, h), "{w}x{h}");
        }
    }
}
