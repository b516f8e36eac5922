//! Layer norm and softmax over the last axis as CPU kernels with their backward passes.
//! candle's fused kernels for both have no backward, so training recorded them as five to
//! seven elementary ops each, every one a full pass with its own intermediate; the encoder's
//! backward (attackers' gradients flow through the frozen encoder) was 3.6× PyTorch's time.
//! Each kernel here is one pass over the rows, split across threads natively.
use super::fastmath;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, InplaceOp2, Layout, Result, Shape, Tensor, D};

/// `nn.LayerNorm` over the last axis: `(x - mean) / sqrt(var + eps) * w + b`.
/// f32 on the CPU: one kernel; otherwise the same formula in candle's primitives.
pub fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    if x.device().is_cpu() && [x.dtype(), w.dtype(), b.dtype()] == [DType::F32; 3] {
        return x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, LayerNorm { eps: eps as f32 });
    }
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    xc.broadcast_div(&(var + eps)?.sqrt()?)?.broadcast_mul(w)?.broadcast_add(b)
}

/// Softmax over the last axis. f32 on the CPU: one kernel; otherwise candle's.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        x.contiguous()?.apply_op1(Softmax)
    } else {
        candle_nn::ops::softmax(x, D::Minus1)
    }
}

/// `y + b` for a `rows × cols` matrix `y` and a `cols` vector `b` (a linear layer's bias).
/// Inference on the CPU in f32 (nothing records gradients, `y` freshly made and contiguous):
/// added in place, in parallel, without the output-sized copy that `broadcast_add` makes
/// (151 MB at Hiera's first stage-2 block at 1024 px). Otherwise `broadcast_add`.
pub fn add_bias(y: Tensor, b: &Tensor) -> Result<Tensor> {
    let inplace = y.device().is_cpu()
        && y.dtype() == DType::F32
        && b.dtype() == DType::F32
        && !y.track_op()
        && !b.track_op()
        && y.is_contiguous()
        && y.layout().start_offset() == 0
        && b.rank() == 1
        && y.dims().last() == Some(&b.dim(0)?);
    if !inplace {
        return y.broadcast_add(b);
    }
    y.inplace_op2(&b.contiguous()?, &AddBias)?;
    Ok(y)
}

struct AddBias;

impl InplaceOp2 for AddBias {
    fn name(&self) -> &'static str {
        "add-bias"
    }
    fn cpu_fwd(&self, ys: &mut CpuStorage, yl: &Layout, bs: &CpuStorage, bl: &Layout) -> Result<()> {
        let b = slice(bs, bl, "add_bias")?;
        let (start, end) = yl.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg("add_bias: non-contiguous output".into()))?;
        let CpuStorage::F32(y) = ys else { candle_core::bail!("add_bias: not f32") };
        let (y, c) = (&mut y[start..end], b.len().max(1));
        let add = |rows: &mut [f32]| {
            for row in rows.chunks_mut(c) {
                for (v, bj) in row.iter_mut().zip(b) {
                    *v += bj;
                }
            }
        };
        #[cfg(not(target_arch = "wasm32"))]
        {
            use rayon::prelude::*;
            let per = (1usize << 16).div_ceil(c).max(1) * c;
            y.par_chunks_mut(per).for_each(add);
        }
        #[cfg(target_arch = "wasm32")]
        add(y);
        Ok(())
    }
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s.as_slice::<f32>()?[a..b]),
        None => candle_core::bail!("{what}: non-contiguous input"),
    }
}

/// Runs `f(row index, output row)` over the rows of a `rows × cols` output, in parallel on
/// rayon's pool natively (its thread count is candle's: `RAYON_NUM_THREADS`).
fn rows_par(rows: usize, cols: usize, f: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    let mut out = vec![0f32; rows * cols];
    if cols == 0 {
        return out;
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        // Below ~64k values a task costs more than it saves.
        let per = (1usize << 16).div_ceil(cols).max(1);
        out.par_chunks_mut(per * cols).enumerate().for_each(|(c, chunk)| {
            for (i, o) in chunk.chunks_mut(cols).enumerate() {
                f(c * per + i, o);
            }
        });
    }
    #[cfg(target_arch = "wasm32")]
    for (i, o) in out.chunks_mut(cols).enumerate() {
        f(i, o);
    }
    out
}

