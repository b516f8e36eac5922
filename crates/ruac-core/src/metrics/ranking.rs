//! Uncertainty as a detector of wrong pixels: AUROC, AUPR (average precision), AURC and
//! E-AURC, all from one sort of the uncertainty values.
//!
//! The score is the uncertainty (higher = more likely wrong) and the positive class is a
//! wrong pixel. Tied uncertainties are handled exactly:
//! * AUROC and AUPR count every distinct uncertainty value as one threshold, as
//!   scikit-learn's `roc_auc_score` / `average_precision_score` do (`_binary_clf_curve`),
//!   so a tie contributes half to AUROC (the Mann-Whitney statistic).
//! * AURC keeps the most certain pixels first; inside a tie group the order is random, and
//!   the value returned is the exact expectation over that order (every position of a
//!   tie group carries the group's error rate). A constant map so gets AURC = error rate.

use crate::{Error, Result};

/// One run of equal uncertainty values in ascending order: how many pixels, how many wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TieGroup {
    count: u32,
    wrong: u32,
}

/// The tie groups of one uncertainty map over one set of pixels, sorted once and shared by
/// every ranking metric.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorRanking {
    /// Ascending uncertainty.
    groups: Vec<TieGroup>,
    n: u64,
    n_wrong: u64,
}

impl ErrorRanking {
    /// Sorts `uncertainty` (the score) against `wrong` (the label). Errors on a length
    /// mismatch or a non-finite uncertainty.
    pub fn new(uncertainty: &[f32], wrong: &[bool]) -> Result<Self> {
        if uncertainty.len() != wrong.len() {
            return Err(Error::Invalid(format!(
                "metrics: {} uncertainty values but {} labels",
                uncertainty.len(),
                wrong.len()
            )));
        }
        if uncertainty.len() > u32::MAX as usize {
            return Err(Error::Invalid(format!("metrics: {} values is too many", uncertainty.len())));
        }
        if let Some(i) = uncertainty.iter().position(|u| !u.is_finite()) {
            return Err(Error::Invalid(format!("metrics: uncertainty[{i}] = {} is not finite", uncertainty[i])));
        }
        Ok(Self::from_sorted(&argsort_f32(uncertainty, &mut Vec::new()), wrong, None))
    }

    /// Builds the tie groups from packed `key << 32 | pixel` entries in ascending key
    /// order (see [`argsort_f32`]); with `ranks2`, also writes twice each pixel's average
    /// rank (1-based, ties share their mean position; doubled so it is an exact integer)
    /// into `ranks2[pixel]`.
    pub(crate) fn from_sorted(sorted: &[u64], wrong: &[bool], mut ranks2: Option<&mut [u32]>) -> Self {
        let mut groups: Vec<TieGroup> = Vec::new();
        let mut n_wrong = 0u64;
        let mut start = 0;
        while start < sorted.len() {
            let key = sorted[start] >> 32;
            let mut end = start + 1;
            while end < sorted.len() && sorted[end] >> 32 == key {
                end += 1;
            }
            let mut w = 0u32;
            if let Some(r) = ranks2.as_deref_mut() {
                let r2 = (start + 1 + end) as u32;
                for &v in &sorted[start..end] {
                    r[v as u32 as usize] = r2;
                    w += wrong[v as u32 as usize] as u32;
                }
            } else {
                for &v in &sorted[start..end] {
                    w += wrong[v as u32 as usize] as u32;
                }
            }
            groups.push(TieGroup { count: (end - start) as u32, wrong: w });
            n_wrong += w as u64;
            start = end;
        }
        Self { groups, n: sorted.len() as u64, n_wrong }
    }

    /// All `n` pixels share one uncertainty value (`n_wrong` of them wrong).
    pub(crate) fn constant(n: u64, n_wrong: u64) -> Self {
        let groups = if n == 0 { vec![] } else { vec![TieGroup { count: n as u32, wrong: n_wrong as u32 }] };
        Self { groups, n, n_wrong }
    }

