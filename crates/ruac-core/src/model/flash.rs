//! Fused scaled dot-product attention for inference on the CPU: `softmax(q kᵀ / √d) v`
//! over blocks of keys with a running row maximum and sum (the online softmax of
//! FlashAttention, Dao et al. 2022), as PyTorch's `scaled_dot_product_attention` does on
//! the CPU. No score matrix larger than one query block × one key block exists, the scores
//! are never written out and read back, and each (batch · head, query block) task runs on
//! rayon's pool with single-threaded GEMMs inside.
//!
//! Used by [`super::common::sdpa`] when nothing records gradients (training keeps the
//! differentiable path); the result equals it up to float summation order.
use super::fastmath;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};

/// Query rows per task and keys per block: a 64 × 256 score block is 64 KB, in L2.
const BLOCK_Q: usize = 64;
const BLOCK_K: usize = 256;

/// Whether [`attention`] applies: CPU, f32, nothing recording gradients.
pub fn applies(q: &Tensor, k: &Tensor, v: &Tensor) -> bool {
    [q, k, v].iter().all(|t| t.device().is_cpu() && t.dtype() == DType::F32 && !t.track_op())
}

/// `softmax(q kᵀ · scale) v` for `(batch, heads, tokens, head_dim)` tensors; `v` may have
/// another head dimension than `q` and `k`.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f32) -> Result<Tensor> {
    q.contiguous()?.apply_op3_no_bwd(&k.contiguous()?, &v.contiguous()?, &Flash { scale })
}

struct Flash {
    scale: f32,
}

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s.as_slice::<f32>()?[a..b]),
        None => candle_core::bail!("flash attention: non-contiguous input"),
    }
}

impl CustomOp3 for Flash {
    fn name(&self) -> &'static str {
        "flash-attention"
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage,
        ql: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (q, k, v) = (contiguous(qs, ql)?, contiguous(ks, kl)?, contiguous(vs, vl)?);
        let (b, h, nq, d) = ql.shape().dims4()?;
        let (kb, kh, nk, kd) = kl.shape().dims4()?;
        let (vb, vh, vn, dv) = vl.shape().dims4()?;
        if (kb, kh, kd) != (b, h, d) || (vb, vh, vn) != (b, h, nk) || nk == 0 {
            candle_core::bail!("flash attention: q {:?}, k {:?}, v {:?}", ql.dims(), kl.dims(), vl.dims());
        }
        let mut out = vec![0f32; b * h * nq * dv];
        let blocks = nq.div_ceil(BLOCK_Q);
        let task = |t: usize, o: &mut [f32]| {
            let (bh, r0) = (t / blocks, (t % blocks) * BLOCK_Q);
            let rows = o.len() / dv;
            let qb = &q[(bh * nq + r0) * d..(bh * nq + r0 + rows) * d];
            let kh = &k[bh * nk * d..(bh + 1) * nk * d];
            let vh = &v[bh * nk * dv..(bh + 1) * nk * dv];
            block(qb, kh, vh, o, d, dv, self.scale);
        };
        // One task per (batch · head, query block); a task's output rows are contiguous.
        let mut chunks = Vec::with_capacity(b * h * blocks);
        let mut rest: &mut [f32] = &mut out;
        for t in 0..b * h * blocks {
            let len = BLOCK_Q.min(nq - (t % blocks) * BLOCK_Q) * dv;
            let (head, tail) = rest.split_at_mut(len);
            chunks.push(head);
            rest = tail;
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            use rayon::prelude::*;
            chunks.into_par_iter().enumerate().for_each(|(t, o)| task(t, o));
        }
        #[cfg(target_arch = "wasm32")]
        for (t, o) in chunks.into_iter().enumerate() {
            task(t, o);
        }
        Ok((CpuStorage::F32(out), Shape::from((b, h, nq, dv))))
    }
}

