//! FPN neck of SAM 2.1 (`sam2/modeling/backbones/image_encoder.py`, class `FpnNeck`) and the
//! `ImageEncoder` wrapper that drops the lowest-resolution level (`scalp`).
use candle_core::{Module, Result, Tensor};
use candle_nn::{conv2d, Conv2d, Conv2dConfig, VarBuilder};

use super::config::Sam2Config;
use super::hiera::HieraTrunk;

/// Lateral 1x1 convolutions plus nearest-neighbour top-down fusion (sum) on the levels in
/// `fpn_top_down_levels`. The sine positional encodings of the reference only feed the
/// memory attention (video) and are not computed here.
#[derive(Debug, Clone)]
pub struct FpnNeck {
    /// `convs[0]` takes the lowest-resolution trunk output, as in the checkpoint.
    convs: Vec<Conv2d>,
    top_down_levels: Vec<usize>,
}

impl FpnNeck {
    pub fn new(backbone_channels_low_to_high: &[usize], d_model: usize, top_down_levels: &[usize], vb: VarBuilder) -> Result<Self> {
        let convs = backbone_channels_low_to_high
            .iter()
            .enumerate()
            .map(|(i, &c)| conv2d(c, d_model, 1, Conv2dConfig::default(), vb.pp(format!("convs.{i}.conv"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { convs, top_down_levels: top_down_levels.to_vec() })
    }

    /// `xs`: trunk outputs, high resolution first. Returns one map per level, same order.
    pub fn forward(&self, xs: &[Tensor]) -> Result<Vec<Tensor>> {
        let n = self.convs.len() - 1;
        let mut out: Vec<Option<Tensor>> = vec![None; xs.len()];
        let mut prev: Option<Tensor> = None;
        for i in (0..=n).rev() {
            let lateral = self.convs[n - i].forward(&xs[i])?;
            let fused = match (&prev, self.top_down_levels.contains(&i)) {
                (Some(p), true) => {
                    let (_, _, h, w) = p.dims4()?;
                    (lateral + p.upsample_nearest2d(2 * h, 2 * w)?)?
                }
                _ => lateral,
            };
            out[i] = Some(fused.clone());
            prev = Some(fused);
        }
        Ok(out.into_iter().flatten().collect())
    }
}

/// `ImageEncoder`: trunk then neck, keeping `levels - scalp` feature maps.
#[derive(Debug, Clone)]
pub struct ImageEncoder {
    pub trunk: HieraTrunk,
    pub neck: FpnNeck,
    scalp: usize,
}

impl ImageEncoder {
    pub fn new(cfg: &Sam2Config, vb: VarBuilder) -> Result<Self> {
        let trunk = HieraTrunk::new(&cfg.hiera, cfg.image_size, vb.pp("trunk"))?;
        let mut chans = cfg.hiera.stage_dims();
        chans.reverse();
        let neck = FpnNeck::new(&chans, cfg.d_model, &cfg.fpn_top_down_levels, vb.pp("neck"))?;
        Ok(Self { trunk, neck, scalp: cfg.scalp })
    }

    /// Returns `(trunk outputs, FPN levels after scalp)`, high resolution first.
    pub fn forward_with_trunk(&self, xs: &Tensor) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
        let trunk = self.trunk.forward(xs)?;
        let mut fpn = self.neck.forward(&trunk)?;
        fpn.truncate(fpn.len() - self.scalp);
        Ok((trunk, fpn))
    }

    pub fn forward(&self, xs: &Tensor) -> Result<Vec<Tensor>> {
        Ok(self.forward_with_trunk(xs)?.1)
    }
}