    /// Number of pixels ranked.
    pub fn len(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Number of wrong pixels (positives).
    pub fn n_wrong(&self) -> u64 {
        self.n_wrong
    }

    /// Number of distinct uncertainty values.
    pub fn n_distinct(&self) -> usize {
        self.groups.len()
    }

    fn both_classes(&self) -> bool {
        self.n_wrong > 0 && self.n_wrong < self.n
    }

    /// Area under the ROC curve of uncertainty separating wrong from correct pixels
    /// (= P(u_wrong > u_correct) + P(tie) / 2, scikit-learn's `roc_auc_score`). `None` when
    /// there is no wrong pixel or no correct one (the curve is undefined).
    pub fn auroc(&self) -> Option<f64> {
        if !self.both_classes() {
            return None;
        }
        let positives = self.n_wrong;
        let negatives = self.n - self.n_wrong;
        // Trapezoids of the ROC curve, doubled to stay in integers: a group with fp false
        // and tp true positives above tp_before adds fp * (2 tp_before + tp).
        let mut tp_before = 0u64;
        let mut area2 = 0u128;
        for g in self.groups.iter().rev() {
            let (count, wrong) = (g.count as u64, g.wrong as u64);
            area2 += (count - wrong) as u128 * (2 * tp_before + wrong) as u128;
            tp_before += wrong;
        }
        Some(area2 as f64 / (2.0 * positives as f64 * negatives as f64))
    }

    /// Average precision of uncertainty as a wrong-pixel detector, scikit-learn's
    /// `average_precision_score`: Σ (R_k − R_{k−1}) P_k over the distinct thresholds, highest
    /// first (no interpolation). `None` without both wrong and correct pixels.
    pub fn average_precision(&self) -> Option<f64> {
        if !self.both_classes() {
            return None;
        }
        let positives = self.n_wrong as f64;
        let (mut tps, mut seen) = (0u64, 0u64);
        let (mut ap, mut prev_recall) = (0.0f64, 0.0f64);
        for g in self.groups.iter().rev() {
            tps += g.wrong as u64;
            seen += g.count as u64;
            if g.wrong == 0 {
                continue;
            }
            let recall = tps as f64 / positives;
            let precision = tps as f64 / seen as f64;
            ap += (recall - prev_recall) * precision;
            prev_recall = recall;
        }
        Some(ap)
    }

    /// Area under the risk-coverage curve (Geifman & El-Yaniv; Geifman et al., ICLR 2019):
    /// keep the k most certain pixels, risk(k) = their error rate, AURC = (1/n) Σ_k risk(k)
    /// for k = 1..n. Ties: exact expectation over a random order (see the module docs).
    /// Defined whenever there is a pixel (0 with no errors, 1 with all wrong); `None` only
    /// for an empty set.
    pub fn aurc(&self) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let mut sum = 0.0f64;
        let (mut n0, mut e0) = (0u64, 0u64);
        for g in &self.groups {
            let (m, e) = (g.count as u64, g.wrong as u64);
            if n0 == 0 {
                // the first group: risk e/m at each of its m positions
                sum += e as f64;
            } else if e0 > 0 || e > 0 {
                // the j-th pixel of this group: expected errors e0 + j e / m among n0 + j kept
                let mf = m as f64;
                let base = e0 as f64 * mf;
                for j in 1..=m {
                    sum += (base + (j * e) as f64) / (mf * (n0 + j) as f64);
                }
            }
            n0 += m;
            e0 += e;
        }
        Some(sum / self.n as f64)
    }

    /// AURC of the oracle ordering (every correct pixel kept before any wrong one), the
    /// finite-sample version of Geifman et al.'s κ*. `None` for an empty set.
    pub fn optimal_aurc(&self) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let correct = self.n - self.n_wrong;
        let sum: f64 = (correct + 1..=self.n).map(|k| (k - correct) as f64 / k as f64).sum();
        Some(sum / self.n as f64)
    }

    /// Excess AURC, AURC − AURC of the oracle ordering (Geifman et al. 2019), computed
    /// exactly for these n pixels rather than with the continuous approximation
    /// r + (1 − r) ln(1 − r). 0 when there are no errors or only errors. `None` when empty.
    pub fn eaurc(&self) -> Option<f64> {
        Some(self.aurc()? - self.optimal_aurc()?)
    }
}

