//! Prompt encoder kernels (`prompt.wgsl`): Fourier features of points and of the dense grid.
use super::{f, u};
use crate::gpu::{groups_1d, Gpu, GBuf, Result};

pub const NAME: &str = "prompt";
pub const SRC: &str = concat!(include_str!("common.wgsl"), include_str!("prompt.wgsl"));

/// The prompt encoder's point weights: the random Fourier matrix (`pe_layer`) and the label
/// embeddings (`point_embeddings` 0..4, then `not_a_point_embed`), `d` wide, for an
/// `image_size` square input.
pub struct PointEncoder<'a> {
    pub gauss: &'a wgpu::Buffer,
    pub emb: &'a wgpu::Buffer,
    pub d: usize,
    pub image_size: usize,
}

/// Sparse embeddings `n x d` of points given in input-image pixels already shifted by 0.5
/// (`coords` `n x 2`, `labels` as f32, -1 for padding).
pub fn points(gpu: &Gpu, enc: &PointEncoder, coords: &wgpu::Buffer, labels: &wgpu::Buffer, n: usize) -> Result<GBuf> {
    let (gauss, emb, d) = (enc.gauss, enc.emb, enc.d);
    let out = gpu.alloc(n * d)?;
    let inv = 1.0 / enc.image_size as f32;
    let p = [u(n)?, u(d)?, f(inv), f(inv), 0, 0, 0, 0];
    gpu.dispatch((NAME, "points"), &p, &[gauss, &out, coords, labels, emb], groups_1d(n * d))?;
    Ok(out)
}

/// `get_dense_pe` as `h*w x d` (token-major).
pub fn grid(gpu: &Gpu, gauss: &wgpu::Buffer, h: usize, w: usize, d: usize) -> Result<GBuf> {
    let out = gpu.alloc(h * w * d)?;
    let p = [0, u(d)?, f((1.0 / w as f64) as f32), f((1.0 / h as f64) as f32), u(h)?, u(w)?, 0, 0];
    gpu.dispatch((NAME, "grid"), &p, &[gauss, &out], groups_1d(h * w * d))?;
    Ok(out)
}
