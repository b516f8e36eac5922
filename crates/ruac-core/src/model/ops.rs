//! Element-wise functions candle does not have, written with candle primitives so that they
//! run on every device and carry gradients.
use candle_core::{Result, Tensor};

/// `ln Γ(x)` for `x > 0`: shift the argument by 6 (`Γ(x) = Γ(x+6) / (x(x+1)…(x+5))`) and use
/// Stirling's series at `x + 6 ≥ 6`, whose truncation error there is below 1e-9.
pub fn lgamma(x: &Tensor) -> Result<Tensor> {
    let mut prod = x.clone();
    for k in 1..6 {
        prod = (prod * (x + k as f64)?)?;
    }
    let z = (x + 6.0)?;
    let zr = z.recip()?;
    let zr2 = zr.sqr()?;
    // 1/(12z) - 1/(360z^3) + 1/(1260z^5) - 1/(1680z^7)
    let series = (&zr * ((&zr2 * ((&zr2 * ((&zr2 * (-1.0 / 1680.0))? + 1.0 / 1260.0)?)? - 1.0 / 360.0)?)? + 1.0 / 12.0)?)?;
    let half_ln_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    let stirling = (((&z - 0.5)? * z.log()?)? - &z)? + half_ln_2pi;
    (stirling? + series)? - prod.log()?
}

/// `softplus(x) = ln(1 + eˣ)` in its overflow-free form `max(x, 0) + ln(1 + e^{-|x|})`.
/// Matches PyTorch's `nn.Softplus()` (threshold 20) to within 3e-9.
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    let e = x.abs()?.neg()?.exp()?;
    x.relu()? + (e + 1.0)?.log()?
}

/// Binary (Bernoulli) entropy in nats, `-p ln p - (1-p) ln(1-p)`, with `p` clamped to
/// `[eps, 1-eps]` first (the reference clamps at 1e-4).
pub fn binary_entropy(p: &Tensor, eps: f64) -> Result<Tensor> {
    let p = p.clamp(eps, 1.0 - eps)?;
    let q = p.affine(-1.0, 1.0)?;
    ((&p * p.log()?)? + (&q * q.log()?)?)?.neg()
}
