//! Gradient-reversal layer (Ganin & Lempitsky 2015), placed at the attackers' outputs
//! (paper §3.3; `ruac/core/attackers/*.py`): identity forward, negated gradient backward, so
//! one backward pass of one loss lowers it for the model and raises it for the attackers.
use candle_core::{Result, Tensor};

/// `y = x` forward; `∂L/∂x = −∂L/∂y` backward. Built from differentiable primitives:
/// `y = −x + sg[2x]`, whose value is `x` and whose derivative is `−1`.
pub fn grad_reverse(x: &Tensor) -> Result<Tensor> {
    x.neg()? + (x * 2.0)?.detach()
}
