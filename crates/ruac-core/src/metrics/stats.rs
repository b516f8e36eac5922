//! Paired comparison statistics (Wilcoxon signed-rank, bootstrap confidence intervals).
//!
//! The paper compares two models metric by metric on the same set of domains (or images):
//! every domain gives one pair `(a_i, b_i)` and the comparison works on the differences
//! `d_i = a_i - b_i` ("model A minus model B"). Two complementary summaries:
//!
//! * [`wilcoxon`]: the two-sided Wilcoxon signed-rank test with the defaults of
//!   `scipy.stats.wilcoxon` (SciPy 1.17: `zero_method="wilcox"`, `correction=False`,
//!   `method="auto"`), checked against SciPy in `tests/stats_wilcoxon.rs`;
//! * [`bootstrap_mean_ci`]: a percentile bootstrap confidence interval of the mean
//!   difference (Efron & Tibshirani 1993, ch. 13), seeded with [`Pcg32`] so the interval
//!   is identical for a seed on every platform, wasm included.
//!
//! [`compare_paired`] bundles both with the means into one serde-serialisable record per
//! metric.
use serde::{Deserialize, Serialize};

use crate::rng::Pcg32;
use crate::{Error, Result};

/// Which null distribution gave a Wilcoxon p-value. SciPy's `method="auto"` picks:
///
/// 1. more than 50 pairs (zeros included): [`Asymptotic`](Self::Asymptotic);
/// 2. otherwise, no ties among `|d|` and no zero difference: [`Exact`](Self::Exact);
/// 3. otherwise, at most 13 pairs: [`Permutation`](Self::Permutation);
/// 4. otherwise: [`Asymptotic`](Self::Asymptotic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WilcoxonMethod {
    /// The exact distribution of `R+` for `n` distinct ranks (all `2^n` sign patterns
    /// equally likely).
    Exact,
    /// Exact enumeration of all sign flips of the (tied, mid-)ranks: what SciPy's
    /// `permutation_test` computes deterministically for `n <= 13` (there `2^n <= 9999`
    /// resamples, so the test is exhaustive, not random).
    Permutation,
    /// Normal approximation: mean `n(n+1)/4`, variance
    /// `(n(n+1)(2n+1) - Σ(t³ - t)/2) / 24` over tie groups of size `t`, optional
    /// continuity correction.
    Asymptotic,
}

/// Result of [`wilcoxon`] / [`wilcoxon_diffs`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WilcoxonResult {
    /// SciPy's two-sided statistic: `min(R+, R-)`.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Number of non-zero differences used (zero differences are dropped, "wilcox").
    pub n: usize,
    /// Number of zero differences dropped.
    pub n_zero: usize,
    /// Sum of the ranks of `|d|` of the positive differences (`a > b`).
    pub r_plus: f64,
    /// Sum of the ranks of `|d|` of the negative differences.
    pub r_minus: f64,
    pub method: WilcoxonMethod,
    /// For [`WilcoxonMethod::Asymptotic`]: the signed z-score of `R+` (after the continuity
    /// correction if one was asked for); positive when A tends to be larger. SciPy reports
    /// `-|z|` as `zstatistic`.
    pub z: Option<f64>,
    /// Whether the continuity correction was requested (it only affects the asymptotic route).
    pub correction: bool,
}

/// Two-sided Wilcoxon signed-rank test of the paired samples `a`, `b` (differences
/// `a - b`), with SciPy's defaults: `scipy.stats.wilcoxon(a, b)`.
///
/// Errors ([`Error::Invalid`]) on different lengths, no pairs, or a non-finite value.
/// Ties are exact floating-point equality of `|a_i - b_i|`; as SciPy's documentation warns,
/// round the differences first (or pass them to [`wilcoxon_diffs`]) when values that should
/// tie may differ by round-off.
pub fn wilcoxon(a: &[f64], b: &[f64]) -> Result<WilcoxonResult> {
    wilcoxon_diffs(&paired_diffs(a, b)?, false)
}

