//! Calibration of the foreground probability: expected calibration error with its
//! reliability diagram, Brier score and negative log-likelihood.
//!
//! Binary segmentation convention: the prediction is `p >= 0.5`, its confidence is the
//! probability of the predicted class, `max(p, 1 − p)` (in `[0.5, 1]`), and its accuracy is
//! whether the prediction equals the ground truth. ECE follows Guo et al. (ICML 2017):
//! `M` equal-width bins `(k/M, (k+1)/M]` over `[0, 1]` (bin 0 also takes 0), ECE =
//! Σ_bins (|B|/n) |acc(B) − conf(B)|. With confidence ≥ 0.5 only the upper half of the
//! bins is ever filled.

use serde::{Deserialize, Serialize};

/// One bar of the reliability diagram.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// The bin is `(lower, upper]` (the first one includes 0).
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    /// Mean confidence `max(p, 1 − p)` of the pixels in the bin; `None` when empty.
    pub mean_confidence: Option<f64>,
    /// Fraction of them predicted correctly; `None` when empty.
    pub accuracy: Option<f64>,
}

/// Calibration of one set of pixels. Every value is `None` for an empty set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationMetrics {
    /// Expected calibration error over `bins`.
    pub ece: Option<f64>,
    /// Brier score, mean (p − gt)² of the foreground probability.
    pub brier: Option<f64>,
    /// Negative log-likelihood, mean −[gt ln p + (1 − gt) ln(1 − p)] with p clamped to
    /// [eps, 1 − eps].
    pub nll: Option<f64>,
    pub bins: Vec<ReliabilityBin>,
}

/// The bin of confidence `c` among the bins `(bounds[k], bounds[k + 1]]` (bin 0 also
/// takes 0); `bounds[k] = k / M`.
fn bin_of(c: f64, bounds: &[f64]) -> usize {
    let n_bins = bounds.len() - 1;
    let mut k = ((c * n_bins as f64) as usize).min(n_bins - 1);
    // settle rounding at the edges against the same boundaries the bins report
    while k > 0 && c <= bounds[k] {
        k -= 1;
    }
    while k + 1 < n_bins && c > bounds[k + 1] {
        k += 1;
    }
    k
}

fn bin_bounds(n_bins: usize) -> Vec<f64> {
    (0..=n_bins).map(|k| k as f64 / n_bins as f64).collect()
}

/// Running sums of one set of pixels.
struct Accumulator {
    /// Per bin: count, sum of confidences, number correct.
    bins: Vec<(u64, f64, u64)>,
    brier: f64,
    nll: f64,
    n: u64,
}

impl Accumulator {
    fn new(n_bins: usize) -> Self {
        Self { bins: vec![(0, 0.0, 0); n_bins], brier: 0.0, nll: 0.0, n: 0 }
    }

    /// Counts the pixel in its bin (and in `n`); the caller sums Brier and NLL.
    #[inline(always)]
    fn add_bin(&mut self, t: &PixelTerms) {
        let b = &mut self.bins[t.bin];
        b.0 += 1;
        b.1 += t.confidence;
        b.2 += t.correct as u64;
        self.n += 1;
    }

    fn finish(self) -> CalibrationMetrics {
        let n_bins = self.bins.len();
        let n = self.n as f64;
        let mut ece = 0.0f64;
        let bins = self
            .bins
            .iter()
            .enumerate()
            .map(|(k, &(count, conf_sum, correct))| {
                let (mean_confidence, accuracy) = if count > 0 {
                    let c = count as f64;
                    let (mc, acc) = (conf_sum / c, correct as f64 / c);
                    ece += c / n * (acc - mc).abs();
                    (Some(mc), Some(acc))
                } else {
                    (None, None)
                };
                ReliabilityBin {
                    lower: k as f64 / n_bins as f64,
                    upper: (k + 1) as f64 / n_bins as f64,
                    count,
                    mean_confidence,
                    accuracy,
                }
            })
            .collect();
        if self.n == 0 {
            return CalibrationMetrics { ece: None, brier: None, nll: None, bins };
        }
        CalibrationMetrics { ece: Some(ece), brier: Some(self.brier / n), nll: Some(self.nll / n), bins }
    }
}

