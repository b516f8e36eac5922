//! WGSL kernels, each file beside the Rust that dispatches it. Every file is prefixed with
//! `common.wgsl` (erf/GELU, activations, flat indexing, binary entropy).
use crate::gpu::{Gpu, Limits, Result};

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

/// Every kernel file with its entry points, compiled by [`Gpu::new`].
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

impl Gpu {
    /// Requests an adapter (high performance first) and a device with the limits the
    /// kernels need, then compiles every kernel of [`ALL`] (and the f16-weight matmul where
    /// the adapter offers `shader-f16`).
    pub async fn new() -> Result<Self> {
        Self::with_limits(Limits::Adapter).await
    }

    /// [`Gpu::new`] asking for the adapter's largest bindings or only WebGPU's defaults.
    pub async fn with_limits(limits: Limits) -> Result<Self> {
        Self::with_adapter(limits, None).await
    }

    /// [`Gpu::with_limits`] on adapter `index` of [`crate::gpu::list_adapters`] (`None`: the
    /// one wgpu prefers).
    pub async fn with_adapter(limits: Limits, index: Option<usize>) -> Result<Self> {
        let mut gpu = Gpu::open(limits, index).await?;
        for (name, src, entries) in ALL {
            gpu.compile(name, src, entries).await?;
        }
        if gpu.f16_available() {
            let src = matmul::src_f16();
            gpu.compile(matmul::NAME_F16, &src, &["matmul", "matmul_direct"]).await?;
        }
        Ok(gpu)
    }
}

/// `f32` parameter as the `u32` bits the uniform structs read.
pub(crate) fn f(x: f32) -> u32 {
    x.to_bits()
}

pub(crate) fn u(x: usize) -> Result<u32> {
    u32::try_from(x).map_err(|_| crate::error::GpuError::Internal(format!("index {x} does not fit in 32 bits")))
}