/// Two-sided Wilcoxon signed-rank test of the differences `d` (`scipy.stats.wilcoxon(d,
/// correction=correction)`): zero differences are dropped, `|d|` is ranked with mid-ranks
/// for ties, and the p-value comes from the route [`WilcoxonMethod`] describes.
///
/// When every difference is zero there is no evidence either way: the result has `n = 0`,
/// statistic 0 and p-value 1 (SciPy returns 1 on its permutation route, `n <= 13`, but NaN
/// on the asymptotic one).
pub fn wilcoxon_diffs(d: &[f64], correction: bool) -> Result<WilcoxonResult> {
    check_finite("differences", d)?;
    let n_total = d.len();
    let nonzero: Vec<f64> = d.iter().copied().filter(|&v| v != 0.0).collect();
    let n = nonzero.len();
    let n_zero = n_total - n;

    // Mid-ranks of |d| (1-based) and tie groups.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| nonzero[i].abs().total_cmp(&nonzero[j].abs()));
    let mut ranks = vec![0.0f64; n];
    let mut tie_term = 0.0f64; // Σ (t³ - t)
    let mut has_ties = false;
    let mut start = 0;
    while start < n {
        let v = nonzero[order[start]].abs();
        let mut end = start + 1;
        while end < n && nonzero[order[end]].abs() == v {
            end += 1;
        }
        let t = (end - start) as f64;
        if end - start > 1 {
            has_ties = true;
            tie_term += t * t * t - t;
        }
        // positions start..end hold ranks start+1 ..= end, mean (start + 1 + end) / 2
        let mid = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = mid;
        }
        start = end;
    }
    let r_plus: f64 = (0..n).filter(|&i| nonzero[i] > 0.0).map(|i| ranks[i]).sum();
    let r_minus: f64 = (0..n).filter(|&i| nonzero[i] < 0.0).map(|i| ranks[i]).sum();

    let method = if n_total > 50 {
        WilcoxonMethod::Asymptotic
    } else if !has_ties && n_zero == 0 {
        WilcoxonMethod::Exact
    } else if n_total <= 13 {
        WilcoxonMethod::Permutation
    } else {
        WilcoxonMethod::Asymptotic
    };
    let statistic = r_plus.min(r_minus);
    let mut result =
        WilcoxonResult { statistic, p_value: 1.0, n, n_zero, r_plus, r_minus, method, z: None, correction };
    if n == 0 {
        return Ok(result);
    }

    result.p_value = match method {
        WilcoxonMethod::Exact => {
            // Symmetric null: P(R+ <= T) with T = min(R+, R-), doubled.
            let pmf = signed_rank_pmf(n);
            let t = statistic as usize; // integral without ties
            let cdf: f64 = pmf[..=t].iter().sum();
            (2.0 * cdf).min(1.0)
        }
        WilcoxonMethod::Permutation => {
            // Doubled mid-ranks are integers; enumerate the sign flips by counting.
            let doubled: Vec<usize> = ranks.iter().map(|r| (2.0 * r).round() as usize).collect();
            let total: usize = doubled.iter().sum();
            let mut pmf = vec![0.0f64; total + 1];
            pmf[0] = 1.0;
            let mut reach = 0;
            for &r2 in &doubled {
                for s in (0..=reach).rev() {
                    let p = pmf[s] * 0.5;
                    pmf[s] = p;
                    pmf[s + r2] += p;
                }
                reach += r2;
            }
            let obs = (2.0 * r_plus).round() as usize;
            let less: f64 = pmf[..=obs].iter().sum();
            let greater: f64 = pmf[obs..].iter().sum();
            (2.0 * less.min(greater)).min(1.0)
        }
        WilcoxonMethod::Asymptotic => {
            let nf = n as f64;
            let mean = nf * (nf + 1.0) * 0.25;
            let se = ((nf * (nf + 1.0) * (2.0 * nf + 1.0) - tie_term / 2.0) / 24.0).sqrt();
            let mut z = (r_plus - mean) / se;
            if correction && z != 0.0 {
                z -= z.signum() * 0.5 / se;
            }
            result.z = Some(z);
            two_sided_normal_p(z)
        }
    };
    Ok(result)
}

