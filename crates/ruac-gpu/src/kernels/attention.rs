//! Fused scaled dot-product attention (`attention.wgsl`): Hiera's windowed and global
//! attention and the two-way transformer's attentions.
use super::{f, u};
use crate::gpu::{Gpu, Result};
use crate::GpuError;

pub const NAME: &str = "attention";
pub const SRC: &str = concat!(include_str!("common.wgsl"), include_str!("attention.wgsl"));

/// Largest head dimension the kernel's private accumulators hold.
pub const MAX_HEAD_DIM: usize = 128;

/// `(buffer, offset, batch stride, head stride, token stride)`; the head dimension is
/// contiguous.
#[derive(Clone, Copy)]
pub struct Heads<'a> {
    pub buf: &'a wgpu::Buffer,
    pub off: usize,
    pub bs: usize,
    pub hs: usize,
    pub ns: usize,
}

/// `o = softmax(q kᵀ / √hd) v` for `batch x heads` independent problems.
#[allow(clippy::too_many_arguments)]
pub fn attention(gpu: &Gpu, batch: usize, heads: usize, nq: usize, nk: usize, hd: usize, q: Heads, k: Heads, v: Heads, o: Heads) -> Result<()> {
    if hd > MAX_HEAD_DIM || hd == 0 {
        return Err(GpuError::Unsupported(format!("attention head dimension {hd} (the kernel supports 1..={MAX_HEAD_DIM})")));
    }
    if nk == 0 || nq == 0 {
        return Ok(());
    }
    // Same scale as the CPU (1/sqrt(d) in f64, applied to q in f32).
    let scale = (1.0 / (hd as f64).sqrt()) as f32;
    let mut params = vec![u(nq)?, u(nk)?, u(hd)?, f(scale)];
    for t in [q, k, v, o] {
        params.extend([u(t.off)?, u(t.bs)?, u(t.hs)?, u(t.ns)?]);
    }
    let entry = if gpu.is_cpu() { "attention_direct" } else { "attention" };
    gpu.dispatch((NAME, entry), &params, &[q.buf, k.buf, v.buf, o.buf], (u(nq.div_ceil(64))?, u(heads)?, u(batch)?))
}
