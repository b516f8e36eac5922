//! The deformation attacker ψ_d (paper §3.3; `ruac/core/attackers/deform.py`, DG-Font-style
//! flow): SAM 2's memory-encoder mask downsampler, feature projection and fuser (copied from
//! the checkpoint and frozen) turn the detached clean features plus one object's mask into a
//! map from which a small offset CNN predicts a bounded, per-object, zero-mean offset field.
use candle_core::{Module, Result, Tensor, D};
use candle_nn::{conv2d, Conv2d, Conv2dConfig, VarBuilder};

use super::grl::grad_reverse;
use super::warp::{resize_bilinear, warp_bilinear};
use crate::model::common::{linear, LayerNorm2d, Linear};
use crate::model::dwconv::depthwise_conv2d;
use crate::model::gelu::gelu;

/// SAM 2's `MaskDownSampler` (`sam2/modeling/memory_encoder.py`): `log2(stride)` blocks of
/// conv 3×3 stride 2 → LayerNorm2d → GELU, each multiplying channels by 4, then a 1×1 conv.
#[derive(Debug, Clone)]
pub struct MaskDownSampler {
    blocks: Vec<(Conv2d, LayerNorm2d)>,
    out: Conv2d,
}

impl MaskDownSampler {
    pub fn new(total_stride: usize, embed_dim: usize, vb: VarBuilder) -> Result<Self> {
        let layers = total_stride.trailing_zeros() as usize;
        let cfg = Conv2dConfig {
            stride: 2,
            padding: 1,
            ..Default::default()
        };
        let (mut blocks, mut c) = (vec![], 1);
        for i in 0..layers {
            let vbe = vb.pp("encoder");
            blocks.push((
                conv2d(c, c * 4, 3, cfg, vbe.pp(3 * i))?,
                LayerNorm2d::new(c * 4, vbe.pp(3 * i + 1))?,
            ));
            c *= 4;
        }
        let out = conv2d(
            c,
            embed_dim,
            1,
            Default::default(),
            vb.pp("encoder").pp(3 * layers),
        )?;
        Ok(Self { blocks, out })
    }
}

impl Module for MaskDownSampler {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        for (c, n) in &self.blocks {
            x = gelu(&n.forward(&c.forward(&x)?)?)?;
        }
        self.out.forward(&x)
    }
}

/// ConvNeXt block of SAM 2's fuser (`CXBlock`): depthwise 7×7 → LayerNorm2d → 1×1 MLP (×4,
/// GELU) → layer scale γ, with a residual.
#[derive(Debug, Clone)]
pub struct CxBlock {
    dwconv: Conv2d,
    norm: LayerNorm2d,
    pw1: Linear,
    pw2: Linear,
    gamma: Tensor,
}

impl CxBlock {
    pub fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            dwconv: conv2d(
                dim,
                dim,
                7,
                Conv2dConfig {
                    padding: 3,
                    groups: dim,
                    ..Default::default()
                },
                vb.pp("dwconv"),
            )?,
            norm: LayerNorm2d::new(dim, vb.pp("norm"))?,
            pw1: linear(dim, 4 * dim, vb.pp("pwconv1"))?,
            pw2: linear(4 * dim, dim, vb.pp("pwconv2"))?,
            gamma: vb.get(dim, "gamma")?,
        })
    }
}

impl Module for CxBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // candle would run the 7x7 depthwise convolution one channel at a time.
        let c = self.dwconv.weight().dim(0)?;
        let dw = depthwise_conv2d(x, self.dwconv.weight(), 1, 3)?;
        let dw = match self.dwconv.bias() {
            Some(b) => dw.broadcast_add(&b.reshape((1, c, 1, 1))?)?,
            None => dw,
        };
        let y = self.norm.forward(&dw)?.permute((0, 2, 3, 1))?;
        let y = self
            .pw2
            .forward(&gelu(&self.pw1.forward(&y)?)?)?
            .broadcast_mul(&self.gamma)?;
        x + y.permute((0, 3, 1, 2))?
    }
}

/// Instance norm without affine parameters over each channel's spatial map.
fn instance_norm(x: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let f = x.reshape((b, c, h * w))?;
    let mean = f.mean_keepdim(D::Minus1)?;
    let fc = f.broadcast_sub(&mean)?;
    let var = fc.sqr()?.mean_keepdim(D::Minus1)?;
    fc.broadcast_div(&(var + 1e-5)?.sqrt()?)?
        .reshape((b, c, h, w))
}

#[derive(Debug, Clone)]
pub struct DeformAttacker {
    mask_downsampler: MaskDownSampler,
    pix_feat_proj: Conv2d,
    fuser: Vec<CxBlock>,
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    pub eps: f64,
}

