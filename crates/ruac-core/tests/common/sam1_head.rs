//! A Bayesian pixel head's tensors for SAM 1 decoder tests, shared by ruac-core's
//! `parity_sam1.rs` and ruac-gpu's (which includes this file by path).
use std::collections::HashMap;

use candle_core::{Device, Tensor};

/// Deterministic, sign-mixed values for the head's weights.
pub fn filled(dims: &[usize], phase: f32, scale: f32) -> Tensor {
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n).map(|i| scale * ((i as f32) * 0.7 + phase).sin()).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

/// Seeded-looking values for a Bayesian pixel head (`c` pixel channels, token width `d`)
/// under the SAM 1 decoder's name `mask_decoder.pixel_bndl`.
pub fn bayes_head_tensors(c: usize, d: usize) -> HashMap<String, Tensor> {
    [
        ("linear_add.0.weight", filled(&[c, c], 0.1, 1.0)),
        ("linear_add.0.bias", filled(&[c], 0.5, 0.3)),
        ("linear_k.0.weight", filled(&[1, c], 0.9, 0.5)),
        ("linear_k.0.bias", filled(&[1], 0.2, 1.0)),
        ("linear_add_w.weight", filled(&[2 * c, d], 1.3, 0.5)),
        ("linear_add_w.bias", filled(&[2 * c], 2.1, 0.2)),
        ("linear_kw.0.weight", filled(&[1, 2], 0.4, 0.5)),
        ("linear_kw.0.bias", filled(&[1], 1.7, 1.0)),
        ("linear.bias", Tensor::new(&[0.3f32, 0.8], &Device::Cpu).unwrap()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("mask_decoder.pixel_bndl.{k}"), v))
    .collect()
}
