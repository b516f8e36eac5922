//! In-place element-wise kernels (`eltwise.wgsl`).
use super::matmul::Act;
use super::{f, u};
use crate::gpu::{groups_1d, Gpu, Result};

pub const NAME: &str = "eltwise";
pub const SRC: &str = concat!(include_str!("common.wgsl"), include_str!("eltwise.wgsl"));

/// `y[y_off + i] += b[b_off + i % nb]` for `i < n`.
pub fn add_bcast(gpu: &Gpu, y: &wgpu::Buffer, y_off: usize, n: usize, b: &wgpu::Buffer, b_off: usize, nb: usize) -> Result<()> {
    gpu.dispatch((NAME, "add_bcast"), &[u(n)?, u(nb)?, u(b_off)?, u(y_off)?, 0, 0, 0, 0], &[y, b], groups_1d(n))
}

/// `y[y_off + i] = act(y[y_off + i])`.
pub fn activate(gpu: &Gpu, y: &wgpu::Buffer, y_off: usize, n: usize, act: Act) -> Result<()> {
    gpu.dispatch((NAME, "unary"), &[u(n)?, 0, 0, u(y_off)?, act as u32, 0, 0, 0], &[y], groups_1d(n))
}

/// `y[y_off + i] = clamp(y[y_off + i], lo, hi)`.
pub fn clamp(gpu: &Gpu, y: &wgpu::Buffer, y_off: usize, n: usize, lo: f32, hi: f32) -> Result<()> {
    gpu.dispatch((NAME, "unary"), &[u(n)?, 0, 0, u(y_off)?, 4, f(lo), f(hi), 0], &[y], groups_1d(n))
}
