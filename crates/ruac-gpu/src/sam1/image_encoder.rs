//! SAM ViT's image encoder and SAM's neck on the GPU, as ruac-core's
//! `model/sam1/image_encoder.rs` (`segment_anything/modeling/image_encoder.py`): pre-norm
//! blocks with decomposed relative positions (in zero-padded windows or global), then the
//! neck's 1x1 and 3x3 convolutions with LayerNorm2d.
use ruac_core::model::sam1::VitConfig;

use crate::error::{GpuError, Result};
use crate::gpu::{GBuf, Gpu};
use crate::kernels::attention::{attention_biased, rel_pos, AttnShape, Heads, Qkvo, ScoreBias, MAX_HEAD_DIM};
use crate::kernels::eltwise::add_bcast;
use crate::kernels::layout::{win_part, win_unpart_add, Maps};
use crate::kernels::matmul::Act;
use crate::layers::{ConvMm, Lin, Norm, Out};
use crate::loader::Weights;

/// SAM's `neck`: 1x1 conv, LayerNorm2d, 3x3 conv, LayerNorm2d, no biases on the
/// convolutions (shared by SAM ViT and TinyViT).
pub struct Neck {
    conv1: ConvMm,
    norm1: Norm,
    conv2: ConvMm,
    norm2: Norm,
}

impl Neck {
    pub fn new(w: &Weights) -> Result<Self> {
        Ok(Self {
            conv1: ConvMm::plain(&w.pp("0"), 1, 0)?,
            norm1: w.norm("1", 1e-6)?,
            conv2: ConvMm::plain(&w.pp("2"), 1, 1)?,
            norm2: w.norm("3", 1e-6)?,
        })
    }

    pub fn forward(&self, gpu: &Gpu, x: &wgpu::Buffer, (h, w): (usize, usize)) -> Result<GBuf> {
        let (y, _, _) = self.conv1.forward(gpu, x, (h, w), Act::None)?;
        let y = self.norm1.forward(gpu, &y, h * w, Act::None)?;
        let (y, _, _) = self.conv2.forward(gpu, &y, (h, w), Act::None)?;
        self.norm2.forward(gpu, &y, h * w, Act::None)
    }
}

/// SAM ViT's `Block`.
struct Block {
    norm1: Norm,
    qkv: Lin,
    proj: Lin,
    rel_pos_h: wgpu::Buffer,
    rel_pos_w: wgpu::Buffer,
    norm2: Norm,
    lin1: Lin,
    lin2: Lin,
    dim: usize,
    heads: usize,
    /// Window side; 0 for a global block.
    window: usize,
}

impl Block {
    fn new(w: &Weights, cfg: &VitConfig, window: usize) -> Result<Self> {
        let (dim, heads) = (cfg.embed_dim, cfg.num_heads);
        let side = if window > 0 { window } else { cfg.grid() };
        let attn = w.pp("attn");
        let rel = |n: &str| -> Result<wgpu::Buffer> {
            let (v, d) = attn.host(n)?;
            // Other sizes would need the reference's resampling (not in ruac-core either).
            if d != [2 * side - 1, dim / heads] {
                return Err(GpuError::Unsupported(format!("{} of shape {d:?} for a {side}x{side} grid", attn.path(n))));
            }
            Ok(w.gpu().upload(n, &v))
        };
        Ok(Self {
            norm1: w.norm("norm1", 1e-6)?,
            qkv: attn.lin("qkv")?,
            proj: attn.lin("proj")?,
            rel_pos_h: rel("rel_pos_h")?,
            rel_pos_w: rel("rel_pos_w")?,
            norm2: w.norm("norm2", 1e-6)?,
            lin1: w.lin("mlp.lin1")?,
            lin2: w.lin("mlp.lin2")?,
            dim,
            heads,
            window,
        })
    }