/// A `u32` whose unsigned order is the numeric order of finite `f32` values, with −0 = +0
/// (so that ties are exactly the equal values).
pub(crate) fn f32_order_key(x: f32) -> u32 {
    let b = (x + 0.0).to_bits();
    if b >> 31 == 1 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// Stable sort of finite `values` (ascending, −0 = +0), returned packed: entry j is
/// `key << 32 | index` of the j-th smallest value (ties in index order), where `key` is
/// [`f32_order_key`]. LSD radix sort on the key's two 16-bit halves; a half shared by
/// every value is skipped (a constant map takes no pass). `values.len()` must fit in `u32`.
/// `tmp`: scratch space, reusable across calls.
pub(crate) fn argsort_f32(values: &[f32], tmp: &mut Vec<u64>) -> Vec<u64> {
    const BUCKETS: usize = 1 << 16;
    let n = values.len();
    debug_assert!(n <= u32::MAX as usize);
    let mut hist = vec![0u32; if n > 256 { 2 * BUCKETS } else { 0 }];
    let mut packed: Vec<u64> = Vec::with_capacity(n);
    for (i, &v) in values.iter().enumerate() {
        let k = f32_order_key(v);
        if n > 256 {
            hist[(k & 0xffff) as usize] += 1;
            hist[BUCKETS + (k >> 16) as usize] += 1;
        }
        packed.push(((k as u64) << 32) | i as u64);
    }
    if n <= 256 {
        packed.sort_unstable(); // entries are distinct (the index), so this is stable
        return packed;
    }
    for (slot, shift) in [(0usize, 32u32), (1, 48)] {
        let offsets = &mut hist[slot * BUCKETS..(slot + 1) * BUCKETS];
        if offsets.iter().any(|&c| c as usize == n) {
            continue; // every value has the same digit here
        }
        let mut acc = 0u32;
        for o in offsets.iter_mut() {
            let c = *o;
            *o = acc;
            acc += c;
        }
        tmp.resize(n, 0);
        for &v in &packed {
            let d = ((v >> shift) & 0xffff) as usize;
            tmp[offsets[d] as usize] = v;
            offsets[d] += 1;
        }
        std::mem::swap(&mut packed, tmp);
    }
    packed
}

/// Twice the 1-based average rank (ties share their mean position) of every entry of a
/// packed sorted list (see [`argsort_f32`]), written into `ranks2[index]`.
pub(crate) fn write_ranks2(sorted: &[u64], ranks2: &mut [u32]) {
    let mut start = 0;
    while start < sorted.len() {
        let key = sorted[start] >> 32;
        let mut end = start + 1;
        while end < sorted.len() && sorted[end] >> 32 == key {
            end += 1;
        }
        let r2 = (start + 1 + end) as u32;
        for &v in &sorted[start..end] {
            ranks2[v as u32 as usize] = r2;
        }
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radix_sort_matches_std_sort() {
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for &n in &[0usize, 1, 2, 5, 1000, 5000] {
            for spread in [1u64, 7, 1 << 10, 1 << 24] {
                // values with ties, both signs, and -0 / +0 (one value)
                let values: Vec<f32> = (0..n)
                    .map(|_| {
                        let v = (next() % spread) as f32 - (spread / 2) as f32;
                        if v == 0.0 && next() % 2 == 0 {
                            -0.0
                        } else {
                            v * 0.37
                        }
                    })
                    .collect();
                let sorted = argsort_f32(&values, &mut Vec::new());
                let order: Vec<u32> = sorted.iter().map(|&v| v as u32).collect();
                let mut expected: Vec<u32> = (0..n as u32).collect();
                expected.sort_by(|&a, &b| values[a as usize].partial_cmp(&values[b as usize]).unwrap()); // stable
                assert_eq!(order, expected, "n={n} spread={spread}");
                assert!(sorted.iter().all(|&v| (v >> 32) as u32 == f32_order_key(values[v as u32 as usize])));
            }
        }
    }

    #[test]
    fn order_keys_follow_numeric_order() {
        let xs = [-3.5f32, -1e-30, -0.0, 0.0, 1e-30, 0.25, 7.0];
        for w in xs.windows(2) {
            let (a, b) = (f32_order_key(w[0]), f32_order_key(w[1]));
            if w[0] == w[1] {
                assert_eq!(a, b);
            } else {
                assert!(a < b, "{} {}", w[0], w[1]);
            }
        }
    }
}