/// Null distribution of the signed-rank statistic `R+` for `n` untied ranks: `pmf[k] =
/// P(R+ = k)`, `k = 0 ..= n(n+1)/2`. The same recursion as SciPy's `_get_wilcoxon_distr`
/// (each rank is in `R+` with probability 1/2).
pub fn signed_rank_pmf(n: usize) -> Vec<f64> {
    let total = n * (n + 1) / 2;
    let mut c = vec![0.0f64; total + 1];
    c[0] = 1.0;
    let mut reach = 0;
    for k in 1..=n {
        for s in (0..=reach).rev() {
            let p = c[s] * 0.5;
            c[s] = p;
            c[s + k] += p;
        }
        reach += k;
    }
    c
}

/// `2 · P(Z >= |z|)` for a standard normal `Z`, i.e. `erfc(|z| / √2)`.
pub fn two_sided_normal_p(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0)
}

/// Complementary error function (`libm`'s port of FreeBSD's msun, accurate to about 1 ulp,
/// including the far tail where `1 - erf` would cancel).
pub fn erfc(x: f64) -> f64 {
    libm::erfc(x)
}

/// Settings of [`bootstrap_mean_ci`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootstrapConfig {
    /// Number of bootstrap resamples (default 10 000).
    pub resamples: usize,
    /// Two-sided confidence level in (0, 1) (default 0.95).
    pub confidence: f64,
    /// Seed of the [`Pcg32`] that draws the resamples (default 0).
    pub seed: u64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self { resamples: 10_000, confidence: 0.95, seed: 0 }
    }
}

/// A percentile bootstrap confidence interval of a mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootstrapCi {
    /// The sample mean (the point estimate).
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
    pub confidence: f64,
    pub resamples: usize,
    pub seed: u64,
}

/// Percentile bootstrap CI of the mean of `d` (for paired data, the mean difference).
///
/// Each of `resamples` resamples draws `n` indices uniformly with replacement (unbiased
/// bounded integers from [`Pcg32::next_u32`], Lemire's method), in a fixed order, and takes
/// the mean; the bounds are the `(1 - c)/2` and `(1 + c)/2` quantiles of the sorted
/// resample means with linear interpolation (NumPy's default `np.quantile`, as in
/// `scipy.stats.bootstrap(..., method="percentile")`). Deterministic for a seed on every
/// platform. A constant `d` gives `lower == upper == estimate`.
pub fn bootstrap_mean_ci(d: &[f64], cfg: &BootstrapConfig) -> Result<BootstrapCi> {
    check_finite("sample", d)?;
    if cfg.resamples == 0 {
        return Err(Error::Invalid("bootstrap needs at least one resample".into()));
    }
    if !(cfg.confidence > 0.0 && cfg.confidence < 1.0) {
        return Err(Error::Invalid(format!("bootstrap confidence must be in (0, 1), got {}", cfg.confidence)));
    }
    let n = d.len();
    let n32 = u32::try_from(n).map_err(|_| Error::Invalid(format!("bootstrap sample of {n} values is too large")))?;
    let estimate = mean(d);
    let mut rng = Pcg32::new(cfg.seed);
    let mut means = Vec::with_capacity(cfg.resamples);
    for _ in 0..cfg.resamples {
        let mut s = 0.0f64;
        for _ in 0..n {
            s += d[below(&mut rng, n32) as usize];
        }
        means.push(s / n as f64);
    }
    means.sort_by(f64::total_cmp);
    let alpha = 1.0 - cfg.confidence;
    Ok(BootstrapCi {
        estimate,
        lower: quantile_sorted(&means, alpha / 2.0),
        upper: quantile_sorted(&means, 1.0 - alpha / 2.0),
        confidence: cfg.confidence,
        resamples: cfg.resamples,
        seed: cfg.seed,
    })
}

/// One metric compared between model A and model B over the same domains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedComparison {
    /// The metric's name (free text, e.g. "mIoU" or "AUROC").
    pub metric: String,
    /// Number of pairs (domains).
    pub n: usize,
    pub mean_a: f64,
    pub mean_b: f64,
    /// Mean of `a - b`.
    pub mean_diff: f64,
    /// Wilcoxon signed-rank test of `a - b` (SciPy defaults).
    pub wilcoxon: WilcoxonResult,
    /// Percentile bootstrap CI of the mean of `a - b`.
    pub bootstrap: BootstrapCi,
}

