//! Hiera trunk of SAM 2.1 (`sam2/modeling/backbones/hieradet.py`): a hierarchical ViT with
//! windowed attention, 2x2 query pooling between stages and a windowed absolute positional
//! embedding. Activations are kept channels-last (`B, H, W, C`) as in the reference.
use super::common::LayerNorm;
use candle_core::{Module, Result, Tensor};
use candle_nn::{conv2d, Conv2d, Conv2dConfig, VarBuilder};

use super::common::{layer_norm_eps, linear, sdpa, Activation, Linear, Mlp};
use super::config::HieraConfig;

/// `PatchEmbed`: a 7x7 stride-4 convolution, output channels-last.
#[derive(Debug, Clone)]
pub struct PatchEmbed {
    proj: Conv2d,
}

impl PatchEmbed {
    pub fn new(embed_dim: usize, vb: VarBuilder) -> Result<Self> {
        let cfg = Conv2dConfig {
            padding: 3,
            stride: 4,
            ..Default::default()
        };
        Ok(Self {
            proj: conv2d(3, embed_dim, 7, cfg, vb.pp("proj"))?,
        })
    }
}

impl Module for PatchEmbed {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.proj.forward(xs)?.permute((0, 2, 3, 1))
    }
}

/// 2x2 max pooling of a channels-last tensor (`do_pool` in the reference).
fn pool_2x2(x: &Tensor) -> Result<Tensor> {
    if x.track_op() {
        // While training: candle's max_pool2d backward multiplies the gradient by the share of
        // maxima in each window (1/4 for a unique maximum) where it should divide by their
        // count, so the encoder's stage transitions got a quarter of their gradient. Two max
        // reductions over a reshape pool the same values and have an exact backward.
        let (b, h, w, c) = x.dims4()?;
        let (h2, w2) = (h / 2, w / 2);
        let x = x.narrow(1, 0, 2 * h2)?.narrow(2, 0, 2 * w2)?.contiguous()?;
        return x.reshape((b, h2, 2, w2, 2, c))?.max(4)?.max(2);
    }
    x.permute((0, 3, 1, 2))?
        .max_pool2d(2)?
        .permute((0, 2, 3, 1))
}

/// Splits `B, H, W, C` into `B*nW, ws, ws, C` windows, zero-padding H and W up to a
/// multiple of `ws`. Returns the padded size.
pub fn window_partition(x: &Tensor, ws: usize) -> Result<(Tensor, (usize, usize))> {
    let (b, h, w, c) = x.dims4()?;
    let pad_h = (ws - h % ws) % ws;
    let pad_w = (ws - w % ws) % ws;
    let x = if pad_h > 0 {
        x.pad_with_zeros(1, 0, pad_h)?
    } else {
        x.clone()
    };
    let x = if pad_w > 0 {
        x.pad_with_zeros(2, 0, pad_w)?
    } else {
        x
    };
    let (hp, wp) = (h + pad_h, w + pad_w);
    let windows = x
        .reshape((b, hp / ws, ws, wp / ws, ws, c))?
        .permute((0, 1, 3, 2, 4, 5))?
        .contiguous()?
        .reshape((b * (hp / ws) * (wp / ws), ws, ws, c))?;
    Ok((windows, (hp, wp)))
}

/// Inverse of [`window_partition`], cropping the padding away.
pub fn window_unpartition(
    windows: &Tensor,
    ws: usize,
    (hp, wp): (usize, usize),
    (h, w): (usize, usize),
) -> Result<Tensor> {
    let c = windows.dim(3)?;
    let b = windows.dim(0)? / (hp * wp / ws / ws);
    let x = windows
        .reshape((b, hp / ws, wp / ws, ws, ws, c))?
        .permute((0, 1, 3, 2, 4, 5))?
        .contiguous()?
        .reshape((b, hp, wp, c))?;
    if hp > h || wp > w {
        x.narrow(1, 0, h)?.narrow(2, 0, w)?.contiguous()
    } else {
        Ok(x)
    }
}

/// `MultiScaleAttention`: attention whose queries may be max-pooled 2x2 (stage transitions).
#[derive(Debug, Clone)]
pub struct MultiScaleAttention {
    qkv: Linear,
    proj: Linear,
    num_heads: usize,
    dim_out: usize,
    q_pool: bool,
}

impl MultiScaleAttention {
    pub fn new(
        dim: usize,
        dim_out: usize,
        num_heads: usize,
        q_pool: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            qkv: linear(dim, dim_out * 3, vb.pp("qkv"))?,
            proj: linear(dim_out, dim_out, vb.pp("proj"))?,
            num_heads,
            dim_out,
            q_pool,
        })
    }
}

