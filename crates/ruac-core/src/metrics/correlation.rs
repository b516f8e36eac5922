//! Pearson and Spearman correlation (as `scipy.stats.pearsonr` / `spearmanr`).
//!
//! The per-pixel variants (uncertainty against the error of each pixel) are computed by
//! [`super::object::evaluate_object`]; the per-image variant (over objects) is left to the
//! caller, who passes plain slices here.

/// Pearson's r. `None` when the lengths differ, there are fewer than two values, a value is
/// not finite, or either input is constant (r is undefined; SciPy returns NaN).
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    pearson_by(x.len(), |i| x[i], |i| y[i])
}

/// Spearman's ρ: Pearson's r of the average ranks (ties share the mean of their positions,
/// as `scipy.stats.rankdata(method="average")`). `None` in the same cases as [`pearson`].
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let (rx, ry) = (average_ranks(x), average_ranks(y));
    pearson_by(x.len(), |i| rx[i], |i| ry[i])
}

/// 1-based average ranks of `x` (ties get the mean of their positions), as
/// `scipy.stats.rankdata`. Meant for finite values (NaNs are placed by `f64::total_cmp`).
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    // adding 0.0 turns -0 into +0, so that total_cmp ties exactly the equal values
    order.sort_by(|&a, &b| (x[a] + 0.0).total_cmp(&(x[b] + 0.0)));
    let same = |a: usize, b: usize| (x[a] + 0.0).total_cmp(&(x[b] + 0.0)).is_eq();
    let mut ranks = vec![0.0; x.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && same(order[end], order[start]) {
            end += 1;
        }
        let r = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = r;
        }
        start = end;
    }
    ranks
}

/// Pearson's r of `x(i)`, `y(i)` for i in 0..n (two passes: means, then centred sums).
/// `None` for n < 2 or an exactly constant input.
pub(crate) fn pearson_by(n: usize, x: impl Fn(usize) -> f64, y: impl Fn(usize) -> f64) -> Option<f64> {
    if n < 2 {
        return None;
    }
    let (x0, y0) = (x(0), y(0));
    let (mut x_const, mut y_const) = (true, true);
    let (mut sx, mut sy) = (0.0f64, 0.0f64);
    for i in 0..n {
        let (a, b) = (x(i), y(i));
        x_const &= a == x0;
        y_const &= b == y0;
        sx += a;
        sy += b;
    }
    if x_const || y_const {
        return None;
    }
    let (mx, my) = (sx / n as f64, sy / n as f64);
    let (mut sxx, mut syy, mut sxy) = (0.0f64, 0.0f64, 0.0f64);
    for i in 0..n {
        let (a, b) = (x(i) - mx, y(i) - my);
        sxx += a * a;
        syy += b * b;
        sxy += a * b;
    }
    let denom = sxx.sqrt() * syy.sqrt();
    if denom == 0.0 || !denom.is_finite() {
        return None;
    }
    Some((sxy / denom).clamp(-1.0, 1.0))
}