/// Compare two models on one metric: `a[i]` and `b[i]` are their scores on domain `i`.
/// The differences are `a - b`; see [`wilcoxon`] and [`bootstrap_mean_ci`].
pub fn compare_paired(metric: &str, a: &[f64], b: &[f64], cfg: &BootstrapConfig) -> Result<PairedComparison> {
    let d = paired_diffs(a, b)?;
    Ok(PairedComparison {
        metric: metric.to_string(),
        n: d.len(),
        mean_a: mean(a),
        mean_b: mean(b),
        mean_diff: mean(&d),
        wilcoxon: wilcoxon_diffs(&d, false)?,
        bootstrap: bootstrap_mean_ci(&d, cfg)?,
    })
}

/// `a - b`, after checking lengths and values.
fn paired_diffs(a: &[f64], b: &[f64]) -> Result<Vec<f64>> {
    if a.len() != b.len() {
        return Err(Error::Invalid(format!("paired samples differ in length: {} and {}", a.len(), b.len())));
    }
    check_finite("first sample", a)?;
    check_finite("second sample", b)?;
    Ok(a.iter().zip(b).map(|(x, y)| x - y).collect())
}

fn check_finite(what: &str, v: &[f64]) -> Result<()> {
    if v.is_empty() {
        return Err(Error::Invalid(format!("{what} is empty")));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::Invalid(format!("{what} has a non-finite value ({}) at index {i}", v[i])));
    }
    Ok(())
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Uniform integer in `0..n` (`n >= 1`), unbiased (Lemire 2019, "Fast random integer
/// generation in an interval").
fn below(rng: &mut Pcg32, n: u32) -> u32 {
    let mut m = rng.next_u32() as u64 * n as u64;
    let mut low = m as u32;
    if low < n {
        let threshold = n.wrapping_neg() % n;
        while low < threshold {
            m = rng.next_u32() as u64 * n as u64;
            low = m as u32;
        }
    }
    (m >> 32) as u32
}

/// Quantile `q` in [0, 1] of sorted values, linear interpolation between order statistics
/// (NumPy's default "linear", Hyndman & Fan type 7).
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = h - lo as f64;
    if frac == 0.0 || sorted[hi] == sorted[lo] {
        sorted[lo]
    } else {
        sorted[lo] + frac * (sorted[hi] - sorted[lo])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_matches_reference_values() {
        // scipy.special.erfc
        let cases = [
            (0.0, 1.0),
            (0.1, 0.8875370839817152),
            (0.5, 0.4795001221869535),
            (0.99, 0.16149193044463017),
            (1.0, 0.15729920705028516),
            (1.5, 0.03389485352468927),
            (2.0, 0.004677734981047266),
            (3.0, 2.2090496998585445e-05),
            (5.0, 1.5374597944280347e-12),
            (10.0, 2.0884875837625446e-45),
            (26.0, 5.663192408856145e-296),
            (-1.0, 1.8427007929497148),
        ];
        for (x, want) in cases {
            let got = erfc(x);
            assert!(((got - want) / want).abs() < 1e-13, "erfc({x}) = {got}, want {want}");
        }
    }

    #[test]
    fn quantile_is_numpy_linear() {
        let v = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(quantile_sorted(&v, 0.0), 1.0);
        assert_eq!(quantile_sorted(&v, 1.0), 8.0);
        assert_eq!(quantile_sorted(&v, 0.5), 3.0);
        assert!((quantile_sorted(&v, 0.25) - 1.75).abs() < 1e-15);
    }

    #[test]
    fn below_is_in_range_and_covers() {
        let mut rng = Pcg32::new(3);
        let mut seen = [0usize; 7];
        for _ in 0..7000 {
            seen[below(&mut rng, 7) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800 && c < 1200), "{seen:?}");
    }

    #[test]
    fn pmf_sums_to_one_and_is_symmetric() {
        let p = signed_rank_pmf(12);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        for k in 0..p.len() {
            assert_eq!(p[k], p[p.len() - 1 - k]);
        }
    }
}
