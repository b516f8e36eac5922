//! `exp` for the CPU kernels' hot loops (softmax, fused attention): Cephes' `expf`
//! (range reduction by ln 2 in two parts, a degree-5 polynomial, the exponent put in by
//! bit arithmetic), written without branches so that a loop of it vectorises; `f32::exp`
//! is a call into libm per value. Within 2 ulp of the exact value (tested against f64).
//! Inputs below -87.3 give 2^-126 instead of a smaller number or 0, which no softmax can tell.
//!
//! With it, the row reductions a softmax needs, in eight lanes: a float sum or maximum
//! carried in one variable must keep its order and never vectorises.

/// `e^x` for finite `x` up to 88.7 (larger inputs saturate at about 3.4e38).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 = LN2_HI + LN2_LO, LN2_HI exact in few bits so that n · LN2_HI is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    // Comparisons and selects, not f32::clamp / f32::max (whose NaN rules block vectors).
    let x = if x < -87.336_55 { -87.336_55 } else { x };
    let x = if x > 88.722_83 { 88.722_83 } else { x };
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1) * r
        + 0.5;
    let y = p * r * r + r + 1.0;
    // A NaN input stays NaN through y; its n is replaced so that the conversion is defined.
    let n = if n.is_nan() { 0.0 } else { n };
    // SAFETY: n is an integer in [-126, 128] (x was clamped), exactly representable in i32.
    y * f32::from_bits(((unsafe { n.to_int_unchecked::<i32>() } + 127) << 23) as u32)
}

/// `o[j] = e^(x[j] - shift)`; returns the sum of `o`.
#[inline]
pub fn exp_shifted(x: &[f32], o: &mut [f32], shift: f32) -> f32 {
    let n = o.len().min(x.len());
    o[..n].copy_from_slice(&x[..n]);
    exp_shifted_in_place(&mut o[..n], shift)
}

/// `x[j] = e^(x[j] - shift)`; returns the sum.
#[inline]
pub fn exp_shifted_in_place(x: &mut [f32], shift: f32) -> f32 {
    vectorised(|| exp_shifted_portable(x, shift))
}

/// Runs `f` compiled for AVX2 where the CPU has it (checked at run time: the build targets
/// baseline x86-64), so that the loops inlined into it take eight floats per instruction;
/// elsewhere, as it is. `f`'s loops should be `#[inline(always)]` code to benefit.
#[inline(always)]
pub fn vectorised<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { avx2(f) };
    }
    f()
}

#[inline(always)]
fn exp_shifted_portable(x: &mut [f32], shift: f32) -> f32 {
    for v in x.iter_mut() {
        *v = exp(*v - shift);
    }
    sum(x)
}

/// The sum, in eight interleaved partial sums.
#[inline(always)]
pub fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + rest
}

/// The largest value (`-inf` for an empty slice), in eight lanes.
#[inline]
pub fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder().iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = a.max(v);
        }
    }
    acc.iter().copied().fold(rest, f32::max)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reductions_by_hand() {
        let x: Vec<f32> = (0..21).map(|i| i as f32 - 7.0).collect();
        assert_eq!(super::sum(&x), (0..21).map(|i| i as f32 - 7.0).sum::<f32>());
        assert_eq!(super::max(&x), 13.0);
        assert_eq!(super::max(&x[..3]), -5.0);
        assert_eq!(super::max(&[]), f32::NEG_INFINITY);
        let mut o = vec![0f32; 3];
        let z = super::exp_shifted(&[0.0, 1.0, 2.0], &mut o, 2.0);
        let want = [(-2f32).exp(), (-1f32).exp(), 1.0];
        assert!(o.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-7));
        assert!((z - want.iter().sum::<f32>()).abs() < 1e-6);
    }

    #[test]
    fn within_two_ulp_of_f64() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = super::exp(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.001_37;
        }
        // 2 ulp of f32 is 2^-22 relative.
        assert!(worst < 2.4e-7, "largest relative error {worst:e}");
        assert_eq!(super::exp(0.0), 1.0);
        assert!((super::exp(1.0) - std::f32::consts::E).abs() <= f32::EPSILON * 3.0);
        // Far below the range: tiny and positive, not NaN.
        let tiny = super::exp(-1e4);
        assert!(tiny > 0.0 && tiny < 1.2e-38);
        assert!(super::exp(f32::NAN).is_nan());
    }
}