/// One pixel's contribution.
struct PixelTerms {
    bin: usize,
    confidence: f64,
    correct: bool,
    brier: f64,
    nll: f64,
}

#[inline(always)]
fn pixel_terms(p32: f32, y: bool, bounds: &[f64], eps: f64) -> PixelTerms {
    let p = p32 as f64;
    let confidence = p.max(1.0 - p);
    let yf = y as u8 as f64;
    let pc = p.clamp(eps, 1.0 - eps);
    PixelTerms {
        bin: bin_of(confidence, bounds),
        confidence,
        correct: (p32 >= 0.5) == y,
        brier: (p - yf) * (p - yf),
        nll: -(if y { pc.ln() } else { (1.0 - pc).ln() }),
    }
}

/// Calibration of every pixel and of the pixels in `subset`, in one pass.
/// `n_bins >= 1` and `eps` in (0, 0.5) are checked by the caller.
pub(crate) fn calibration_with_subset(
    prob: &[f32],
    gt: &[bool],
    subset: &[bool],
    n_bins: usize,
    eps: f64,
) -> (CalibrationMetrics, CalibrationMetrics) {
    let (mut all, mut sub) = (Accumulator::new(n_bins), Accumulator::new(n_bins));
    let bounds = bin_bounds(n_bins);
    // scalar sums in locals (kept in registers), per-bin sums in the accumulators
    let (mut brier_all, mut nll_all, mut brier_sub, mut nll_sub) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for ((&p, &y), &inside) in prob.iter().zip(gt).zip(subset) {
        let t = pixel_terms(p, y, &bounds, eps);
        all.add_bin(&t);
        brier_all += t.brier;
        nll_all += t.nll;
        if inside {
            sub.add_bin(&t);
            brier_sub += t.brier;
            nll_sub += t.nll;
        }
    }
    (all.brier, all.nll) = (brier_all, nll_all);
    (sub.brier, sub.nll) = (brier_sub, nll_sub);
    (all.finish(), sub.finish())
}

/// Calibration of every pixel of `prob` (foreground probabilities in [0, 1]) against `gt`.
/// Errors on a length mismatch, a value outside [0, 1], `n_bins == 0` or `eps` outside
/// (0, 0.5).
pub fn calibration(prob: &[f32], gt: &[bool], n_bins: usize, eps: f64) -> crate::Result<CalibrationMetrics> {
    use crate::Error;
    if prob.len() != gt.len() || prob.len() > u32::MAX as usize {
        return Err(Error::Invalid(format!("metrics: {} probabilities but {} labels", prob.len(), gt.len())));
    }
    if let Some(i) = prob.iter().position(|p| !(0.0..=1.0).contains(p)) {
        return Err(Error::Invalid(format!("metrics: prob[{i}] = {} is not a probability in [0, 1]", prob[i])));
    }
    if n_bins == 0 || !(eps > 0.0 && eps < 0.5) {
        return Err(Error::Invalid(format!("metrics: need ece_bins >= 1 and 0 < eps < 0.5 (got {n_bins}, {eps})")));
    }
    let mut acc = Accumulator::new(n_bins);
    let bounds = bin_bounds(n_bins);
    let (mut brier, mut nll) = (0.0f64, 0.0f64);
    for (&p, &y) in prob.iter().zip(gt) {
        let t = pixel_terms(p, y, &bounds, eps);
        acc.add_bin(&t);
        brier += t.brier;
        nll += t.nll;
    }
    (acc.brier, acc.nll) = (brier, nll);
    Ok(acc.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_right_closed() {
        let (b15, b10) = (bin_bounds(15), bin_bounds(10));
        assert_eq!(bin_of(0.0, &b15), 0);
        assert_eq!(bin_of(1.0, &b15), 14);
        assert_eq!(bin_of(0.5, &b10), 4); // (0.4, 0.5]
        assert_eq!(bin_of(0.5000001, &b10), 5);
        assert_eq!(bin_of(9.0 / 15.0, &b15), 8); // exactly on 9/15 → (8/15, 9/15]
        for k in 0..=15 {
            let c = k as f64 / 15.0;
            let b = bin_of(c, &b15);
            assert!(c <= (b + 1) as f64 / 15.0 && (b == 0 || c > b as f64 / 15.0), "{c} in {b}");
        }
    }
}
