//! RUAC's Bayesian pixel head on the GPU (`bayes.wgsl`), mirroring
//! `ruac_core::model::bayes_head::BayesianPixelHead`: Weibull parameters, mean logits,
//! analytic and Monte Carlo uncertainty. The Monte Carlo draws are the CPU's: the same
//! `Pcg32` stream, each thread jumping to its position (`pcg_at`).
use super::{f, u};
use crate::gpu::{groups_1d, Gpu, GBuf, Result};
use crate::error::GpuError;

pub const NAME: &str = "bayes";
pub const SRC: &str = concat!(include_str!("common.wgsl"), include_str!("bayes.wgsl"));

pub use ruac_core::rng::{initial_state as pcg_initial_state, jump_table as pcg_jump_table, INC as PCG_INC};

/// The head's sizes: `hw` pixels, `c` channels, `k` mask tokens.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeadShape {
    pub hw: usize,
    pub c: usize,
    pub k: usize,
}

/// The uniform block every `bayes.wgsl` entry point reads.
#[derive(Default)]
struct Params {
    shape: HeadShape,
    samples: usize,
    seed: u64,
    /// `factor_w`, the global factor's threshold.
    factor_w: f32,
    /// Divisor of the entropy.
    div: f32,
    /// Values of the element-wise entry points.
    n: usize,
}

impl Params {
    fn words(&self) -> Result<[u32; 16]> {
        let HeadShape { hw, c, k } = self.shape;
        let st = pcg_initial_state(self.seed);
        Ok([
            u(hw)?, u(c)?, u(k)?, u(self.samples)?,
            u(hw * c)?, u(2 * k * c)?, st as u32, (st >> 32) as u32,
            PCG_INC as u32, (PCG_INC >> 32) as u32, f(self.factor_w), f(self.div),
            u(self.n)?, 0, 0, 0,
        ])
    }
}

/// Per-pixel Weibull quantities of the local factor.
pub struct Local {
    pub lambda: GBuf,
    pub inv_k: GBuf,
    pub mean: GBuf,
    pub var: GBuf,
}

/// From `a = relu(linear_add x)` (`hw x c`); `small` holds the head's small tensors packed
/// as `[w_k (c), b_k, w_kw0, w_kw1, b_kw, b_bg, b_fg]`.
pub fn local(gpu: &Gpu, a: &wgpu::Buffer, small: &wgpu::Buffer, hw: usize, c: usize) -> Result<Local> {
    let l = Local { lambda: gpu.alloc(hw * c)?, inv_k: gpu.alloc(hw)?, mean: gpu.alloc(hw * c)?, var: gpu.alloc(hw * c)? };
    let p = Params { shape: HeadShape { hw, c, k: 0 }, div: 1.0, ..Default::default() }.words()?;
    gpu.dispatch_at((NAME, "local_z"), &p, &[(1, a), (2, small), (3, &l.lambda), (4, &l.inv_k), (5, &l.mean), (6, &l.var)], groups_1d(hw))?;
    Ok(l)
}

/// Per-token Weibull quantities of the global factor at threshold `fw`.
pub struct Global {
    pub lambda: GBuf,
    pub inv_k: GBuf,
    /// `E w_fg − E w_bg`, `k x c`.
    pub diff: GBuf,
    /// Class-mean variance, clamped at 1e-8, `k x c`.
    pub var: GBuf,
    /// `relu(b_fg − fw) − relu(b_bg − fw)` repeated per token, `k`.
    pub bias: GBuf,
}

/// From `linear_add_w(tokens)` (`k x 2c`, before the ReLU); `small` as for [`local`].
pub fn global(gpu: &Gpu, token_params: &wgpu::Buffer, small: &wgpu::Buffer, k: usize, c: usize, fw: f32) -> Result<Global> {
    let g = Global { lambda: gpu.alloc(2 * k * c)?, inv_k: gpu.alloc(k * c)?, diff: gpu.alloc(k * c)?, var: gpu.alloc(k * c)?, bias: gpu.alloc(k)? };
    let p = Params { shape: HeadShape { hw: 0, c, k }, factor_w: fw, div: 1.0, ..Default::default() }.words()?;
    let b = [(2, small), (7, token_params), (8, &*g.lambda), (9, &*g.inv_k), (10, &*g.diff), (11, &*g.var), (12, &*g.bias)];
    gpu.dispatch_at((NAME, "global_w"), &p, &b, groups_1d(k * c))?;
    Ok(g)
}

/// Monte Carlo uncertainty (nats), `k x hw`, with `samples` draws from `Pcg32::new(seed)`
/// in the CPU's order (per sample: `hw*c` pixel uniforms, then `k*2*c` token uniforms).
pub fn mc_uncertainty(gpu: &Gpu, l: &Local, g: &Global, jump: &wgpu::Buffer, shape: HeadShape, samples: usize, seed: u64) -> Result<GBuf> {
    let HeadShape { hw, c, k } = shape;
    if k > 8 {
        return Err(GpuError::Unsupported(format!("{k} mask tokens (the Monte Carlo kernel holds at most 8)")));
    }
    let total = samples as u128 * (hw * c + 2 * k * c) as u128;
    if total > u32::MAX as u128 {
        return Err(GpuError::Unsupported(format!("{samples} Monte Carlo samples of {hw}x{c} draws exceed the 2^32 positions the GPU stream addresses")));
    }
    let wd = gpu.alloc(samples * k * c)?;
    let p = Params { shape, samples, seed, div: 1.0, ..Default::default() }.words()?;
    gpu.dispatch_at((NAME, "mc_weights"), &p, &[(8, &g.lambda), (9, &g.inv_k), (13, jump), (14, &wd)], groups_1d(samples * k * c))?;
    let out = gpu.alloc(k * hw)?;
    let b = [(3, &*l.lambda), (4, &*l.inv_k), (12, &*g.bias), (13, jump), (14, &*wd), (15, &*out)];
    gpu.dispatch_at((NAME, "mc_pixel"), &p, &b, groups_1d(hw))?;
    Ok(out)
}

/// Analytic uncertainty in `[0, 1]` from the mean logits `mu` and logit variances `v`
/// (`n` values each).
pub fn analytic(gpu: &Gpu, mu: &wgpu::Buffer, v: &wgpu::Buffer, n: usize) -> Result<GBuf> {
    let out = gpu.alloc(n)?;
    let p = Params { div: 1.0, n, ..Default::default() }.words()?;
    gpu.dispatch_at((NAME, "analytic"), &p, &[(15, &out), (16, mu), (17, v)], groups_1d(n))?;
    Ok(out)
}

/// Binary entropy of `sigmoid(logits)` divided by `div` (plain SAM 2.1's map).
pub fn entropy(gpu: &Gpu, logits: &wgpu::Buffer, n: usize, div: f32) -> Result<GBuf> {
    let out = gpu.alloc(n)?;
    let p = Params { div, n, ..Default::default() }.words()?;
    gpu.dispatch_at((NAME, "entropy"), &p, &[(15, &out), (16, logits)], groups_1d(n))?;
    Ok(out)
}