/// Mean and `1 / sqrt(var + eps)` of one row (two passes, as PyTorch: no cancellation).
#[inline]
fn moments(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

struct LayerNorm {
    eps: f32,
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "layer-norm"
    }
    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (slice(xs, xl, "layer_norm")?, slice(ws, wl, "layer_norm")?, slice(bs, bl, "layer_norm")?);
        let c = xl.dims().last().copied().unwrap_or(1);
        if w.len() != c || b.len() != c {
            candle_core::bail!("layer_norm: weight {} and bias {} for {c} channels", w.len(), b.len());
        }
        let out = rows_par(x.len() / c.max(1), c, |r, o| {
            let x = &x[r * c..(r + 1) * c];
            let (mean, rstd) = moments(x, self.eps);
            for j in 0..c {
                o[j] = (x[j] - mean) * rstd * w[j] + b[j];
            }
        });
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dx = x.track_op().then(|| x.apply_op3_no_bwd(w, &grad, &LayerNormGradInput { eps: self.eps })).transpose()?;
        // The weights are frozen in RUAC's encoder: their gradients are skipped then.
        if !w.track_op() && !b.track_op() {
            return Ok((dx, None, None));
        }
        let p = x.apply_op2_no_bwd(&grad, &LayerNormGradParams { eps: self.eps })?;
        let dw = w.track_op().then(|| p.get(0)?.reshape(w.shape())).transpose()?;
        let db = b.track_op().then(|| p.get(1)?.reshape(b.shape())).transpose()?;
        Ok((dx, dw, db))
    }
}

/// `[Σ_rows g x̂; Σ_rows g]`, shape `(2, channels)`: the weight and bias gradients in one pass.
struct LayerNormGradParams {
    eps: f32,
}

impl CustomOp2 for LayerNormGradParams {
    fn name(&self) -> &'static str {
        "layer-norm-grad-params"
    }
    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, gs: &CpuStorage, gl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (slice(xs, xl, "layer_norm")?, slice(gs, gl, "layer_norm")?);
        let c = xl.dims().last().copied().unwrap_or(1).max(1);
        // Sequential in rows: one accumulator per channel, summed in row order.
        let mut out = vec![0f32; 2 * c];
        let (dw, db) = out.split_at_mut(c);
        for (x, g) in x.chunks(c).zip(g.chunks(c)) {
            let (mean, rstd) = moments(x, self.eps);
            for j in 0..c {
                dw[j] += g[j] * (x[j] - mean) * rstd;
                db[j] += g[j];
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((2, c))))
    }
}

/// `dx = rstd (g w - mean(g w) - x̂ mean(g w x̂))` per row.
struct LayerNormGradInput {
    eps: f32,
}

impl CustomOp3 for LayerNormGradInput {
    fn name(&self) -> &'static str {
        "layer-norm-grad-input"
    }
    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, g) = (slice(xs, xl, "layer_norm")?, slice(ws, wl, "layer_norm")?, slice(gs, gl, "layer_norm")?);
        let c = w.len();
        let out = rows_par(x.len() / c.max(1), c, |r, o| {
            let (x, g) = (&x[r * c..(r + 1) * c], &g[r * c..(r + 1) * c]);
            let (mean, rstd) = moments(x, self.eps);
            let (mut s1, mut s2) = (0f32, 0f32);
            for j in 0..c {
                let gw = g[j] * w[j];
                s1 += gw;
                s2 += gw * (x[j] - mean) * rstd;
            }
            let (s1, s2) = (s1 / c as f32, s2 / c as f32);
            for j in 0..c {
                let xhat = (x[j] - mean) * rstd;
                o[j] = rstd * (g[j] * w[j] - s1 - xhat * s2);
            }
        });
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }
}

struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax-last-dim"
    }
    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(xs, xl, "softmax")?;
        let c = xl.dims().last().copied().unwrap_or(1);
        let out = rows_par(x.len() / c.max(1), c, |r, o| {
            let x = &x[r * c..(r + 1) * c];
            let sum = fastmath::exp_shifted(x, o, fastmath::max(x));
            let inv = 1.0 / sum;
            o.iter_mut().for_each(|v| *v *= inv);
        });
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }
    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(y.apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxGrad)?))
    }
}

/// `dx = y (g - Σ g y)` per row.
struct SoftmaxGrad;

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "softmax-last-dim-grad"
    }
    fn cpu_fwd(&self, ys: &CpuStorage, yl: &Layout, gs: &CpuStorage, gl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (y, g) = (slice(ys, yl, "softmax")?, slice(gs, gl, "softmax")?);
        let c = yl.dims().last().copied().unwrap_or(1);
        let out = rows_par(y.len() / c.max(1), c, |r, o| {
            let (y, g) = (&y[r * c..(r + 1) * c], &g[r * c..(r + 1) * c]);
            let dot: f32 = y.iter().zip(g).map(|(a, b)| a * b).sum();
            for j in 0..c {
                o[j] = y[j] * (g[j] - dot);
            }
        });
        Ok((CpuStorage::F32(out), yl.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn bias_in_place_equals_broadcast_add_and_keeps_gradients() -> Result<()> {
        let dev = Device::Cpu;
        // 300 x 257: several rayon chunks, a row length that is no power of two.
        let y = Tensor::randn(0f32, 1.0, (300, 257), &dev)?;
        let b = Tensor::randn(0f32, 1.0, 257, &dev)?;
        let want = y.broadcast_add(&b)?;
        let fresh = (&y * 1.0)?; // a tensor of its own, as a GEMM output is
        let got = add_bias(fresh, &b)?;
        assert_eq!((want - &got)?.abs()?.max_all()?.to_scalar::<f32>()?, 0.0);
        // By hand: row [1, 2] + [10, 20].
        let one = add_bias(Tensor::new(&[[1f32, 2.]], &dev)?, &Tensor::new(&[10f32, 20.], &dev)?)?;
        assert_eq!(one.to_vec2::<f32>()?, vec![vec![11., 22.]]);
        // A trained bias takes the recorded path: its gradient is the column sums.
        let bv = Var::from_tensor(&b)?;
        let out = add_bias((&y * 1.0)?, bv.as_tensor())?;
        let g = out.sum_all()?.backward()?;
        let gb = g.get(bv.as_tensor()).expect("bias gradient").to_vec1::<f32>()?;
        assert!(gb.iter().all(|&v| v == 300.0), "{:?}", &gb[..3]);
        Ok(())
    }

    /// A user who limits the threads (`RAYON_NUM_THREADS`, or a pool of their own) gets what
    /// was asked: every row of a large output is computed on the pool's one thread, and the
    /// result is the same as on the default pool.
    #[test]
    fn rows_run_on_the_callers_rayon_pool() {
        use std::collections::HashSet;
        use std::sync::Mutex;
        let (rows, cols) = (4096, 64);
        let seen = Mutex::new(HashSet::new());
        let f = |i: usize, o: &mut [f32]| {
            seen.lock().unwrap().insert(std::thread::current().id());
            o.iter_mut().enumerate().for_each(|(j, v)| *v = (i * cols + j) as f32);
        };
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let (one, pool_thread) = pool.install(|| (rows_par(rows, cols, f), std::thread::current().id()));
        assert_eq!(*seen.lock().unwrap(), HashSet::from([pool_thread]));
        assert_eq!(one, rows_par(rows, cols, f));
        assert_eq!(one[rows * cols - 1], (rows * cols - 1) as f32);
    }

    fn rand(shape: &[usize], seed: u64, scale: f32) -> Tensor {
        let mut r = crate::rng::Pcg32::new(seed);
        let n = shape.iter().product();
        Tensor::from_vec(r.uniforms(n).iter().map(|u| scale * (2.0 * u - 1.0)).collect::<Vec<f32>>(), shape, &Device::Cpu)
            .unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// Against the same formula in candle's differentiable primitives (values and all three
    /// gradients), under a loss that weights every output differently.
    #[test]
    fn layer_norm_matches_the_composition_and_its_gradients() {
        let x = Var::from_tensor(&(rand(&[3, 5, 48], 1, 2.0) + 0.7).unwrap()).unwrap();
        let w = Var::from_tensor(&rand(&[48], 2, 1.5)).unwrap();
        let b = Var::from_tensor(&rand(&[48], 3, 1.0)).unwrap();
        let probe = rand(&[3, 5, 48], 4, 1.0);
        let ours = layer_norm(&x, &w, &b, 1e-6).unwrap();
        let mean = x.mean_keepdim(D::Minus1).unwrap();
        let xc = x.broadcast_sub(&mean).unwrap();
        let var = xc.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        let theirs = xc
            .broadcast_div(&(var + 1e-6).unwrap().sqrt().unwrap())
            .unwrap()
            .broadcast_mul(&w)
            .unwrap()
            .broadcast_add(&b)
            .unwrap();
        assert!(max_diff(&ours, &theirs) < 1e-5);
        let ga = (ours * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (theirs * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        for (v, tol) in [(x.as_tensor(), 1e-5), (w.as_tensor(), 1e-4), (b.as_tensor(), 1e-5)] {
            let d = max_diff(ga.get(v).unwrap(), gb.get(v).unwrap());
            assert!(d < tol, "gradient differs by {d}");
        }
    }

    /// A frozen weight and bias get no gradient (and cost none), the input still does.
    #[test]
    fn layer_norm_skips_the_gradients_of_frozen_weights() {
        let x = Var::from_tensor(&rand(&[4, 8], 5, 1.0)).unwrap();
        let (w, b) = (rand(&[8], 6, 1.0), rand(&[8], 7, 1.0));
        let g = layer_norm(&x, &w, &b, 1e-5).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(g.get(&w).is_none() && g.get(&b).is_none());
        // Σ_j of a normalised row is constant in x: with w = 1 the input gradient of the sum
        // is exactly zero; with other w it is w-weighted, checked above.
        let ones = Tensor::ones(8, DType::F32, &Device::Cpu).unwrap();
        let g = layer_norm(&x, &ones, &b, 1e-5).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(g.get(x.as_tensor()).unwrap().abs().unwrap().max(0).unwrap().max(0).unwrap().to_scalar::<f32>().unwrap() < 1e-5);
    }

    #[test]
    fn softmax_matches_candle_and_its_gradient() {
        let x = Var::from_tensor(&rand(&[2, 3, 7, 33], 8, 6.0)).unwrap();
        let probe = rand(&[2, 3, 7, 33], 9, 1.0);
        let ours = softmax_last_dim(&x).unwrap();
        let theirs = candle_nn::ops::softmax(&x, D::Minus1).unwrap();
        assert!(max_diff(&ours, &theirs) < 1e-6);
        let ga = (ours * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (theirs * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let d = max_diff(ga.get(x.as_tensor()).unwrap(), gb.get(x.as_tensor()).unwrap());
        assert!(d < 1e-6, "gradient differs by {d}");
    }

    /// Hand-worked: softmax([0, ln 3]) = [1/4, 3/4]; with g = [1, 0] the gradient is
    /// y (g - y·g) = [1/4 · 3/4, 3/4 · (-1/4)] = [3/16, -3/16].
    #[test]
    fn softmax_hand_worked() {
        let x = Var::from_tensor(&Tensor::new(&[[0f32, 3f32.ln()]], &Device::Cpu).unwrap()).unwrap();
        let y = softmax_last_dim(&x).unwrap();
        let v = y.to_vec2::<f32>().unwrap();
        assert!((v[0][0] - 0.25).abs() < 1e-7 && (v[0][1] - 0.75).abs() < 1e-7, "{v:?}");
        let g = y.narrow(1, 0, 1).unwrap().sum_all().unwrap().backward().unwrap();
        let d = g.get(x.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        assert!((d[0][0] - 3.0 / 16.0).abs() < 1e-7 && (d[0][1] + 3.0 / 16.0).abs() < 1e-7, "{d:?}");
    }
}