    /// `x`: `g x g x dim`, updated in place.
    fn forward(&self, gpu: &Gpu, x: &GBuf, g: usize) -> Result<()> {
        let (dim, window) = (self.dim, self.window);
        let head_dim = dim / self.heads;
        let xn = self.norm1.forward(gpu, x, g * g, Act::None)?;
        let (windows, n_windows, side) = if window > 0 {
            let (xw, nh, nw) = win_part(gpu, &xn, Maps::one(g, g, dim), window)?;
            (xw, nh * nw, window)
        } else {
            (xn, 1, g)
        };
        let n = side * side;
        let qkv = self.qkv.forward(gpu, &windows, n_windows * n, Act::None)?;
        drop(windows);
        // `qkv.reshape(B, HW, 3, heads, hd)`.
        let part = |i: usize| Heads { buf: &qkv, off: i * dim, bs: n * 3 * dim, hs: head_dim, ns: 3 * dim };
        let shape = AttnShape { batch: n_windows, heads: self.heads, nq: n, nk: n, hd: head_dim };
        let rel = rel_pos(gpu, shape, side, part(0), (&self.rel_pos_h, &self.rel_pos_w))?;
        let o = gpu.alloc(n_windows * n * dim)?;
        let out = Heads { buf: &o, off: 0, bs: n * dim, hs: head_dim, ns: dim };
        let t = Qkvo { q: part(0), k: part(1), v: part(2), o: out };
        attention_biased(gpu, shape, t, Some(ScoreBias::RelPos { buf: &rel, g: side }))?;
        drop((qkv, rel));
        if window > 0 {
            let t = self.proj.forward(gpu, &o, n_windows * n, Act::None)?;
            win_unpart_add(gpu, &t, x, Maps::one(g, g, dim), window)?;
        } else {
            self.proj.forward_into(gpu, (&o, 0), n, Act::None, Out::add_to(x))?;
        }
        drop(o);
        let xn = self.norm2.forward(gpu, x, g * g, Act::None)?;
        let hidden = self.lin1.forward(gpu, &xn, g * g, Act::Gelu)?;
        self.lin2.forward_into(gpu, (&hidden, 0), g * g, Act::None, Out::add_to(x))
    }
}

/// `ImageEncoderViT`.
pub struct ImageEncoderVit {
    patch_embed: ConvMm,
    /// `g*g x dim`: the checkpoint's `1, g, g, dim` is already channels-last.
    pos_embed: wgpu::Buffer,
    blocks: Vec<Block>,
    neck: Neck,
    cfg: VitConfig,
}

impl ImageEncoderVit {
    /// In the scope `image_encoder`.
    pub fn new(w: &Weights, cfg: &VitConfig) -> Result<Self> {
        let (dim, heads) = (cfg.embed_dim, cfg.num_heads);
        if heads == 0 || dim / heads > MAX_HEAD_DIM {
            return Err(GpuError::Unsupported(format!("ViT head dimension {}", dim / heads.max(1))));
        }
        let blocks = (0..cfg.depth)
            .map(|i| {
                let window = if cfg.global_attn_indexes.contains(&i) { 0 } else { cfg.window_size };
                Block::new(&w.pp(format!("blocks.{i}")), cfg, window)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            patch_embed: ConvMm::plain(&w.pp("patch_embed.proj"), cfg.patch_size, 0)?,
            pos_embed: w.buf("pos_embed")?,
            blocks,
            neck: Neck::new(&w.pp("neck"))?,
            cfg: cfg.clone(),
        })
    }

    /// `S x S x 3` input to the `g x g x out_chans` embedding and `g`.
    pub fn forward(&self, gpu: &Gpu, x: &wgpu::Buffer) -> Result<(GBuf, usize)> {
        let s = self.cfg.img_size;
        let (x, g, gw) = self.patch_embed.forward(gpu, x, (s, s), Act::None)?;
        let dim = self.cfg.embed_dim;
        if g != self.cfg.grid() || gw != g {
            return Err(GpuError::Internal(format!("ViT patch grid {g} x {gw}, expected {}", self.cfg.grid())));
        }
        add_bcast(gpu, &x, 0, g * g * dim, &self.pos_embed, 0, g * g * dim)?;
        for b in &self.blocks {
            b.forward(gpu, &x, g)?;
        }
        Ok((self.neck.forward(gpu, &x, (g, g))?, g))
    }
}
