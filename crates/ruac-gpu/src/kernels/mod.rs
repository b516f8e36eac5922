//! WGSL kernels, each file beside the Rust that dispatches it. Every file is prefixed with
//! `common.wgsl` (erf/GELU, activations, flat indexing, binary entropy).
pub mod attention;
pub mod bayes;
pub mod colormap;
pub mod conv;
pub mod eltwise;
pub mod layernorm;
pub mod layout;
pub mod matmul;
pub mod preprocess;
pub mod prompt;

/// Every kernel file with its entry points, compiled by `Gpu::new`.
pub const ALL: &[(&str, &str, &[&str])] = &[
    (matmul::NAME, matmul::SRC, &["matmul", "matmul_direct"]),
    (attention::NAME, attention::SRC, &["attention", "attention_direct", "rel_pos"]),
    (layernorm::NAME, layernorm::SRC, &["layernorm", "layernorm_rows"]),
    (eltwise::NAME, eltwise::SRC, &["add_bcast", "unary"]),
    (conv::NAME, conv::SRC, &["conv2d", "conv_t2x2", "dwconv", "im2col"]),
    (layout::NAME, layout::SRC, &["pool2x2", "win_part", "win_unpart_add", "up_nearest_add", "bilinear"]),
    (preprocess::NAME, preprocess::SRC, &["resize_w", "resize_h"]),
    (prompt::NAME, prompt::SRC, &["points", "grid"]),
    (bayes::NAME, bayes::SRC, &["local_z", "global_w", "mc_weights", "mc_pixel", "analytic", "entropy"]),
    (colormap::NAME, colormap::SRC, &["colormap"]),
];

/// `f32` parameter as the `u32` bits the uniform structs read.
pub(crate) fn f(x: f32) -> u32 {
    x.to_bits()
}

pub(crate) fn u(x: usize) -> crate::gpu::Result<u32> {
    u32::try_from(x).map_err(|_| crate::GpuError::Internal(format!("index {x} does not fit in 32 bits")))
}