/// One query block against all keys: `o` (`rows × dv`) = softmax(`qb kᵀ` · scale) `v`.
fn block(qb: &[f32], k: &[f32], v: &[f32], o: &mut [f32], d: usize, dv: usize, scale: f32) {
    let rows = o.len() / dv;
    let nk = k.len() / d;
    let mut s = vec![0f32; rows * BLOCK_K];
    let mut m = vec![f32::NEG_INFINITY; rows];
    let mut l = vec![0f32; rows];
    for k0 in (0..nk).step_by(BLOCK_K) {
        let kc = BLOCK_K.min(nk - k0);
        let s = &mut s[..rows * kc];
        // s = scale · qb kᵀ (rows × kc); kᵀ read in place: column j is key row k0 + j.
        // SAFETY: every pointer, stride and extent below stays inside its slice.
        unsafe {
            gemm::gemm(
                rows, kc, d,
                s.as_mut_ptr(), 1, kc as isize, false,
                qb.as_ptr(), 1, d as isize,
                k[k0 * d..].as_ptr(), d as isize, 1,
                0.0, scale, false, false, false, gemm::Parallelism::None,
            );
        }
        for i in 0..rows {
            let row = &mut s[i * kc..(i + 1) * kc];
            let top = fastmath::max(row).max(m[i]);
            let keep = if m[i] == f32::NEG_INFINITY { 0.0 } else { fastmath::exp(m[i] - top) };
            let sum = fastmath::exp_shifted_in_place(row, top);
            l[i] = l[i] * keep + sum;
            m[i] = top;
            if keep != 1.0 {
                o[i * dv..(i + 1) * dv].iter_mut().for_each(|x| *x *= keep);
            }
        }
        // o += p v (rows × dv).
        // SAFETY: as above.
        unsafe {
            gemm::gemm(
                rows, dv, kc,
                o.as_mut_ptr(), 1, dv as isize, true,
                s.as_ptr(), 1, kc as isize,
                v[k0 * dv..].as_ptr(), 1, dv as isize,
                1.0, 1.0, false, false, false, gemm::Parallelism::None,
            );
        }
    }
    for (i, &z) in l.iter().enumerate() {
        o[i * dv..(i + 1) * dv].iter_mut().for_each(|x| *x /= z);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Against softmax(q kᵀ / √d) v in candle's primitives, for lengths that are and are
    /// not multiples of the blocks, and a value width unlike the key width.
    #[test]
    fn equals_unfused_attention() -> Result<()> {
        let dev = Device::Cpu;
        for (nq, nk, d, dv) in [(1, 1, 4, 4), (70, 300, 16, 16), (129, 513, 8, 12), (64, 256, 32, 32)] {
            let q = Tensor::randn(0f32, 1.0, (2, 3, nq, d), &dev)?;
            let k = Tensor::randn(0f32, 1.0, (2, 3, nk, d), &dev)?;
            let v = Tensor::randn(0f32, 1.0, (2, 3, nk, dv), &dev)?;
            let scale = 1.0 / (d as f32).sqrt();
            let scores = (q.matmul(&k.t()?)? * scale as f64)?;
            let want = candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v)?;
            let got = attention(&q, &k, &v, scale)?;
            assert_eq!(got.dims(), want.dims());
            let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 2e-6, "{nq}x{nk}x{d}: {diff}");
        }
        Ok(())
    }

    /// Two keys by hand: scores 0 and ln 3 give weights 1/4 and 3/4.
    #[test]
    fn two_keys_by_hand() -> Result<()> {
        let dev = Device::Cpu;
        let q = Tensor::new(&[1f32], &dev)?.reshape((1, 1, 1, 1))?;
        let k = Tensor::new(&[0f32, 3f32.ln()], &dev)?.reshape((1, 1, 2, 1))?;
        let v = Tensor::new(&[[4f32, 0.], [0., 8.]], &dev)?.reshape((1, 1, 2, 2))?;
        let o = attention(&q, &k, &v, 1.0)?.flatten_all()?.to_vec1::<f32>()?;
        assert!((o[0] - 1.0).abs() < 1e-6 && (o[1] - 6.0).abs() < 1e-6, "{o:?}");
        Ok(())
    }

    #[test]
    fn large_scores_do_not_overflow() -> Result<()> {
        // Scores near 1e4 in one block and smaller in the next: the running maximum keeps
        // every exponential finite.
        let dev = Device::Cpu;
        let q = Tensor::full(100f32, (1, 1, 2, 1), &dev)?;
        let k = Tensor::arange(0f32, 300., &dev)?.reshape((1, 1, 300, 1))?;
        let v = Tensor::arange(0f32, 300., &dev)?.reshape((1, 1, 300, 1))?;
        let o = attention(&q, &k, &v, 1.0)?.flatten_all()?.to_vec1::<f32>()?;
        assert!(o.iter().all(|x| (x - 299.0).abs() < 1e-3), "{o:?}");
        Ok(())
    }
}
