//! LayerNorm over the channel (last) dimension with an optional activation
//! (`layernorm.wgsl`): Hiera's and the transformer's `nn.LayerNorm`, SAM's `LayerNorm2d` on
//! channels-last maps.
use super::matmul::Act;
use super::{f, u};
use crate::gpu::{Gpu, GBuf, Result};

pub const NAME: &str = "layernorm";
pub const SRC: &str = concat!(include_str!("common.wgsl"), include_str!("layernorm.wgsl"));

/// A LayerNorm's weight and bias (`c` values each) and epsilon.
#[derive(Clone, Copy)]
pub struct LayerNorm<'a> {
    pub w: &'a wgpu::Buffer,
    pub b: &'a wgpu::Buffer,
    pub eps: f32,
}

/// Normalises `rows x c` values of `x` into a new buffer.
pub fn layernorm(gpu: &Gpu, x: &wgpu::Buffer, rows: usize, c: usize, ln: LayerNorm, act: Act) -> Result<GBuf> {
    let y = gpu.alloc(rows * c)?;
    let params = [u(rows)?, u(c)?, f(ln.eps), act as u32];
    let (w, b) = (ln.w, ln.b);
    if gpu.is_cpu() {
        // One thread per row (64 rows per workgroup), folded into y past the limit.
        let groups = rows.div_ceil(64);
        let (gx, gy) = if groups <= 65535 { (groups, 1) } else { (65535, groups.div_ceil(65535)) };
        gpu.dispatch((NAME, "layernorm_rows"), &params, &[x, w, b, &y], (u(gx)?, u(gy)?, 1))?;
    } else {
        // One workgroup per row, folded into (x, y).
        let (gx, gy) = if rows <= 65535 { (rows, 1) } else { (65535, rows.div_ceil(65535)) };
        gpu.dispatch((NAME, "layernorm"), &params, &[x, w, b, &y], (u(gx)?, u(gy)?, 1))?;
    }
    Ok(y)
}
