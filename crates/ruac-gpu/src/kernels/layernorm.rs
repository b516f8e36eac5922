//! LayerNorm over the channel (last) dimension with an optional activation
//! (`layernorm.wgsl`): Hiera's and the transformer's `nn.LayerNorm`, SAM's `LayerNorm2d` on
//! channels-last maps.
use super::matmul::Act;
use super::{f, u};
use crate::gpu::{Gpu, GBuf, Result};

pub const NAME: &str = "layernorm";
pub const SRC: &str = concat!(include_str!("common.wgsl"), include_str!("layernorm.wgsl"));

/// Normalises `rows x c` values of `x` into a new buffer.
#[allow(clippy::too_many_arguments)]
pub fn layernorm(gpu: &Gpu, x: &wgpu::Buffer, rows: usize, c: usize, w: &wgpu::Buffer, b: &wgpu::Buffer, eps: f32, act: Act) -> Result<GBuf> {
    let y = gpu.alloc(rows * c)?;
    let params = [u(rows)?, u(c)?, f(eps), act as u32];
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
