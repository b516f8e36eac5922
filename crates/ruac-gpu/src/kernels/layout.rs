//! Data movement on channels-last maps (`layout.wgsl`): pooling, Hiera windows, FPN
//! top-down upsampling, bilinear resizing to the image size.
use super::u;
use crate::gpu::{groups_1d, Gpu, GBuf, Result};

pub const NAME: &str = "layout";
pub const SRC: &str = concat!(include_str!("common.wgsl"), include_str!("layout.wgsl"));

/// A batch of `b` channels-last `h x w x c` maps.
#[derive(Debug, Clone, Copy)]
pub struct Maps {
    pub b: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl Maps {
    /// One `h x w x c` map.
    pub fn one(h: usize, w: usize, c: usize) -> Self {
        Self { b: 1, h, w, c }
    }
}

/// The uniform block of the layout entry points: `n` threads over `m`, windows of `ws`
/// (`nh x nw` of them), input read at `in_off` with pixel stride `in_ps`.
#[derive(Default)]
struct Params {
    n: usize,
    ws: usize,
    nh: usize,
    nw: usize,
    in_off: usize,
    in_ps: usize,
}

impl Params {
    fn words(&self, m: Maps) -> Result<Vec<u32>> {
        let Maps { b, h, w, c } = m;
        Ok(vec![u(self.n)?, u(b)?, u(h)?, u(w)?, u(c)?, u(self.ws)?, u(self.nh)?, u(self.nw)?, u(self.in_off)?, u(self.in_ps)?, 0, 0, 0, 0, 0, 0])
    }
}

/// 2x2 max pooling of `m` read at `in_off` with pixel stride `in_ps`.
pub fn pool2x2(gpu: &Gpu, x: &wgpu::Buffer, in_off: usize, in_ps: usize, m: Maps) -> Result<GBuf> {
    let n = m.b * (m.h / 2) * (m.w / 2) * m.c;
    let y = gpu.alloc(n)?;
    gpu.dispatch((NAME, "pool2x2"), &Params { n, in_off, in_ps, ..Default::default() }.words(m)?, &[x, &y], groups_1d(n))?;
    Ok(y)
}

/// Window partition with zero padding; returns the windows and `(nh, nw)`.
pub fn win_part(gpu: &Gpu, x: &wgpu::Buffer, m: Maps, ws: usize) -> Result<(GBuf, usize, usize)> {
    let (nh, nw) = (m.h.div_ceil(ws), m.w.div_ceil(ws));
    let n = m.b * nh * nw * ws * ws * m.c;
    let y = gpu.alloc(n)?;
    gpu.dispatch((NAME, "win_part"), &Params { n, ws, nh, nw, ..Default::default() }.words(m)?, &[x, &y], groups_1d(n))?;
    Ok((y, nh, nw))
}

/// `y (m) += window_unpartition(windows)` (windows of size `ws` on the padded grid).
pub fn win_unpart_add(gpu: &Gpu, windows: &wgpu::Buffer, y: &wgpu::Buffer, m: Maps, ws: usize) -> Result<()> {
    let (nh, nw) = (m.h.div_ceil(ws), m.w.div_ceil(ws));
    let n = m.b * m.h * m.w * m.c;
    gpu.dispatch((NAME, "win_unpart_add"), &Params { n, ws, nh, nw, ..Default::default() }.words(m)?, &[windows, y], groups_1d(n))
}

/// `y (h, w, c) += nearest_upsample_2x(x (h/2, w/2, c))`.
pub fn up_nearest_add(gpu: &Gpu, x: &wgpu::Buffer, y: &wgpu::Buffer, h: usize, w: usize, c: usize) -> Result<()> {
    let n = h * w * c;
    gpu.dispatch((NAME, "up_nearest_add"), &Params { n, ..Default::default() }.words(Maps::one(h, w, c))?, &[x, y], groups_1d(n))
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

/// A bilinear resize of `ih` rows of a plane read at `in_off` of `x` with row stride `iw`
/// (the columns the taps reach) to an `oh x ow` image; `taps` holds `bilinear_taps(ih, oh)`
/// followed by `bilinear_taps(iw, ow)`.
#[derive(Clone, Copy)]
pub struct Bilinear<'a> {
    pub x: &'a wgpu::Buffer,
    pub in_off: usize,
    pub ih: usize,
    pub iw: usize,
    pub taps: &'a wgpu::Buffer,
    pub oh: usize,
    pub ow: usize,
}

/// Output rows `rows` of the resize into a new buffer.
pub fn bilinear(gpu: &Gpu, r: &Bilinear, rows: std::ops::Range<usize>) -> Result<GBuf> {
    let y = gpu.alloc(rows.len() * r.ow)?;
    bilinear_into(gpu, r, rows, &y, 0)?;
    Ok(y)
}

/// [`bilinear`] written into `y` from value `y_off`.
pub fn bilinear_into(gpu: &Gpu, r: &Bilinear, rows: std::ops::Range<usize>, y: &wgpu::Buffer, y_off: usize) -> Result<()> {
    let Bilinear { x, in_off, ih, iw, taps: tab, oh, ow } = *r;
    let (row0, rows) = (rows.start, rows.len());
    let n = rows * ow;
    let p = vec![u(n)?, 1, 0, u(ow)?, 1, 0, 0, 0, u(in_off)?, 0, u(row0)?, u(oh * 3)?, u(ih)?, u(iw)?, u(y_off)?, 0];
    gpu.dispatch((NAME, "bilinear"), &p, &[x, y, tab], groups_1d(n))
}
