//! Exact (erf) GELU, `x Φ(x)`, as one CPU kernel with its derivative `Φ(x) + x φ(x)`.
//! candle's `gelu_erf` evaluates a double-precision erf per element, which made the GELUs of
//! TinyViT's full-resolution MBConv blocks (16.7 M activations each in LiteMedSAM) as costly as
//! the convolutions around them. Here erf is Abramowitz & Stegun 7.1.26 (absolute error below
//! 1.5e-7, under f32's resolution of the activations it scales).
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};

/// `nn.GELU()` (approximate='none'). f32 on the CPU: this kernel; otherwise candle's.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        x.contiguous()?.apply_op1(Gelu)
    } else {
        x.gelu_erf()
    }
}

/// erf for `x >= 0` (A&S 7.1.26); odd extension by the caller.
#[inline]
fn erf_pos(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    1.0 - poly * (-x * x).exp()
}

/// `Φ(x)`, the standard normal CDF.
#[inline]
fn cdf(x: f32) -> f32 {
    let z = x * std::f32::consts::FRAC_1_SQRT_2;
    let e = erf_pos(z.abs());
    0.5 * (1.0 + if z < 0.0 { -e } else { e })
}

fn map(x: &CpuStorage, l: &Layout, f: impl Fn(f32) -> f32 + Sync) -> Result<(CpuStorage, Shape)> {
    let v = x.as_slice::<f32>()?;
    let v = match l.contiguous_offsets() {
        Some((a, b)) => &v[a..b],
        None => candle_core::bail!("gelu: non-contiguous input"),
    };
    let mut out = vec![0f32; v.len()];
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        // On rayon's pool (candle's, sized by RAYON_NUM_THREADS), in chunks of 64k values.
        let chunk = 1 << 16;
        out.par_chunks_mut(chunk).zip(v.par_chunks(chunk)).for_each(|(o, i)| o.iter_mut().zip(i).for_each(|(o, &x)| *o = f(x)));
    }
    #[cfg(target_arch = "wasm32")]
    out.iter_mut().zip(v).for_each(|(o, &x)| *o = f(x));
    Ok((CpuStorage::F32(out), l.shape().clone()))
}

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu-erf"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        map(s, l, |x| x * cdf(x))
    }
    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op1_no_bwd(&GeluGrad)?.mul(grad)?))
    }
}

/// `d/dx x Φ(x) = Φ(x) + x φ(x)`.
struct GeluGrad;

impl CustomOp1 for GeluGrad {
    fn name(&self) -> &'static str {
        "gelu-erf-grad"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let inv_sqrt_2pi = 0.398_942_3_f32;
        map(s, l, |x| cdf(x) + x * inv_sqrt_2pi * (-0.5 * x * x).exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn matches_candles_gelu_erf_and_its_gradient() {
        let v: Vec<f32> = (0..4001).map(|i| (i as f32 - 2000.0) / 200.0).collect();
        let x = Var::from_tensor(&Tensor::from_vec(v, 4001, &Device::Cpu).unwrap()).unwrap();
        let (a, b) = (gelu(&x).unwrap(), x.gelu_erf().unwrap());
        let d = (&a - &b).unwrap().abs().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(d < 1e-6, "forward differs by {d}");
        let ga = a.sum_all().unwrap().backward().unwrap();
        let gb = b.sum_all().unwrap().backward().unwrap();
        let (ga, gb) = (ga.get(x.as_tensor()).unwrap(), gb.get(x.as_tensor()).unwrap());
        let d = (ga - gb).unwrap().abs().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(d < 1e-5, "gradient differs by {d}");
    }

    /// Closed forms: GELU(0) = 0, GELU'(0) = 1/2, GELU(x) → x and GELU(-x) → 0 for large x,
    /// and Φ(1) = 0.841344746 (tables).
    #[test]
    fn closed_forms() {
        let x = Tensor::new(&[0f32, 1.0, 8.0, -8.0], &Device::Cpu).unwrap();
        let y = gelu(&x).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(y[0], 0.0);
        assert!((y[1] - 0.841_344_7).abs() < 2e-7, "{}", y[1]);
        assert!((y[2] - 8.0).abs() < 1e-6 && y[3].abs() < 1e-6, "{y:?}");
        let g = Tensor::new(&[0f32], &Device::Cpu).unwrap().apply_op1_no_bwd(&GeluGrad).unwrap().to_vec1::<f32>().unwrap();
        assert!((g[0] - 0.5).abs() < 2e-7, "{}", g[0]);
    }
}
