//! Fused scaled dot-product attention (`attention.wgsl`): Hiera's windowed and global
//! attention and the two-way transformer's attentions.
use super::{f, u};
use crate::gpu::{Gpu, GBuf, Result};
use crate::error::GpuError;

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

/// An additive bias on the attention scores (before the softmax).
#[derive(Clone, Copy)]
pub enum ScoreBias<'a> {
    /// `buf[h * nq * nk + q * nk + k]`, shared by the batch (TinyViT's `attention_biases`
    /// gathered per window position, `tiny_vit_sam.py`).
    Dense(&'a wgpu::Buffer),
    /// SAM ViT's decomposed relative positions as [`rel_pos`] writes them, for keys on a
    /// `g x g` grid (`image_encoder.py`, `add_decomposed_rel_pos`).
    RelPos { buf: &'a wgpu::Buffer, g: usize },
}

/// The sizes of `batch x heads` independent attention problems of `nq` queries over `nk`
/// keys with head dimension `hd`.
#[derive(Debug, Clone, Copy)]
pub struct AttnShape {
    pub batch: usize,
    pub heads: usize,
    pub nq: usize,
    pub nk: usize,
    pub hd: usize,
}

/// Where queries, keys, values and the output live.
#[derive(Clone, Copy)]
pub struct Qkvo<'a> {
    pub q: Heads<'a>,
    pub k: Heads<'a>,
    pub v: Heads<'a>,
    pub o: Heads<'a>,
}

/// `o = softmax(q kᵀ / √hd) v` for `batch x heads` independent problems.
pub fn attention(gpu: &Gpu, shape: AttnShape, t: Qkvo) -> Result<()> {
    attention_biased(gpu, shape, t, None)
}

/// [`attention`] with a score bias: `softmax(q kᵀ / √hd + bias) v`.
pub fn attention_biased(gpu: &Gpu, shape: AttnShape, t: Qkvo, bias: Option<ScoreBias>) -> Result<()> {
    let AttnShape { batch, heads, nq, nk, hd } = shape;
    let Qkvo { q, k, v, o } = t;
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
    let (b, bias_p) = match bias {
        None => (&gpu.dummy, [0, 0, 0, 0, 0]),
        Some(ScoreBias::Dense(b)) => (b, [1, 0, u(nq * nk)?, u(nk)?, 0]),
        Some(ScoreBias::RelPos { buf, g }) => {
            if nk != g * g {
                return Err(GpuError::Internal(format!("relative-position bias for a {g}x{g} grid, {nk} keys")));
            }
            (buf, [2, u(heads * nq * 2 * g)?, u(nq * 2 * g)?, u(2 * g)?, u(g)?])
        }
    };
    params.extend(bias_p);
    let groups = (u(nq.div_ceil(64))?, u(heads)?, u(batch)?);
    if !gpu.is_cpu() {
        params.extend([0, u(nk)?, 2]);
        return gpu.dispatch((NAME, "attention"), &params, &[q.buf, k.buf, v.buf, o.buf, b], groups);
    }
    // Key chunks short enough for lavapipe's loop limit (65535 iterations, nested loops
    // together: about 2 hd + 1 per key), the softmax state carried between dispatches.
    let chunk = (DIRECT_LOOP_BUDGET / (2 * hd + 2)).max(1);
    let n_chunks = nk.div_ceil(chunk);
    let st = gpu.alloc(if n_chunks > 1 { batch * heads * nq * (hd + 2) } else { 1 })?;
    for c in 0..n_chunks {
        let (k0, k1) = (c * chunk, ((c + 1) * chunk).min(nk));
        let phase = (c > 0) as u32 | (((c + 1 == n_chunks) as u32) << 1);
        let mut p = params.clone();
        p.extend([u(k0)?, u(k1)?, phase]);
        gpu.dispatch((NAME, "attention_direct"), &p, &[q.buf, k.buf, v.buf, o.buf, b, &st], groups)?;
    }
    Ok(())
}

/// Loop iterations one `attention_direct` invocation may run (lavapipe stops at 65535).
const DIRECT_LOOP_BUDGET: usize = 32768;

/// The decomposed relative-position terms of SAM ViT's attention for `batch x heads` query
/// sets on a `g x g` grid (`get_rel_pos` at equal sizes + `add_decomposed_rel_pos`):
/// `rel_h` and `rel_w` are the `2g - 1 x hd` tables; the result feeds
/// [`ScoreBias::RelPos`]. `shape.nq` and `shape.nk` are `g * g`.
pub fn rel_pos(gpu: &Gpu, shape: AttnShape, g: usize, q: Heads, (rel_h, rel_w): (&wgpu::Buffer, &wgpu::Buffer)) -> Result<GBuf> {
    let AttnShape { batch, heads, hd, .. } = shape;
    let nq = g * g;
    let out = gpu.alloc(batch * heads * nq * 2 * g)?;
    let mut params = vec![u(nq)?, u(nq)?, u(hd)?, 0];
    params.extend([u(q.off)?, u(q.bs)?, u(q.hs)?, u(q.ns)?]);
    params.extend([0; 12]);
    params.extend([2, u(heads * nq * 2 * g)?, u(nq * 2 * g)?, u(2 * g)?, u(g)?, 0, 0, 0]);
    // (rel_pos loops over hd only.)
    gpu.dispatch((NAME, "rel_pos"), &params, &[q.buf, rel_h, rel_w, &out], (u((nq * 2 * g).div_ceil(64))?, u(heads)?, u(batch)?))?;
    Ok(out)
}
