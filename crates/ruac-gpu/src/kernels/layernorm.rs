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
    // One workgroup per row: fold rows into (x, y) like the 1-D kernels, with 1 thread each.
    let (gx, gy) = if rows <= 65535 { (rows, 1) } else { (65535, rows.div_ceil(65535)) };
    gpu.dispatch((NAME, "layernorm"), &[u(rows)?, u(c)?, f(eps), act as u32], &[x, w, b, &y], (u(gx)?, u(gy)?, 1))?;
    Ok(y)
}