impl Module for MultiScaleAttention {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, h, w, _) = x.dims4()?;
        let hd = self.dim_out / self.num_heads;
        let qkv = self
            .qkv
            .forward(x)?
            .reshape((b, h * w, 3, self.num_heads, hd))?;
        let mut q = qkv.narrow(2, 0, 1)?.squeeze(2)?;
        let k = qkv.narrow(2, 1, 1)?.squeeze(2)?;
        let v = qkv.narrow(2, 2, 1)?.squeeze(2)?;
        let (mut h, mut w) = (h, w);
        if self.q_pool {
            let pooled = pool_2x2(&q.reshape((b, h, w, self.dim_out))?)?;
            (h, w) = (pooled.dim(1)?, pooled.dim(2)?);
            q = pooled.reshape((b, h * w, self.num_heads, hd))?;
        }
        let out = sdpa(
            &q.transpose(1, 2)?,
            &k.transpose(1, 2)?,
            &v.transpose(1, 2)?,
        )?;
        let out = out.transpose(1, 2)?.reshape((b, h, w, self.dim_out))?;
        self.proj.forward(&out)
    }
}

/// `MultiScaleBlock`: pre-norm (windowed) attention and MLP with residuals; when the width
/// changes the shortcut is projected (from the normalised input) and pooled.
#[derive(Debug, Clone)]
pub struct MultiScaleBlock {
    norm1: LayerNorm,
    attn: MultiScaleAttention,
    norm2: LayerNorm,
    mlp: Mlp,
    proj: Option<Linear>,
    window_size: usize,
    q_stride: bool,
}

impl MultiScaleBlock {
    pub fn new(
        dim: usize,
        dim_out: usize,
        num_heads: usize,
        mlp_ratio: f64,
        q_stride: bool,
        window_size: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let hidden = (dim_out as f64 * mlp_ratio) as usize;
        Ok(Self {
            norm1: layer_norm_eps(dim, 1e-6, vb.pp("norm1"))?,
            attn: MultiScaleAttention::new(dim, dim_out, num_heads, q_stride, vb.pp("attn"))?,
            norm2: layer_norm_eps(dim_out, 1e-6, vb.pp("norm2"))?,
            mlp: Mlp::new(
                vb.pp("mlp"),
                dim_out,
                hidden,
                dim_out,
                2,
                Activation::Gelu,
                false,
            )?,
            proj: if dim != dim_out {
                Some(linear(dim, dim_out, vb.pp("proj"))?)
            } else {
                None
            },
            window_size,
            q_stride,
        })
    }
}

impl Module for MultiScaleBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut shortcut = x.clone();
        let x = self.norm1.forward(x)?;
        if let Some(proj) = &self.proj {
            shortcut = proj.forward(&x)?;
            if self.q_stride {
                shortcut = pool_2x2(&shortcut)?;
            }
        }
        let (h, w) = (x.dim(1)?, x.dim(2)?);
        let mut ws = self.window_size;
        let (x, mut pad_hw) = if ws > 0 {
            window_partition(&x, ws)?
        } else {
            (x, (h, w))
        };
        let x = self.attn.forward(&x)?;
        let (mut h, mut w) = (h, w);
        if self.q_stride {
            // Pooled queries shrink each window: un-partition on the halved grid.
            ws /= 2;
            (h, w) = (shortcut.dim(1)?, shortcut.dim(2)?);
            if ws > 0 {
                pad_hw = (h + (ws - h % ws) % ws, w + (ws - w % ws) % ws);
            }
        }
        let x = if self.window_size > 0 {
            window_unpartition(&x, ws, pad_hw, (h, w))?
        } else {
            x
        };
        let x = (shortcut + x)?;
        let y = self.mlp.forward(&self.norm2.forward(&x)?)?;
        x + y
    }
}

