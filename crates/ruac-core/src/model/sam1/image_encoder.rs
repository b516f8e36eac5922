//! SAM 1's ViT image encoder (`segment_anything/modeling/image_encoder.py`,
//! `ImageEncoderViT`, PyPI `segment-anything` 1.0): 16x16 patch embedding plus an absolute
//! position embedding, transformer blocks with windowed (14x14, zero-padded) or global
//! attention and decomposed relative position embeddings, and the neck shared by every SAM 1
//! encoder (1x1 conv, LayerNorm2d, 3x3 conv, LayerNorm2d).
use candle_core::{Module, Result, Tensor};
use candle_nn::{conv2d, conv2d_no_bias, Conv2d, Conv2dConfig, VarBuilder};

use crate::model::common::{layer_norm_eps, linear, softmax_last_dim, LayerNorm, LayerNorm2d, Linear};
use crate::model::gelu::gelu;

/// ViT hyper-parameters (`build_sam.py`: `_build_sam`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VitConfig {
    pub img_size: usize,
    pub patch_size: usize,
    pub embed_dim: usize,
    pub depth: usize,
    pub num_heads: usize,
    pub mlp_ratio: usize,
    pub window_size: usize,
    pub global_attn_indexes: Vec<usize>,
    pub out_chans: usize,
}

impl VitConfig {
    fn official(embed_dim: usize, depth: usize, num_heads: usize, global: [usize; 4]) -> Self {
        Self {
            img_size: 1024,
            patch_size: 16,
            embed_dim,
            depth,
            num_heads,
            mlp_ratio: 4,
            window_size: 14,
            global_attn_indexes: global.to_vec(),
            out_chans: 256,
        }
    }
    /// `build_sam_vit_b`.
    pub fn vit_b() -> Self {
        Self::official(768, 12, 12, [2, 5, 8, 11])
    }
    /// `build_sam_vit_l`.
    pub fn vit_l() -> Self {
        Self::official(1024, 24, 16, [5, 11, 17, 23])
    }
    /// `build_sam_vit_h`.
    pub fn vit_h() -> Self {
        Self::official(1280, 32, 16, [7, 15, 23, 31])
    }
    pub fn grid(&self) -> usize {
        self.img_size / self.patch_size
    }
}

/// The neck of every SAM 1 encoder (`neck.0`..`neck.3`).
#[derive(Debug, Clone)]
pub struct Neck {
    conv1: Conv2d,
    ln1: LayerNorm2d,
    conv2: Conv2d,
    ln2: LayerNorm2d,
}

impl Neck {
    pub fn new(c_in: usize, c_out: usize, vb: VarBuilder) -> Result<Self> {
        let pad1 = Conv2dConfig { padding: 1, ..Default::default() };
        Ok(Self {
            conv1: conv2d_no_bias(c_in, c_out, 1, Conv2dConfig::default(), vb.pp("0"))?,
            ln1: LayerNorm2d::new(c_out, vb.pp("1"))?,
            conv2: conv2d_no_bias(c_out, c_out, 3, pad1, vb.pp("2"))?,
            ln2: LayerNorm2d::new(c_out, vb.pp("3"))?,
        })
    }
}

impl Module for Neck {
    /// `B, C, H, W` in and out.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.ln1.forward(&self.conv1.forward(x)?)?;
        self.ln2.forward(&self.conv2.forward(&x)?)
    }
}

/// `get_rel_pos` for equal query and key sizes: the `size, size, C` table of
/// `rel_pos[i - j + size - 1]`. Other sizes would need the reference's linear resampling of
/// the table, which is not implemented: building at another input size fails by shape.
fn rel_pos_table(rel_pos: &Tensor, size: usize) -> Result<Tensor> {
    let idx: Vec<u32> = (0..size).flat_map(|i| (0..size).map(move |j| (i + size - 1 - j) as u32)).collect();
    let idx = Tensor::from_vec(idx, size * size, rel_pos.device())?;
    let c = rel_pos.dim(1)?;
    rel_pos.contiguous()?.index_select(&idx, 0)?.reshape((size, size, c))
}

