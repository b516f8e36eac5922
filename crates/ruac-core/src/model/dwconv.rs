//! Depthwise 2-D convolution (`nn.Conv2d(c, c, k, groups=c)`, no bias) as one CPU kernel with
//! its backward pass. candle runs a grouped convolution one group at a time, and the
//! portable form (a sum of `k²` shifted, per-channel scaled copies) moves each activation
//! `3k²` times through memory. TinyViT (MobileSAM, LiteMedSAM; `tiny_vit.rs`) has depthwise
//! 3x3 convolutions at full resolution in every MBConv and block, where they dominated the
//! encoder; RUAC's attackers need their gradient with respect to the input.
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};

/// `x` `B, C, H, W` and `w` `C, 1, k, k` (f32 on the CPU: this kernel; anything else: the
/// shifted-sum form, which carries gradients on every device).
pub fn depthwise_conv2d(x: &Tensor, w: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 && w.dtype() == DType::F32 {
        x.contiguous()?.apply_op2(&w.contiguous()?, DwConv { stride, pad })
    } else {
        shifted_sum(x, w, stride, pad)
    }
}

/// The portable form: `k²` shifted copies scaled per channel, then every `stride`-th output.
pub fn shifted_sum(x: &Tensor, w: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    let (c, _, k, _) = w.dims4()?;
    let (b, _, h, wd) = x.dims4()?;
    let x = x.pad_with_zeros(2, pad, pad)?.pad_with_zeros(3, pad, pad)?;
    let (ho, wo) = (h + 2 * pad - k + 1, wd + 2 * pad - k + 1);
    let mut acc: Option<Tensor> = None;
    for dy in 0..k {
        for dx in 0..k {
            let tap = w.narrow(2, dy, 1)?.narrow(3, dx, 1)?.reshape((1, c, 1, 1))?;
            let term = x.narrow(2, dy, ho)?.narrow(3, dx, wo)?.broadcast_mul(&tap)?;
            acc = Some(match acc {
                None => term,
                Some(a) => (a + term)?,
            });
        }
    }
    let mut y = acc.ok_or_else(|| candle_core::Error::Msg("empty depthwise kernel".into()))?;
    if stride > 1 {
        let s = stride;
        let (hs, ws) = (ho.div_ceil(s), wo.div_ceil(s));
        y = y.pad_with_zeros(2, 0, hs * s - ho)?.pad_with_zeros(3, 0, ws * s - wo)?;
        y = y.reshape((b, c, hs, s, ws, s))?.narrow(3, 0, 1)?.narrow(5, 0, 1)?.reshape((b, c, hs, ws))?;
    }
    Ok(y)
}

#[derive(Debug, Clone, Copy)]
struct Geom {
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    pad: usize,
    ho: usize,
    wo: usize,
}

impl Geom {
    fn new(x: &[usize], wt: &[usize], stride: usize, pad: usize) -> Result<Self> {
        let ([b, c, h, w], [cw, 1, k, k2]) = (x, wt) else {
            candle_core::bail!("depthwise conv: input {x:?} and weight {wt:?} must be B,C,H,W and C,1,k,k")
        };
        if cw != c || k != k2 || stride == 0 || h + 2 * pad < *k || w + 2 * pad < *k {
            candle_core::bail!("depthwise conv: input {x:?}, weight {wt:?}, stride {stride}, pad {pad} do not fit");
        }
        let (ho, wo) = ((h + 2 * pad - k) / stride + 1, (w + 2 * pad - k) / stride + 1);
        Ok(Self { b: *b, c: *c, h: *h, w: *w, k: *k, stride, pad, ho, wo })
    }

    /// Output columns `ox` whose input column `ox * s + kx - pad` is inside the image.
    fn cols(&self, kx: usize) -> std::ops::Range<usize> {
        let lo = (self.pad.saturating_sub(kx)).div_ceil(self.stride);
        let hi = if self.w + self.pad > kx { ((self.w + self.pad - kx - 1) / self.stride + 1).min(self.wo) } else { 0 };
        lo..hi.max(lo)
    }
    fn rows(&self, ky: usize) -> std::ops::Range<usize> {
        let lo = (self.pad.saturating_sub(ky)).div_ceil(self.stride);
        let hi = if self.h + self.pad > ky { ((self.h + self.pad - ky - 1) / self.stride + 1).min(self.ho) } else { 0 };
        lo..hi.max(lo)
    }

