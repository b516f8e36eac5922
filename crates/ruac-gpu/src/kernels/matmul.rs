//! Batched strided matrix product with bias, activation and accumulation (`matmul.wgsl`):
//! every `nn.Linear`, 1x1 convolution and the Bayesian head's products.
use super::{f, u};
use crate::gpu::{Gpu, Result};

pub const NAME: &str = "matmul";
pub const SRC: &str = concat!(include_str!("common.wgsl"), include_str!("matmul.wgsl"));

/// The variant whose B operand is `f16` (weights on adapters with `shader-f16`, halving their
/// memory and bandwidth); compiled by `Gpu::new` only where the feature exists.
pub const NAME_F16: &str = "matmul_wf16";

pub fn src_f16() -> String {
    format!("enable f16;\n{}", SRC.replace("alias BT = f32;", "alias BT = f16;"))
}

/// Activation applied after bias (codes of `common.wgsl::activate`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    None = 0,
    Relu = 1,
    Gelu = 2,
    Sigmoid = 3,
}

/// A strided view: element `[b][i][j]` at `off + b*bs + i*s0 + j*s1`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub buf: &'a wgpu::Buffer,
    pub off: usize,
    pub bs: usize,
    pub s0: usize,
    pub s1: usize,
    /// Elements are `f16` (only B may be: weights uploaded by `Gpu::upload_weights`).
    pub f16: bool,
}

impl<'a> View<'a> {
    /// A contiguous row-major `rows x cols` matrix at `off`.
    pub fn rows(buf: &'a wgpu::Buffer, off: usize, cols: usize) -> Self {
        Self { buf, off, bs: 0, s0: cols, s1: 1, f16: false }
    }
    /// The transpose of a contiguous row-major matrix with `cols` columns.
    pub fn transposed(buf: &'a wgpu::Buffer, off: usize, cols: usize) -> Self {
        Self { buf, off, bs: 0, s0: 1, s1: cols, f16: false }
    }
    pub fn half(mut self, f16: bool) -> Self {
        self.f16 = f16;
        self
    }
    pub fn batch_stride(mut self, bs: usize) -> Self {
        self.bs = bs;
        self
    }
}

#[derive(Clone, Copy)]
pub enum Bias<'a> {
    None,
    /// One value per output column, from the offset.
    Cols(&'a wgpu::Buffer, usize),
    /// One value per output row.
    Rows(&'a wgpu::Buffer, usize),
}

/// `C[b] = act(alpha A[b] B[b] + bias) (+ C[b] if accumulate)`, `A: m x k`, `B: k x n`.
pub struct Matmul<'a> {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub batch: usize,
    pub a: View<'a>,
    pub b: View<'a>,
    pub c: View<'a>,
    pub bias: Bias<'a>,
    pub act: Act,
    pub accumulate: bool,
    pub alpha: f32,
}

impl<'a> Matmul<'a> {
    pub fn new(m: usize, n: usize, k: usize, a: View<'a>, b: View<'a>, c: View<'a>) -> Self {
        Self { m, n, k, batch: 1, a, b, c, bias: Bias::None, act: Act::None, accumulate: false, alpha: 1.0 }
    }
}

pub fn matmul(gpu: &Gpu, mm: &Matmul) -> Result<()> {
    let (bias_mode, bias_buf, bias_off) = match mm.bias {
        Bias::None => (0, &gpu.dummy, 0),
        Bias::Cols(b, o) => (1, b, o),
        Bias::Rows(b, o) => (2, b, o),
    };
    let params = [
        u(mm.m)?, u(mm.n)?, u(mm.k)?, bias_mode,
        u(mm.a.off)?, u(mm.a.bs)?, u(mm.a.s0)?, u(mm.a.s1)?,
        u(mm.b.off)?, u(mm.b.bs)?, u(mm.b.s0)?, u(mm.b.s1)?,
        u(mm.c.off)?, u(mm.c.bs)?, u(mm.c.s0)?, u(mm.c.s1)?,
        mm.act as u32, mm.accumulate as u32, f(mm.alpha), u(bias_off)?,
    ];
    let bufs = [mm.a.buf, mm.b.buf, bias_buf, mm.c.buf];
    if mm.a.f16 || mm.c.f16 {
        return Err(crate::error::GpuError::Internal("only the B operand of a matmul may be f16".into()));
    }
    let name = if mm.b.f16 { NAME_F16 } else { NAME };
    if gpu.is_cpu() {
        let groups = (u(mm.n.div_ceil(32))?, u(mm.m.div_ceil(32))?, u(mm.batch)?);
        gpu.dispatch((name, "matmul_direct"), &params, &bufs, groups)
    } else {
        let groups = (u(mm.n.div_ceil(64))?, u(mm.m.div_ceil(64))?, u(mm.batch)?);
        gpu.dispatch((name, "matmul"), &params, &bufs, groups)
    }
}
