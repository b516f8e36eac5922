//! Shared helpers of the ruac-gpu tests.
#![allow(dead_code)]
use std::path::PathBuf;

use candle_core::{DType, Tensor};
use ruac_gpu::gpu::Gpu;

/// The committed fixtures of ruac-core.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ruac-core/tests/fixtures").join(name)
}

/// A device, or a failure that says what to install: a test that skips proves nothing.
pub fn gpu() -> Gpu {
    match pollster::block_on(Gpu::new()) {
        Ok(g) => g,
        Err(e) => panic!("ruac-gpu tests need a GPU adapter (CI uses Mesa's software Vulkan driver: apt-get install mesa-vulkan-drivers): {e}"),
    }
}

pub fn to_vec(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max)
}

#[track_caller]
pub fn assert_close(name: &str, ours: &[f32], reference: &[f32], tol: f32) {
    let d = max_abs_diff(ours, reference);
    assert!(d <= tol, "{name}: max abs error {d} exceeds {tol}");
    assert!(ours.iter().all(|v| v.is_finite()), "{name}: non-finite values");
}

/// Deterministic pseudo-random values in [-1, 1).
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}