    /// Calls `f(tap, oy, iy, cols)` for every tap `ky * k + kx` and every output row `oy`
    /// whose input row `iy` is inside the image; `cols` are the output columns whose input
    /// column `ox * stride + kx - pad` is inside. The three kernels share this walk.
    fn taps(&self, mut f: impl FnMut(usize, usize, usize, std::ops::Range<usize>)) {
        for ky in 0..self.k {
            for kx in 0..self.k {
                let cols = self.cols(kx);
                for oy in self.rows(ky) {
                    f(ky * self.k + kx, oy, oy * self.stride + ky - self.pad, cols.clone());
                }
            }
        }
    }

    /// Input column of output column `ox` under tap `tap`.
    fn ix(&self, tap: usize, ox: usize) -> usize {
        ox * self.stride + tap % self.k - self.pad
    }
}

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let v = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("depthwise conv: non-contiguous operand"),
    }
}

/// Runs `f(plane_index, out_plane)` over the `B * C` output planes, in parallel natively on
/// rayon's pool (candle's; `RAYON_NUM_THREADS` sizes it).
fn per_plane(out: &mut [f32], plane: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(plane.max(1)).enumerate().for_each(|(i, p)| f(i, p));
    }
    #[cfg(target_arch = "wasm32")]
    for (i, p) in out.chunks_mut(plane).enumerate() {
        f(i, p)
    }
}

struct DwConv {
    stride: usize,
    pad: usize,
}

impl CustomOp2 for DwConv {
    fn name(&self) -> &'static str {
        "depthwise-conv2d"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ws: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = Geom::new(xl.dims(), wl.dims(), self.stride, self.pad)?;
        let (x, wt) = (f32_slice(xs, xl)?, f32_slice(ws, wl)?);
        let mut y = vec![0f32; g.b * g.c * g.ho * g.wo];
        per_plane(&mut y, g.ho * g.wo, |p, out| {
            let (xp, wp) = (&x[p * g.h * g.w..][..g.h * g.w], &wt[(p % g.c) * g.k * g.k..][..g.k * g.k]);
            g.taps(|tap, oy, iy, cols| {
                let (row, orow) = (&xp[iy * g.w..][..g.w], &mut out[oy * g.wo..][..g.wo]);
                if g.stride == 1 {
                    // Contiguous runs: the compiler vectorises this form.
                    let off = g.ix(tap, cols.start);
                    for (o, i) in orow[cols].iter_mut().zip(&row[off..]) {
                        *o += wp[tap] * i;
                    }
                } else {
                    for ox in cols {
                        orow[ox] += wp[tap] * row[g.ix(tap, ox)];
                    }
                }
            });
        });
        Ok((CpuStorage::F32(y), Shape::from((g.b, g.c, g.ho, g.wo))))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let gx = grad.apply_op2_no_bwd(w, &DwConvGradInput { stride: self.stride, pad: self.pad, h: x.dim(2)?, w: x.dim(3)? })?;
        // A frozen encoder's weights need no gradient (RUAC only wants the input's).
        let gw = if w.track_op() {
            Some(x.apply_op2_no_bwd(&grad, &DwConvGradWeight { stride: self.stride, pad: self.pad, k: w.dim(2)? })?)
        } else {
            None
        };
        Ok((Some(gx), gw))
    }
}

/// `∂L/∂x` from `∂L/∂y`: every output scatters back through the taps that produced it.
struct DwConvGradInput {
    stride: usize,
    pad: usize,
    h: usize,
    w: usize,
}

impl CustomOp2 for DwConvGradInput {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-grad-input"
    }

    fn cpu_fwd(&self, gs: &CpuStorage, gl: &Layout, ws: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let gd = gl.dims();
        let [b, c, _, _] = gd else { candle_core::bail!("depthwise conv grad: gradient {gd:?} is not 4-D") };
        let g = Geom::new(&[*b, *c, self.h, self.w], wl.dims(), self.stride, self.pad)?;
        if gd != [g.b, g.c, g.ho, g.wo] {
            candle_core::bail!("depthwise conv grad: gradient {gd:?} for output {:?}", [g.b, g.c, g.ho, g.wo]);
        }
        let (gy, wt) = (f32_slice(gs, gl)?, f32_slice(ws, wl)?);
        let mut gx = vec![0f32; g.b * g.c * g.h * g.w];
        per_plane(&mut gx, g.h * g.w, |p, out| {
            let (gp, wp) = (&gy[p * g.ho * g.wo..][..g.ho * g.wo], &wt[(p % g.c) * g.k * g.k..][..g.k * g.k]);
            g.taps(|tap, oy, iy, cols| {
                let (grow, xrow) = (&gp[oy * g.wo..][..g.wo], &mut out[iy * g.w..][..g.w]);
                for ox in cols {
                    xrow[g.ix(tap, ox)] += wp[tap] * grow[ox];
                }
            });
        });
        Ok((CpuStorage::F32(gx), Shape::from((g.b, g.c, g.h, g.w))))
    }
}

