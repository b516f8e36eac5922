//! SAM 2.1's FPN neck on the GPU, as ruac-core's `model/neck.rs` (`image_encoder.py`
//! `FpnNeck`): lateral 1x1 convolutions and nearest-neighbour top-down sums.
use ruac_core::model::config::Sam2Config;

use crate::error::Result;
use crate::gpu::{GBuf, Gpu};
use crate::hiera::StageOutput;
use crate::kernels::layout::up_nearest_add;
use crate::kernels::matmul::Act;
use crate::layers::Lin;
use crate::loader::Weights;

/// One FPN level: `h x w x d_model`.
pub struct Level {
    pub buf: GBuf,
    pub h: usize,
    pub w: usize,
}

/// `FpnNeck` (`image_encoder.neck`).
pub struct FpnNeck {
    /// `convs[0]` takes the lowest-resolution trunk output, as in the checkpoint.
    convs: Vec<Lin>,
    top_down_levels: Vec<usize>,
    d_model: usize,
}

impl FpnNeck {
    pub fn new(w: &Weights, cfg: &Sam2Config) -> Result<Self> {
        let n = cfg.hiera.stage_dims().len();
        let convs = (0..n).map(|i| w.lin(format!("convs.{i}.conv"))).collect::<Result<Vec<_>>>()?;
        Ok(Self { convs, top_down_levels: cfg.fpn_top_down_levels.clone(), d_model: cfg.d_model })
    }

    /// `trunk`: stage outputs, high resolution first. Returns one level per stage, same order.
    pub fn forward(&self, gpu: &Gpu, trunk: &[StageOutput]) -> Result<Vec<Level>> {
        let n = trunk.len() - 1;
        let mut levels: Vec<Option<Level>> = (0..trunk.len()).map(|_| None).collect();
        let mut prev: Option<usize> = None;
        for i in (0..=n).rev() {
            let StageOutput { buf, h, w } = &trunk[i];
            let lateral = self.convs[n - i].forward(gpu, buf, h * w, Act::None)?;
            if let (Some(p), true) = (prev, self.top_down_levels.contains(&i)) {
                if let Some(coarser) = &levels[p] {
                    up_nearest_add(gpu, &coarser.buf, &lateral, *h, *w, self.d_model)?;
                }
            }
            levels[i] = Some(Level { buf: lateral, h: *h, w: *w });
            prev = Some(i);
        }
        Ok(levels.into_iter().flatten().collect())
    }
}
