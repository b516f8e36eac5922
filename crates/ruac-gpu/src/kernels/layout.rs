//! Data movement on channels-last maps (`layout.wgsl`): pooling, Hiera windows, FPN
//! top-down upsampling, bilinear resizing to the image size.
use super::u;
use crate::gpu::{groups_1d, Gpu, GBuf, Result};

pub const NAME: &str = "layout";
pub const SRC: &str = concat!(include_str!("common.wgsl"), include_str!("layout.wgsl"));

#[allow(clippy::too_many_arguments)]
fn params(n: usize, b: usize, h: usize, w: usize, c: usize, ws: usize, nh: usize, nw: usize, in_off: usize, in_ps: usize) -> Result<Vec<u32>> {
    Ok(vec![u(n)?, u(b)?, u(h)?, u(w)?, u(c)?, u(ws)?, u(nh)?, u(nw)?, u(in_off)?, u(in_ps)?, 0, 0, 0, 0, 0, 0])
}

/// 2x2 max pooling of `b, h, w, c` values read at `in_off` with pixel stride `in_ps`.
#[allow(clippy::too_many_arguments)]
pub fn pool2x2(gpu: &Gpu, x: &wgpu::Buffer, in_off: usize, in_ps: usize, b: usize, h: usize, w: usize, c: usize) -> Result<GBuf> {
    let n = b * (h / 2) * (w / 2) * c;
    let y = gpu.alloc(n)?;
    gpu.dispatch((NAME, "pool2x2"), &params(n, b, h, w, c, 0, 0, 0, in_off, in_ps)?, &[x, &y], groups_1d(n))?;
    Ok(y)
}

/// Window partition with zero padding; returns the windows and `(nh, nw)`.
pub fn win_part(gpu: &Gpu, x: &wgpu::Buffer, b: usize, h: usize, w: usize, c: usize, ws: usize) -> Result<(GBuf, usize, usize)> {
    let (nh, nw) = (h.div_ceil(ws), w.div_ceil(ws));
    let n = b * nh * nw * ws * ws * c;
    let y = gpu.alloc(n)?;
    gpu.dispatch((NAME, "win_part"), &params(n, b, h, w, c, ws, nh, nw, 0, 0)?, &[x, &y], groups_1d(n))?;
    Ok((y, nh, nw))
}

/// `y (b, h, w, c) += window_unpartition(windows)` (windows of size `ws` on the padded grid).
#[allow(clippy::too_many_arguments)]
pub fn win_unpart_add(gpu: &Gpu, windows: &wgpu::Buffer, y: &wgpu::Buffer, b: usize, h: usize, w: usize, c: usize, ws: usize) -> Result<()> {
    let (nh, nw) = (h.div_ceil(ws), w.div_ceil(ws));
    let n = b * h * w * c;
    gpu.dispatch((NAME, "win_unpart_add"), &params(n, b, h, w, c, ws, nh, nw, 0, 0)?, &[windows, y], groups_1d(n))
}

/// `y (h, w, c) += nearest_upsample_2x(x (h/2, w/2, c))`.
pub fn up_nearest_add(gpu: &Gpu, x: &wgpu::Buffer, y: &wgpu::Buffer, h: usize, w: usize, c: usize) -> Result<()> {
    let n = h * w * c;
    gpu.dispatch((NAME, "up_nearest_add"), &params(n, 1, h, w, c, 0, 0, 0, 0, 0)?, &[x, y], groups_1d(n))
}

/// Source taps `(i0, i1, weight)` of PyTorch's bilinear interpolation (align_corners =
/// false, no scale factor), computed in f64 as candle's CPU kernel does.
pub fn bilinear_taps(in_size: usize, out_size: usize) -> Vec<f32> {
    let scale = in_size as f64 / out_size as f64;
    let mut t = Vec::with_capacity(out_size * 3);
    for o in 0..out_size {
        let src = (scale * (o as f64 + 0.5) - 0.5).max(0.0);
        let i0 = src.floor() as usize;
        let i1 = (i0 + 1).min(in_size - 1);
        let wgt = (src - i0 as f64).clamp(0.0, 1.0);
        t.extend([i0 as f32, i1 as f32, wgt as f32]);
    }
    t
}

/// Bilinear resize of the `ih x iw` plane at `in_off` of `x` to output rows
/// `row0..row0 + rows` of an `oh x ow` image; `tab` holds `bilinear_taps(ih, oh)` followed
/// by `bilinear_taps(iw, ow)`.
#[allow(clippy::too_many_arguments)]
pub fn bilinear(gpu: &Gpu, x: &wgpu::Buffer, in_off: usize, ih: usize, iw: usize, tab: &wgpu::Buffer, oh: usize, ow: usize, row0: usize, rows: usize) -> Result<GBuf> {
    let y = gpu.alloc(rows * ow)?;
    bilinear_into(gpu, x, in_off, ih, iw, tab, oh, ow, row0, rows, &y, 0)?;
    Ok(y)
}

/// [`bilinear`] written into `y` from value `y_off`.
#[allow(clippy::too_many_arguments)]
pub fn bilinear_into(gpu: &Gpu, x: &wgpu::Buffer, in_off: usize, ih: usize, iw: usize, tab: &wgpu::Buffer, oh: usize, ow: usize, row0: usize, rows: usize, y: &wgpu::Buffer, y_off: usize) -> Result<()> {
    let n = rows * ow;
    let p = vec![u(n)?, 1, 0, u(ow)?, 1, 0, 0, 0, u(in_off)?, 0, u(row0)?, u(oh * 3)?, u(ih)?, u(iw)?, u(y_off)?, 0];
    gpu.dispatch((NAME, "bilinear"), &p, &[x, y, tab], groups_1d(n))
}
