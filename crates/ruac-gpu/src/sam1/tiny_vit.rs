//! TinyViT (MobileSAM, LiteMedSAM) on the GPU, as ruac-core's `model/sam1/tiny_vit.rs`
//! (`tiny_vit_sam.py`): `Conv2d_BN` folded at upload, MBConv blocks, patch merging, windowed
//! attention with offset biases and a depthwise local convolution, then SAM's neck.
use ruac_core::model::sam1::tiny_vit::bias_indices;
use ruac_core::model::sam1::TinyVitConfig;

use crate::error::{GpuError, Result};
use crate::gpu::{GBuf, Gpu};
use crate::kernels::attention::{attention_biased, AttnShape, Heads, Qkvo, ScoreBias, MAX_HEAD_DIM};
use crate::kernels::eltwise::activate;
use crate::kernels::layout::{win_part, win_unpart_add, Maps};
use crate::kernels::matmul::Act;
use crate::layers::{ConvMm, DwConv, Lin, Norm, Out};
use crate::loader::Weights;
use crate::sam1::image_encoder::Neck;

/// `MBConv`: 1x1 expansion, GELU, depthwise 3x3, GELU, 1x1 projection, residual, GELU.
struct MbConv {
    conv1: ConvMm,
    conv2: DwConv,
    conv3: ConvMm,
}

impl MbConv {
    fn new(w: &Weights) -> Result<Self> {
        Ok(Self { conv1: ConvMm::bn(&w.pp("conv1"), 1, 0)?, conv2: DwConv::bn(&w.pp("conv2"), 1)?, conv3: ConvMm::bn(&w.pp("conv3"), 1, 0)? })
    }

    fn forward(&self, gpu: &Gpu, x: &GBuf, hw: (usize, usize)) -> Result<()> {
        let (y, _, _) = self.conv1.forward(gpu, x, hw, Act::Gelu)?;
        let (y, _, _) = self.conv2.forward(gpu, &y, hw, Act::Gelu)?;
        self.conv3.lin.forward_into(gpu, (&y, 0), hw.0 * hw.1, Act::None, Out::add_to(x))?;
        activate(gpu, x, 0, hw.0 * hw.1 * self.conv3.cout(), Act::Gelu)
    }
}

/// `PatchMerging`: 1x1, GELU, depthwise 3x3 (stride from
/// [`TinyVitConfig::merging_stride`]), GELU, 1x1.
struct PatchMerging {
    conv1: ConvMm,
    conv2: DwConv,
    conv3: ConvMm,
}

impl PatchMerging {
    fn new(w: &Weights, out_dim: usize) -> Result<Self> {
        Ok(Self {
            conv1: ConvMm::bn(&w.pp("conv1"), 1, 0)?,
            conv2: DwConv::bn(&w.pp("conv2"), TinyVitConfig::merging_stride(out_dim))?,
            conv3: ConvMm::bn(&w.pp("conv3"), 1, 0)?,
        })
    }

    fn forward(&self, gpu: &Gpu, x: &wgpu::Buffer, hw: (usize, usize)) -> Result<(GBuf, usize, usize)> {
        let (y, _, _) = self.conv1.forward(gpu, x, hw, Act::Gelu)?;
        let (y, oh, ow) = self.conv2.forward(gpu, &y, hw, Act::Gelu)?;
        self.conv3.forward(gpu, &y, (oh, ow), Act::None)
    }
}

/// `TinyViTBlock`: windowed attention (zero-padded windows; the norm is inside the
/// attention, so padding tokens take part as in the reference) with learned offset biases,
/// residual; depthwise `local_conv`; MLP with its own norm, residual.
struct TinyVitBlock {
    norm: Norm,
    qkv: Lin,
    proj: Lin,
    /// `heads x N x N` for the window's `N` tokens, gathered by `attention_bias_idxs`.
    bias: wgpu::Buffer,
    local_conv: DwConv,
    mlp_norm: Norm,
    fc1: Lin,
    fc2: Lin,
    dim: usize,
    heads: usize,
    window: usize,
}

impl TinyVitBlock {
    fn new(w: &Weights, dim: usize, heads: usize, window: usize) -> Result<Self> {
        if dim / heads > MAX_HEAD_DIM {
            return Err(GpuError::Unsupported(format!("TinyViT head dimension {}", dim / heads)));
        }
        let attn = w.pp("attn");
        let (biases, shape) = attn.host("attention_biases")?;
        let (idx, n_off) = bias_indices(window);
        if shape != [heads, n_off] {
            return Err(GpuError::Internal(format!("{} has shape {shape:?}, expected [{heads}, {n_off}]", attn.path("attention_biases"))));
        }
        let nn = window * window * window * window;
        let mut bias = vec![0f32; heads * nn];
        for h in 0..heads {
            for (i, &o) in idx.iter().enumerate() {
                bias[h * nn + i] = biases[h * n_off + o as usize];
            }
        }
        Ok(Self {
            norm: attn.norm("norm", 1e-5)?,
            qkv: attn.lin("qkv")?,
            proj: attn.lin("proj")?,
            bias: w.gpu().upload("attention_biases", &bias),
            local_conv: DwConv::bn(&w.pp("local_conv"), 1)?,
            mlp_norm: w.norm("mlp.norm", 1e-5)?,
            fc1: w.lin("mlp.fc1")?,
            fc2: w.lin("mlp.fc2")?,
            dim,
            heads,
            window,
        })
    }