/// `∂L/∂w`: per channel and tap, the input under that tap times `∂L/∂y`, summed.
struct DwConvGradWeight {
    stride: usize,
    pad: usize,
    k: usize,
}

impl CustomOp2 for DwConvGradWeight {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-grad-weight"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, gs: &CpuStorage, gl: &Layout) -> Result<(CpuStorage, Shape)> {
        let xd = xl.dims();
        let c = *xd.get(1).ok_or_else(|| candle_core::Error::Msg(format!("depthwise conv grad: input {xd:?}")))?;
        let g = Geom::new(xd, &[c, 1, self.k, self.k], self.stride, self.pad)?;
        let (x, gy) = (f32_slice(xs, xl)?, f32_slice(gs, gl)?);
        if gl.dims() != [g.b, g.c, g.ho, g.wo] {
            candle_core::bail!("depthwise conv grad: gradient {:?} for output {:?}", gl.dims(), [g.b, g.c, g.ho, g.wo]);
        }
        let kk = g.k * g.k;
        let mut gw = vec![0f32; g.c * kk];
        per_plane(&mut gw, kk, |ch, out| {
            for bi in 0..g.b {
                let p = bi * g.c + ch;
                let (xp, gp) = (&x[p * g.h * g.w..][..g.h * g.w], &gy[p * g.ho * g.wo..][..g.ho * g.wo]);
                g.taps(|tap, oy, iy, cols| {
                    let (grow, xrow) = (&gp[oy * g.wo..][..g.wo], &xp[iy * g.w..][..g.w]);
                    out[tap] += cols.map(|ox| grow[ox] * xrow[g.ix(tap, ox)]).sum::<f32>();
                });
            }
        });
        Ok((CpuStorage::F32(gw), Shape::from((g.c, 1, g.k, g.k))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn rand(shape: &[usize], seed: u64) -> Tensor {
        let mut r = crate::rng::Pcg32::new(seed);
        let n = shape.iter().product();
        Tensor::from_vec(r.uniforms(n).iter().map(|u| 2.0 * u - 1.0).collect::<Vec<f32>>(), shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// The kernel and its gradients against the shifted-sum form (candle's autograd through
    /// pads, narrows and products), for the geometries TinyViT uses and odd ones.
    #[test]
    fn kernel_and_gradients_match_the_shifted_sum_form() {
        for (i, &(b, c, h, w, k, s, p)) in
            [(1, 3, 7, 9, 3, 1, 1), (2, 4, 8, 8, 3, 2, 1), (1, 2, 5, 6, 3, 2, 1), (1, 2, 9, 7, 5, 1, 2), (1, 3, 6, 6, 3, 1, 0)]
                .iter()
                .enumerate()
        {
            let x = Var::from_tensor(&rand(&[b, c, h, w], 1 + i as u64)).unwrap();
            let wt = Var::from_tensor(&rand(&[c, 1, k, k], 100 + i as u64)).unwrap();
            let y1 = depthwise_conv2d(&x, &wt, s, p).unwrap();
            let y2 = shifted_sum(&x, &wt, s, p).unwrap();
            assert_eq!(y1.dims(), y2.dims(), "case {i}");
            assert!(max_diff(&y1, &y2) < 1e-5, "case {i}: forward differs by {}", max_diff(&y1, &y2));
            // A weighted sum so that every output's gradient differs.
            let r = rand(y1.dims(), 200 + i as u64);
            let g1 = (&y1 * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = (&y2 * &r).unwrap().sum_all().unwrap().backward().unwrap();
            for v in [&x, &wt] {
                let (a, b) = (g1.get(v.as_tensor()).unwrap(), g2.get(v.as_tensor()).unwrap());
                assert!(max_diff(a, b) < 1e-4, "case {i}: gradient differs by {}", max_diff(a, b));
            }
        }
    }

    /// A hand-worked case: a 3x3 box filter of ones on a 3x3 ramp with zero padding.
    #[test]
    fn box_filter_by_hand() {
        let x = Tensor::from_vec((1..=9).map(|v| v as f32).collect::<Vec<_>>(), (1, 1, 3, 3), &Device::Cpu).unwrap();
        let w = Tensor::ones((1, 1, 3, 3), DType::F32, &Device::Cpu).unwrap();
        let y = depthwise_conv2d(&x, &w, 1, 1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // Corner 1+2+4+5, edge 1+2+3+4+5+6, centre 45.
        assert_eq!(y, vec![12.0, 21.0, 16.0, 27.0, 45.0, 33.0, 24.0, 39.0, 28.0]);
        let y2 = depthwise_conv2d(&x, &w, 2, 1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(y2, vec![12.0, 16.0, 24.0, 28.0]);
    }
}