/// `Attention` with decomposed relative positions (`add_decomposed_rel_pos`).
#[derive(Debug, Clone)]
pub struct Attention {
    qkv: Linear,
    proj: Linear,
    /// `size, size, head_dim` tables gathered from `rel_pos_h`, `rel_pos_w`.
    rh: Tensor,
    rw: Tensor,
    num_heads: usize,
}

impl Attention {
    /// `size`: the attended grid (the window, or the whole embedding for global blocks).
    pub fn new(dim: usize, num_heads: usize, size: usize, vb: VarBuilder) -> Result<Self> {
        let hd = dim / num_heads;
        let rel_h = vb.get((2 * size - 1, hd), "rel_pos_h")?;
        let rel_w = vb.get((2 * size - 1, hd), "rel_pos_w")?;
        Ok(Self {
            qkv: linear(dim, 3 * dim, vb.pp("qkv"))?,
            proj: linear(dim, dim, vb.pp("proj"))?,
            rh: rel_pos_table(&rel_h, size)?,
            rw: rel_pos_table(&rel_w, size)?,
            num_heads,
        })
    }

    /// `x`: `B, H, W, C` with `H = W = size`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, h, w, c) = x.dims4()?;
        let nh = self.num_heads;
        let hd = c / nh;
        let qkv = self.qkv.forward(x)?.reshape((b, h * w, 3, nh, hd))?.permute((2, 0, 3, 1, 4))?;
        let qkv = qkv.contiguous()?.reshape((3, b * nh, h * w, hd))?;
        let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
        let attn = (&q * (hd as f64).powf(-0.5))?.matmul(&k.t()?.contiguous()?)?;
        // rel_h[b, y, x, ky] = Σ_c q[b, y, x, c] Rh[y, ky, c]; rel_w likewise along x.
        let bn = b * nh;
        let rq = q.reshape((bn, h, w, hd))?;
        let rel_h = rq
            .permute((1, 0, 2, 3))?
            .contiguous()?
            .reshape((h, bn * w, hd))?
            .matmul(&self.rh.t()?.contiguous()?)? // h, bn*w, kh
            .reshape((h, bn, w, h))?
            .permute((1, 0, 2, 3))?; // bn, h, w, kh
        let rel_w = rq
            .permute((2, 0, 1, 3))?
            .contiguous()?
            .reshape((w, bn * h, hd))?
            .matmul(&self.rw.t()?.contiguous()?)? // w, bn*h, kw
            .reshape((w, bn, h, w))?
            .permute((1, 2, 0, 3))?; // bn, h, w, kw
        let attn = attn
            .reshape((bn, h, w, h, w))?
            .broadcast_add(&rel_h.unsqueeze(4)?)?
            .broadcast_add(&rel_w.unsqueeze(3)?)?
            .reshape((bn, h * w, h * w))?;
        let out = softmax_last_dim(&attn)?.matmul(&v)?;
        let out = out.reshape((b, nh, h, w, hd))?.permute((0, 2, 3, 1, 4))?.contiguous()?.reshape((b, h, w, c))?;
        self.proj.forward(&out)
    }
}

/// `MLPBlock`: `lin1`, GELU, `lin2`.
#[derive(Debug, Clone)]
pub struct MlpBlock {
    lin1: Linear,
    lin2: Linear,
}

impl MlpBlock {
    pub fn new(dim: usize, hidden: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self { lin1: linear(dim, hidden, vb.pp("lin1"))?, lin2: linear(hidden, dim, vb.pp("lin2"))? })
    }
}

impl Module for MlpBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.lin2.forward(&gelu(&self.lin1.forward(x)?)?)
    }
}

/// `Block`: pre-norm attention (in zero-padded windows when `window > 0`), pre-norm MLP.
#[derive(Debug, Clone)]
pub struct Block {
    norm1: LayerNorm,
    attn: Attention,
    norm2: LayerNorm,
    mlp: MlpBlock,
    window: usize,
}

