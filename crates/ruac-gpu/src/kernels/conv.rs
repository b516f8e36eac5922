//! Direct convolutions on channels-last maps (`conv.wgsl`).
use super::matmul::Act;
use super::u;
use crate::gpu::{groups_1d, Gpu, GBuf, Result};

pub const NAME: &str = "conv";
pub const SRC: &str = concat!(include_str!("common.wgsl"), include_str!("conv.wgsl"));

/// `nn.Conv2d` weights (`cout, cin, kh, kw`) and bias, and the geometry.
pub struct Conv2d<'a> {
    pub w: &'a wgpu::Buffer,
    pub b: &'a wgpu::Buffer,
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

/// Output `(oh, ow, cout)` channels-last for an `ih x iw x cin` input.
pub fn conv2d(gpu: &Gpu, x: &wgpu::Buffer, ih: usize, iw: usize, c: &Conv2d, act: Act) -> Result<(GBuf, usize, usize)> {
    let oh = (ih + 2 * c.pad - c.k) / c.stride + 1;
    let ow = (iw + 2 * c.pad - c.k) / c.stride + 1;
    let y = gpu.alloc(oh * ow * c.cout)?;
    let params = [u(ih)?, u(iw)?, u(c.cin)?, u(oh)?, u(ow)?, u(c.cout)?, u(c.k)?, u(c.k)?, u(c.stride)?, u(c.pad)?, act as u32, 0];
    gpu.dispatch((NAME, "conv2d"), &params, &[x, c.w, c.b, &y], groups_1d(oh * ow * c.cout))?;
    Ok((y, oh, ow))
}

/// `nn.ConvTranspose2d(cin, cout, 2, stride 2)` (`c.w`: `cin, cout, 2, 2`; `c.k`, `c.stride`
/// and `c.pad` are not read) of an `h x w x cin` map, plus `skip` (`2h x 2w x cout`) when
/// given, then the activation.
pub fn conv_t2x2(gpu: &Gpu, x: &wgpu::Buffer, (h, w): (usize, usize), c: &Conv2d, skip: Option<&wgpu::Buffer>, act: Act) -> Result<GBuf> {
    let (cin, cout, wt, b) = (c.cin, c.cout, c.w, c.b);
    let y = gpu.alloc(4 * h * w * cout)?;
    let params = [u(h)?, u(w)?, u(cin)?, u(2 * h)?, u(2 * w)?, u(cout)?, 2, 2, 2, 0, act as u32, skip.is_some() as u32];
    gpu.dispatch((NAME, "conv_t2x2"), &params, &[x, wt, b, &y, skip.unwrap_or(&gpu.dummy)], groups_1d(4 * h * w * cout))?;
    Ok(y)
}

/// Depthwise `nn.Conv2d` (groups = channels = `c.cin = c.cout`, weight `c, 1, k, k`) of a
/// channels-last map; output `(oh, ow, c)`.
pub fn dwconv(gpu: &Gpu, x: &wgpu::Buffer, ih: usize, iw: usize, c: &Conv2d, act: Act) -> Result<(GBuf, usize, usize)> {
    let oh = (ih + 2 * c.pad - c.k) / c.stride + 1;
    let ow = (iw + 2 * c.pad - c.k) / c.stride + 1;
    let y = gpu.alloc(oh * ow * c.cout)?;
    let params = [u(ih)?, u(iw)?, u(c.cin)?, u(oh)?, u(ow)?, u(c.cout)?, u(c.k)?, u(c.k)?, u(c.stride)?, u(c.pad)?, act as u32, 0];
    gpu.dispatch((NAME, "dwconv"), &params, &[x, c.w, c.b, &y], groups_1d(oh * ow * c.cout))?;
    Ok((y, oh, ow))
}

/// A `k x k` convolution's geometry over `cin` channels.
#[derive(Debug, Clone, Copy)]
pub struct Patches {
    pub cin: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

/// The patches of a `k x k` convolution (stride, zero padding) of an `ih x iw x cin` map as
/// `oh*ow` rows of `k*k*cin` values (`(ky, kx, ci)` order); returns `(rows, oh, ow)`.
pub fn im2col(gpu: &Gpu, x: &wgpu::Buffer, ih: usize, iw: usize, geom: Patches) -> Result<(GBuf, usize, usize)> {
    let Patches { cin, k, stride, pad } = geom;
    let oh = (ih + 2 * pad - k) / stride + 1;
    let ow = (iw + 2 * pad - k) / stride + 1;
    let n = oh * ow * k * k * cin;
    let y = gpu.alloc(n)?;
    let params = [u(ih)?, u(iw)?, u(cin)?, u(oh)?, u(ow)?, 0, u(k)?, u(k)?, u(stride)?, u(pad)?, 0, 0];
    gpu.dispatch_at((NAME, "im2col"), &params, &[(1, x), (4, &y)], groups_1d(n))?;
    Ok((y, oh, ow))
}