    /// `x`: `h x w x dim`, in and out.
    fn forward(&self, gpu: &Gpu, x: GBuf, (h, w): (usize, usize)) -> Result<GBuf> {
        let (dim, window) = (self.dim, self.window);
        let head_dim = dim / self.heads;
        let (windows, nh, nw) = win_part(gpu, &x, Maps::one(h, w, dim), window)?;
        let (n_windows, n) = (nh * nw, window * window);
        let xn = self.norm.forward(gpu, &windows, n_windows * n, Act::None)?;
        drop(windows);
        let qkv = self.qkv.forward(gpu, &xn, n_windows * n, Act::None)?;
        drop(xn);
        // The reference splits each head's `3 * head_dim` slice into [q, k, v].
        let part = |i: usize| Heads { buf: &qkv, off: i * head_dim, bs: n * 3 * dim, hs: 3 * head_dim, ns: 3 * dim };
        let o = gpu.alloc(n_windows * n * dim)?;
        let out = Heads { buf: &o, off: 0, bs: n * dim, hs: head_dim, ns: dim };
        let shape = AttnShape { batch: n_windows, heads: self.heads, nq: n, nk: n, hd: head_dim };
        attention_biased(gpu, shape, Qkvo { q: part(0), k: part(1), v: part(2), o: out }, Some(ScoreBias::Dense(&self.bias)))?;
        drop(qkv);
        let t = self.proj.forward(gpu, &o, n_windows * n, Act::None)?;
        win_unpart_add(gpu, &t, &x, Maps::one(h, w, dim), window)?;
        drop((t, o));
        let (x, _, _) = self.local_conv.forward(gpu, &x, (h, w), Act::None)?;
        let xn = self.mlp_norm.forward(gpu, &x, h * w, Act::None)?;
        let hidden = self.fc1.forward(gpu, &xn, h * w, Act::Gelu)?;
        self.fc2.forward_into(gpu, (&hidden, 0), h * w, Act::None, Out::add_to(&x))?;
        Ok(x)
    }
}

/// A stage's blocks: MBConv in the first, attention in the others.
enum Stage {
    Conv(Vec<MbConv>),
    Attn(Vec<TinyVitBlock>),
}

/// `TinyViT` with SAM's neck.
pub struct TinyVit {
    patch_embed: [ConvMm; 2],
    stages: Vec<(Stage, Option<PatchMerging>)>,
    neck: Neck,
    img_size: usize,
}

impl TinyVit {
    /// In the scope `image_encoder`.
    pub fn new(w: &Weights, cfg: &TinyVitConfig) -> Result<Self> {
        let (stride, pad) = if cfg.patch_kernel == 1 { (1, 0) } else { (2, cfg.patch_kernel / 2) };
        let dims = &cfg.embed_dims;
        let n = dims.len();
        let mut stages = Vec::with_capacity(n);
        for i in 0..n {
            let layer = w.pp(format!("layers.{i}"));
            let downsample = if i + 1 < n { Some(PatchMerging::new(&layer.pp("downsample"), dims[i + 1])?) } else { None };
            let blocks = (0..cfg.depths[i]).map(|j| layer.pp(format!("blocks.{j}")));
            let stage = if i == 0 {
                Stage::Conv(blocks.map(|b| MbConv::new(&b)).collect::<Result<Vec<_>>>()?)
            } else {
                Stage::Attn(blocks.map(|b| TinyVitBlock::new(&b, dims[i], cfg.num_heads[i], cfg.window_sizes[i])).collect::<Result<Vec<_>>>()?)
            };
            stages.push((stage, downsample));
        }
        let pe = w.pp("patch_embed.seq");
        Ok(Self {
            patch_embed: [ConvMm::bn(&pe.pp("0"), stride, pad)?, ConvMm::bn(&pe.pp("2"), stride, pad)?],
            stages,
            neck: Neck::new(&w.pp("neck"))?,
            img_size: cfg.img_size,
        })
    }

    /// `S x S x 3` input to the `e x e x out_chans` embedding and `e`.
    pub fn forward(&self, gpu: &Gpu, x: &wgpu::Buffer) -> Result<(GBuf, usize)> {
        let s = self.img_size;
        let (y, h, w) = self.patch_embed[0].forward(gpu, x, (s, s), Act::Gelu)?;
        let (mut x, mut h, mut w) = self.patch_embed[1].forward(gpu, &y, (h, w), Act::None)?;
        drop(y);
        for (stage, downsample) in &self.stages {
            match stage {
                Stage::Conv(blocks) => {
                    for b in blocks {
                        b.forward(gpu, &x, (h, w))?;
                    }
                }
                Stage::Attn(blocks) => {
                    for b in blocks {
                        x = b.forward(gpu, x, (h, w))?;
                    }
                }
            }
            if let Some(d) = downsample {
                (x, h, w) = d.forward(gpu, &x, (h, w))?;
            }
        }
        if h != w {
            return Err(GpuError::Internal(format!("TinyViT embedding of {h} x {w}")));
        }
        Ok((self.neck.forward(gpu, &x, (h, w))?, h))
    }
}