impl Block {
    pub fn new(cfg: &VitConfig, window: usize, vb: VarBuilder) -> Result<Self> {
        let d = cfg.embed_dim;
        let size = if window > 0 { window } else { cfg.grid() };
        Ok(Self {
            norm1: layer_norm_eps(d, 1e-6, vb.pp("norm1"))?,
            attn: Attention::new(d, cfg.num_heads, size, vb.pp("attn"))?,
            norm2: layer_norm_eps(d, 1e-6, vb.pp("norm2"))?,
            mlp: MlpBlock::new(d, d * cfg.mlp_ratio, vb.pp("mlp"))?,
            window,
        })
    }

    /// `x`: `B, H, W, C`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, h, w, c) = x.dims4()?;
        let y = self.norm1.forward(x)?;
        let ws = self.window;
        let y = if ws == 0 {
            self.attn.forward(&y)?
        } else {
            // window_partition / window_unpartition.
            let (pb, pr) = ((ws - h % ws) % ws, (ws - w % ws) % ws);
            let yp = y.pad_with_zeros(1, 0, pb)?.pad_with_zeros(2, 0, pr)?;
            let (nh, nw) = ((h + pb) / ws, (w + pr) / ws);
            let win =
                yp.reshape((b, nh, ws, nw, ws, c))?.transpose(2, 3)?.contiguous()?.reshape((b * nh * nw, ws, ws, c))?;
            let out = self.attn.forward(&win)?;
            let out =
                out.reshape((b, nh, nw, ws, ws, c))?.transpose(2, 3)?.contiguous()?.reshape((b, h + pb, w + pr, c))?;
            out.narrow(1, 0, h)?.narrow(2, 0, w)?
        };
        let x = (x + y)?;
        &x + self.mlp.forward(&self.norm2.forward(&x)?)?
    }
}

/// `ImageEncoderViT`: `B, 3, S, S` (SAM-normalised pixels) to `B, out_chans, S/16, S/16`.
#[derive(Debug, Clone)]
pub struct ImageEncoderViT {
    patch_embed: Conv2d,
    pos_embed: Tensor,
    blocks: Vec<Block>,
    neck: Neck,
}

impl ImageEncoderViT {
    pub fn new(cfg: &VitConfig, vb: VarBuilder) -> Result<Self> {
        if cfg.patch_size == 0 || cfg.num_heads == 0 {
            candle_core::bail!("ViT: patch size and head count must be positive");
        }
        if !cfg.embed_dim.is_multiple_of(cfg.num_heads) {
            candle_core::bail!("ViT: {} heads do not divide width {}", cfg.num_heads, cfg.embed_dim);
        }
        let p = cfg.patch_size;
        let pe_cfg = Conv2dConfig { stride: p, ..Default::default() };
        let g = cfg.grid();
        let blocks = (0..cfg.depth)
            .map(|i| {
                let window = if cfg.global_attn_indexes.contains(&i) { 0 } else { cfg.window_size };
                Block::new(cfg, window, vb.pp(format!("blocks.{i}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            patch_embed: conv2d(3, cfg.embed_dim, p, pe_cfg, vb.pp("patch_embed.proj"))?,
            pos_embed: vb.get((1, g, g, cfg.embed_dim), "pos_embed")?,
            blocks,
            neck: Neck::new(cfg.embed_dim, cfg.out_chans, vb.pp("neck"))?,
        })
    }

    /// The blocks' outputs (`B, H, W, C`) and the embedding.
    pub fn forward_traced(&self, x: &Tensor) -> Result<(Vec<Tensor>, Tensor)> {
        let x = self.patch_embed.forward(x)?.permute((0, 2, 3, 1))?;
        let mut x = x.broadcast_add(&self.pos_embed)?;
        let mut trace = Vec::with_capacity(self.blocks.len());
        for blk in &self.blocks {
            x = blk.forward(&x)?;
            trace.push(x.clone());
        }
        let out = self.neck.forward(&x.permute((0, 3, 1, 2))?.contiguous()?)?;
        Ok((trace, out))
    }
}

impl Module for ImageEncoderViT {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_traced(x)?.1)
    }
}
