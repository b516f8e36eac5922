//! Inferno colormap to RGBA8 (`colormap.wgsl`), the same table and rounding as
//! `ruac_core::viz::colorize`.
use super::{f, u};
use crate::gpu::{groups_1d, Gpu, GBuf, Result};

pub const NAME: &str = "colormap";
pub const SRC: &str = concat!(include_str!("common.wgsl"), include_str!("colormap.wgsl"));

/// The 256 inferno colours packed as little-endian RGBA (alpha 255), read from
/// `ruac_core::viz::inferno` (entry `i` is the colour of `t = i / 255`).
pub fn lut() -> Vec<u32> {
    (0..256)
        .map(|i| {
            let [r, g, b] = ruac_core::viz::inferno(i as f32 / 255.0);
            u32::from_le_bytes([r, g, b, 255])
        })
        .collect()
}

/// Colours `n` values of `vals` in `[0, vmax]`; one packed RGBA u32 per value.
pub fn colormap(gpu: &Gpu, vals: &wgpu::Buffer, n: usize, vmax: f32, lut: &wgpu::Buffer) -> Result<GBuf> {
    let out = gpu.alloc(n)?;
    let inv = if vmax > 0.0 { 1.0 / vmax } else { 0.0 };
    gpu.dispatch((NAME, "colormap"), &[u(n)?, f(inv), 0, 0], &[vals, lut, &out], groups_1d(n))?;
    Ok(out)
}
