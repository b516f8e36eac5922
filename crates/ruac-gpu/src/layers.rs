//! The GPU forms of the layers every model part uses (`nn.Linear`, `nn.LayerNorm`,
//! convolutions as matrix products), as ruac-core's `model::common` holds them for candle.
//! Activations are channels-last (`H*W x C`), so a 1x1 convolution is a [`Lin`] and
//! `LayerNorm2d` a plain [`Norm`].
use std::fmt::Display;

use crate::error::GpuError;
use crate::gpu::{GBuf, Gpu, Result};
use crate::kernels::conv::{dwconv, im2col, Conv2d, Patches};
use crate::kernels::eltwise::add_bcast;
use crate::kernels::layernorm::{layernorm, LayerNorm};
use crate::kernels::matmul::{matmul, Act, Bias, Matmul, View};
use crate::loader::Weights;

/// `nn.Linear` with the weight stored transposed (`in x out`, contiguous columns for the
/// matmul's B tiles).
pub struct Lin {
    pub wt: wgpu::Buffer,
    /// `wt` holds f16 values (`Gpu::f16_weights` at upload).
    pub wt_f16: bool,
    pub b: wgpu::Buffer,
    pub din: usize,
    pub dout: usize,
}

/// Where a layer writes: a buffer from value `off`, overwriting or adding (residuals).
#[derive(Clone, Copy)]
pub struct Out<'a> {
    pub buf: &'a wgpu::Buffer,
    pub off: usize,
    pub add: bool,
}

impl<'a> Out<'a> {
    /// Overwrites `buf` from its start.
    pub fn to(buf: &'a wgpu::Buffer) -> Self {
        Self { buf, off: 0, add: false }
    }
    /// Adds to `buf` from its start.
    pub fn add_to(buf: &'a wgpu::Buffer) -> Self {
        Self { buf, off: 0, add: true }
    }
}

impl Lin {
    /// `x (rows x din) @ W + b`, activation, into a new buffer.
    pub fn forward(&self, gpu: &Gpu, x: &wgpu::Buffer, rows: usize, act: Act) -> Result<GBuf> {
        self.forward_at(gpu, (x, 0), rows, act)
    }

    /// [`Lin::forward`] of the rows that start at value `off` of `x`.
    pub fn forward_at(&self, gpu: &Gpu, (x, off): (&wgpu::Buffer, usize), rows: usize, act: Act) -> Result<GBuf> {
        let y = gpu.alloc(rows * self.dout)?;
        self.forward_into(gpu, (x, off), rows, act, Out::to(&y))?;
        Ok(y)
    }

    /// [`Lin::forward_at`] into `y`.
    pub fn forward_into(&self, gpu: &Gpu, (x, off): (&wgpu::Buffer, usize), rows: usize, act: Act, y: Out) -> Result<()> {
        let (din, dout) = (self.din, self.dout);
        let mut mm = Matmul::new(rows, dout, din, View::rows(x, off, din), View::rows(&self.wt, 0, dout).half(self.wt_f16), View::rows(y.buf, y.off, dout));
        mm.bias = Bias::Cols(&self.b, 0);
        mm.act = act;
        mm.accumulate = y.add;
        matmul(gpu, &mm)
    }
}

/// `nn.LayerNorm` over `c` channels (and `LayerNorm2d` on channels-last maps).
pub struct Norm {
    pub w: wgpu::Buffer,
    pub b: wgpu::Buffer,
    pub c: usize,
    pub eps: f32,
}

impl Norm {
    /// Normalises `rows x c` values of `x` into a new buffer, then the activation.
    pub fn forward(&self, gpu: &Gpu, x: &wgpu::Buffer, rows: usize, act: Act) -> Result<GBuf> {
        layernorm(gpu, x, rows, self.c, LayerNorm { w: &self.w, b: &self.b, eps: self.eps }, act)
    }
}

/// The layer constructors of a scope, as candle's `linear(.., vb.pp(name))`.
impl Weights<'_> {
    /// The linear layer (or 1x1 convolution) `name`: `name.weight`, `name.bias`.
    pub fn lin(&self, name: impl Display) -> Result<Lin> {
        let s = self.pp(name);
        let (w, dims) = s.host("weight")?;
        let (dout, din) = (dims[0], dims[1..].iter().product::<usize>());
        let b = s.host("bias")?.0;
        s.lin_from(&w, (dout, din), &b)
    }

    /// A linear layer of this scope from host values: `w` is `dout x din` (PyTorch's
    /// layout), `b` has `dout` values. The weight is uploaded transposed, as f16 when the
    /// device stores weights so.
    pub fn lin_from(&self, w: &[f32], (dout, din): (usize, usize), b: &[f32]) -> Result<Lin> {
        let name = self.prefix();
        if w.len() != dout * din || b.len() != dout {
            return Err(GpuError::Internal(format!("{name}: {} weights, {} biases for {dout} x {din}", w.len(), b.len())));
        }
        let mut wt = vec![0f32; w.len()];
        for o in 0..dout {
            for i in 0..din {
                wt[i * dout + o] = w[o * din + i];
            }
        }
        let gpu = self.gpu();
        // The linear layers hold almost all of the weights (the rest are norms, biases and a
        // few small convolutions), so they alone are stored as f16 when asked.
        let (wt, wt_f16) = if gpu.f16_weights() {
            let h: Vec<u16> = wt.iter().map(|&x| half::f16::from_f32(x).to_bits()).collect();
            self.record_f16();
            (gpu.upload(name, &h), true)
        } else {
            (gpu.upload(name, &wt), false)
        };
        Ok(Lin { wt, wt_f16, b: gpu.upload(&self.path("bias"), b), din, dout })
    }

    /// The LayerNorm `name` (`name.weight`, `name.bias`) with its epsilon.
    pub fn norm(&self, name: impl Display, eps: f32) -> Result<Norm> {
        let s = self.pp(name);
        let (w, dims) = s.host("weight")?;
        let gpu = self.gpu();
        Ok(Norm { w: gpu.upload(&s.path("weight"), &w), b: s.buf("bias")?, c: dims[0], eps })
    }
}