/// Bicubic interpolation of an NCHW grid, matching `F.interpolate(mode="bicubic",
/// align_corners=False)` (Keys kernel, A = -0.75, clamped borders). Used once at load time
/// for the background positional embedding.
pub fn bicubic_resize(
    data: &[f32],
    c: usize,
    ih: usize,
    iw: usize,
    oh: usize,
    ow: usize,
) -> Vec<f32> {
    const A: f32 = -0.75;
    fn weights(t: f32) -> [f32; 4] {
        let cc1 = |x: f32| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
        let cc2 = |x: f32| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
        [cc2(t + 1.0), cc1(t), cc1(1.0 - t), cc2(2.0 - t)]
    }
    fn taps(o: usize, isz: usize, osz: usize) -> ([usize; 4], [f32; 4]) {
        let scale = isz as f32 / osz as f32;
        let src = (o as f32 + 0.5) * scale - 0.5;
        let f = src.floor();
        let t = src - f;
        let f = f as i64;
        let idx = [-1i64, 0, 1, 2].map(|d| (f + d).clamp(0, isz as i64 - 1) as usize);
        (idx, weights(t))
    }
    let xt: Vec<_> = (0..ow).map(|x| taps(x, iw, ow)).collect();
    let yt: Vec<_> = (0..oh).map(|y| taps(y, ih, oh)).collect();
    let mut out = vec![0f32; c * oh * ow];
    for ch in 0..c {
        let src = &data[ch * ih * iw..(ch + 1) * ih * iw];
        for (oy, (yi, yw)) in yt.iter().enumerate() {
            for (ox, (xi, xw)) in xt.iter().enumerate() {
                let mut acc = 0f32;
                for r in 0..4 {
                    let row = &src[yi[r] * iw..];
                    let v = xw[0] * row[xi[0]]
                        + xw[1] * row[xi[1]]
                        + xw[2] * row[xi[2]]
                        + xw[3] * row[xi[3]];
                    acc += yw[r] * v;
                }
                out[ch * oh * ow + oy * ow + ox] = acc;
            }
        }
    }
    out
}

/// The Hiera trunk. `forward` returns the output of every stage (`B, C, H, W`), high
/// resolution first, as `return_interm_layers=True` does.
#[derive(Debug, Clone)]
pub struct HieraTrunk {
    patch_embed: PatchEmbed,
    /// Positional embedding for the configured input size, `1, H, W, C`.
    pos_embed: Tensor,
    blocks: Vec<MultiScaleBlock>,
    stage_ends: Vec<usize>,
}

impl HieraTrunk {
    pub fn new(cfg: &HieraConfig, image_size: usize, vb: VarBuilder) -> Result<Self> {
        let patch_embed = PatchEmbed::new(cfg.embed_dim, vb.pp("patch_embed"))?;
        let (bh, bw) = cfg.window_pos_embed_bkg_spatial_size;
        let ws0 = cfg.window_spec[0];
        let bkg = vb.get((1, cfg.embed_dim, bh, bw), "pos_embed")?;
        let win = vb.get((1, cfg.embed_dim, ws0, ws0), "pos_embed_window")?;
        let pos_embed = Self::pos_embed_for(&bkg, &win, image_size / 4)?;

        let blocks = cfg
            .blocks()
            .iter()
            .enumerate()
            .map(|(i, b)| {
                MultiScaleBlock::new(b.dim, b.dim_out, b.heads, cfg.mlp_ratio, b.q_stride, b.window, vb.pp(format!("blocks.{i}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let stage_ends = cfg.stage_ends();
        Ok(Self {
            patch_embed,
            pos_embed,
            blocks,
            stage_ends,
        })
    }

    /// `_get_pos_embed`: bicubic-resized background embedding plus the tiled window embedding.
    fn pos_embed_for(bkg: &Tensor, win: &Tensor, size: usize) -> Result<Tensor> {
        let (_, c, bh, bw) = bkg.dims4()?;
        let ws = win.dim(2)?;
        if size % ws != 0 {
            candle_core::bail!(
                "feature size {size} is not a multiple of the positional window {ws}"
            );
        }
        // The resize as a matrix (the responses to unit impulses), applied with a matmul, so
        // that training reaches `pos_embed` as PyTorch's F.interpolate does.
        let n_in = bh * bw;
        let mut impulses = vec![0f32; n_in * n_in];
        for i in 0..n_in {
            impulses[i * n_in + i] = 1.0;
        }
        let op = bicubic_resize(&impulses, n_in, bh, bw, size, size); // n_in x size²
        let op = Tensor::from_vec(op, (n_in, size * size), bkg.device())?.to_dtype(bkg.dtype())?;
        let up = bkg.reshape((c, n_in))?.matmul(&op)?.reshape((1, c, size, size))?;
        let tiled = win.repeat((1, 1, size / ws, size / ws))?;
        (up + tiled)?.permute((0, 2, 3, 1))?.contiguous()
    }

    pub fn forward(&self, xs: &Tensor) -> Result<Vec<Tensor>> {
        let x = self.patch_embed.forward(xs)?;
        let mut x = x.broadcast_add(&self.pos_embed)?;
        let mut outs = Vec::with_capacity(self.stage_ends.len());
        for (i, blk) in self.blocks.iter().enumerate() {
            x = blk.forward(&x)?;
            if self.stage_ends.contains(&i) {
                outs.push(x.permute((0, 3, 1, 2))?.contiguous()?);
            }
        }
        Ok(outs)
    }
}