impl DeformAttacker {
    /// `vb` is the root builder: the frozen parts under `memory_encoder.`, the offset CNN under
    /// `deform_attacker.offset_net.`. `stride` is the image-to-feature ratio (16 in SAM 2.1).
    pub fn new(d_model: usize, stride: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let me = vb.pp("memory_encoder");
        let on = vb.pp("deform_attacker.offset_net");
        let c3 = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        Ok(Self {
            mask_downsampler: MaskDownSampler::new(stride, d_model, me.pp("mask_downsampler"))?,
            pix_feat_proj: conv2d(
                d_model,
                d_model,
                1,
                Default::default(),
                me.pp("pix_feat_proj"),
            )?,
            fuser: (0..2)
                .map(|i| CxBlock::new(d_model, me.pp("fuser.layers").pp(i)))
                .collect::<Result<_>>()?,
            conv1: conv2d(d_model, 128, 3, c3, on.pp("conv1"))?,
            conv2: conv2d(128, 64, 3, c3, on.pp("conv2"))?,
            conv3: conv2d(64, 2, 3, c3, on.pp("conv3"))?,
            eps,
        })
    }

    /// Bounded offsets in `[-0.5, 0.5]` on the feature grid, `K, 2, g, g`, one field per
    /// object, made zero-mean inside each object (no global translation). `feat` is the
    /// detached clean `1, D, g, g` feature map; `masks` are `K, 1, S, S` (0/1).
    pub fn offsets(&self, feat: &Tensor, masks: &Tensor) -> Result<Tensor> {
        let k = masks.dim(0)?;
        let (_, d, g, _) = feat.dims4()?;
        let m = self.mask_downsampler.forward(masks)?; // K, D, g, g
        let x = self
            .pix_feat_proj
            .forward(feat)?
            .broadcast_as((k, d, g, g))?
            .contiguous()?
            .add(&m)?;
        let mut x = x;
        for b in &self.fuser {
            x = b.forward(&x)?;
        }
        let x = self.conv1.forward(&instance_norm(&x)?)?;
        let x = self.conv2.forward(&instance_norm(&x)?.relu()?)?;
        let x = self.conv3.forward(&instance_norm(&x)?.relu()?)?;
        let off = candle_nn::ops::sigmoid(&grad_reverse(&x)?)?.affine(1.0, -0.5)?; // K,2,g,g
                                                                                   // Zero mean inside each object's (downsampled) mask.
        let mg = resize_bilinear(masks, g, g)?
            .gt(0.5)?
            .to_dtype(off.dtype())?; // K,1,g,g
        let n = mg.sum_keepdim((2, 3))?.clamp(1.0, f64::INFINITY)?;
        let mean = off
            .broadcast_mul(&mg)?
            .sum_keepdim((2, 3))?
            .broadcast_div(&n)?;
        off.broadcast_sub(&mean)
    }

    /// Pixel offsets `K, 2, S, S`: the grid offsets upsampled, times `2ε · (S / g)`.
    pub fn pixel_offsets(&self, off: &Tensor, s: usize) -> Result<Tensor> {
        let g = off.dim(2)?;
        resize_bilinear(off, s, s)? * (2.0 * self.eps * s as f64 / g as f64)
    }
}

/// Warps each object (its pixels and its mask) by its own field and composites the result
/// over the image with every object removed, averaging where warped objects overlap;
/// uncovered pixels become 0 (the dataset mean in normalised space). Returns the image and
/// the warped soft masks `K, S, S`.
pub fn warp_objects(img: &Tensor, masks: &Tensor, pix_off: &Tensor) -> Result<(Tensor, Tensor)> {
    let k = masks.dim(0)?;
    let union = masks.max_keepdim(0)?.squeeze(0)?; // 1,S,S
    let base = img.broadcast_mul(&union.affine(-1.0, 1.0)?)?;
    let mut num: Option<Tensor> = None;
    let mut den: Option<Tensor> = None;
    let mut warped = vec![];
    for i in 0..k {
        let m = masks.get(i)?; // 1,S,S
        let dx = pix_off.get(i)?.get(0)?;
        let dy = pix_off.get(i)?.get(1)?;
        let obj = warp_bilinear(&img.broadcast_mul(&m)?, &dx, &dy)?;
        let wm = warp_bilinear(&m, &dx, &dy)?;
        num = Some(match num {
            None => obj,
            Some(t) => (t + obj)?,
        });
        den = Some(match den {
            None => wm.clone(),
            Some(t) => (t + &wm)?,
        });
        warped.push(wm.squeeze(0)?);
    }
    let (Some(num), Some(den)) = (num, den) else {
        return Ok((img.clone(), masks.squeeze(1)?));
    };
    let cover = den.clamp(0.0, 1.0)?;
    let out = (base.broadcast_mul(&cover.affine(-1.0, 1.0)?)?
        + num.broadcast_div(&den.clamp(1.0, f64::INFINITY)?)?)?;
    Ok((out, Tensor::stack(&warped, 0)?))
}