/// `a + b` (`n` values each) into a new buffer.
pub fn add_new(gpu: &Gpu, a: &wgpu::Buffer, b: &wgpu::Buffer, n: usize) -> Result<GBuf> {
    let y = gpu.alloc(n)?;
    gpu.copy(a, 0, &y, 0, n);
    add_bcast(gpu, &y, 0, n, b, 0, n)?;
    Ok(y)
}

/// A convolution as a matrix product: 1x1 (stride 1) directly, larger kernels over the
/// patches (`im2col`). The weight is stored as a [`Lin`] over `(ky, kx, ci)` columns.
pub struct ConvMm {
    pub lin: Lin,
    geom: Patches,
}

impl ConvMm {
    /// From a PyTorch `cout, cin, k, k` weight and a bias, in the scope `w`.
    pub fn new(w: &Weights, (weight, dims): (&[f32], &[usize]), bias: &[f32], (stride, pad): (usize, usize)) -> Result<Self> {
        if dims.len() != 4 || dims[3] != dims[2] {
            return Err(GpuError::Internal(format!("{}: convolution weight of shape {dims:?}", w.path("weight"))));
        }
        let (cout, cin, k) = (dims[0], dims[1], dims[2]);
        let kk = k * k * cin;
        let mut wr = vec![0f32; cout * kk];
        for co in 0..cout {
            for ci in 0..cin {
                for t in 0..k * k {
                    wr[co * kk + t * cin + ci] = weight[(co * cin + ci) * k * k + t];
                }
            }
        }
        Ok(Self { lin: w.lin_from(&wr, (cout, kk), bias)?, geom: Patches { cin, k, stride, pad } })
    }

    /// A plain `nn.Conv2d` in the scope `w` (`weight`, and `bias` or zeros when it has none).
    pub fn plain(w: &Weights, stride: usize, pad: usize) -> Result<Self> {
        let (weight, dims) = w.host("weight")?;
        let bias = if w.contains("bias") { w.host("bias")?.0 } else { vec![0.0; dims[0]] };
        Self::new(w, (&weight, &dims), &bias, (stride, pad))
    }

    /// TinyViT's `Conv2d_BN` in the scope `w` (`c`, `bn`), folded.
    pub fn bn(w: &Weights, stride: usize, pad: usize) -> Result<Self> {
        let (weight, dims, bias) = fold_bn(w)?;
        Self::new(w, (&weight, &dims), &bias, (stride, pad))
    }

    pub fn cout(&self) -> usize {
        self.lin.dout
    }

    /// `h x w x cin` to `(oh x ow x cout, oh, ow)`.
    pub fn forward(&self, gpu: &Gpu, x: &wgpu::Buffer, (h, w): (usize, usize), act: Act) -> Result<(GBuf, usize, usize)> {
        let Patches { k, stride, pad, .. } = self.geom;
        if k == 1 && stride == 1 && pad == 0 {
            return Ok((self.lin.forward(gpu, x, h * w, act)?, h, w));
        }
        let (cols, oh, ow) = im2col(gpu, x, h, w, self.geom)?;
        Ok((self.lin.forward(gpu, &cols, oh * ow, act)?, oh, ow))
    }
}

/// `Conv2d_BN` (`tiny_vit_sam.py`): the convolution's weight scaled by `γ / √(var + 1e-5)`
/// per output channel, bias `β − mean · scale` (as ruac-core's `tiny_vit.rs` `bn_affine`, in
/// f32).
fn fold_bn(w: &Weights) -> Result<(Vec<f32>, Vec<usize>, Vec<f32>)> {
    let (mut weight, dims) = w.pp("c").host("weight")?;
    let bn = w.pp("bn");
    let get = |n: &str| -> Result<Vec<f32>> { Ok(bn.host(n)?.0) };
    let (gamma, beta, mean, var) = (get("weight")?, get("bias")?, get("running_mean")?, get("running_var")?);
    let cout = dims[0];
    let per = weight.len() / cout;
    let mut shift = vec![0f32; cout];
    for c in 0..cout {
        let scale = gamma[c] / (var[c] + 1e-5).sqrt();
        shift[c] = beta[c] - mean[c] * scale;
        for v in &mut weight[c * per..(c + 1) * per] {
            *v *= scale;
        }
    }
    Ok((weight, dims, shift))
}

/// A depthwise `Conv2d_BN` (`groups = channels`), folded.
pub struct DwConv {
    w: wgpu::Buffer,
    b: wgpu::Buffer,
    c: usize,
    k: usize,
    stride: usize,
}

impl DwConv {
    /// In the scope `w`, padding `k / 2`.
    pub fn bn(w: &Weights, stride: usize) -> Result<Self> {
        let (weight, dims, bias) = fold_bn(w)?;
        let gpu = w.gpu();
        let name = w.path("c");
        Ok(Self { w: gpu.upload(&name, &weight), b: gpu.upload(&name, &bias), c: dims[0], k: dims[2], stride })
    }

    pub fn forward(&self, gpu: &Gpu, x: &wgpu::Buffer, (h, w): (usize, usize), act: Act) -> Result<(GBuf, usize, usize)> {
        let c = Conv2d { w: &self.w, b: &self.b, cin: self.c, cout: self.c, k: self.k, stride: self.stride, pad: self.k / 2 };
        dwconv(gpu, x, h, w, &c, act)
    }
}
