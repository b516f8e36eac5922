//! The SAM 1 family (SAM ViT-B/L/H, MobileSAM, LiteMedSAM) on the GPU: the image encoders
//! of `ruac_core::model::sam1` layer by layer (`tiny_vit.rs`, `image_encoder.rs`), weights
//! uploaded under the checkpoints' own names (batch norms folded into their convolutions at
//! upload, as `Conv2dBn::new` does), channels-last activations as in `model.rs`; the
//! prompt encoder and mask decoder are `model.rs`'s [`Decoder`] in its SAM 1 form
//! (`sam1/mask_decoder.rs`).
use ruac_core::checkpoint::Checkpoint;
use ruac_core::image_io::{Preprocessing, RgbImage};
use ruac_core::model::sam1::{Sam1Config, Sam1EncoderConfig, TinyVitConfig, VitConfig};

use crate::gpu::{GBuf, Gpu, Result};
use crate::kernels::attention::{attention_biased, rel_pos, Heads, ScoreBias, MAX_HEAD_DIM};
use crate::kernels::conv::{dwconv, im2col, Conv2d};
use crate::kernels::eltwise::{activate, add_bcast};
use crate::kernels::layernorm::layernorm;
use crate::kernels::layout::{win_part, win_unpart_add};
use crate::kernels::matmul::Act;
use crate::model::{linear, linear_into, Decoder, DecoderDims, DecoderKind, DecoderOut, Lin, Loader, Norm, UncMode};
use crate::GpuError;

/// A convolution as a matrix product: 1x1 (stride 1) directly, larger kernels over the
/// patches (`im2col`). The weight is stored as a [`Lin`] over `(ky, kx, ci)` columns.
struct ConvMm {
    lin: Lin,
    cin: usize,
    k: usize,
    stride: usize,
    pad: usize,
}

impl ConvMm {
    /// From a PyTorch `cout, cin, k, k` weight and a bias.
    fn new(ld: &Loader, name: &str, w: &[f32], dims: &[usize], b: &[f32], stride: usize, pad: usize) -> Result<Self> {
        let (cout, cin, k) = (dims[0], dims[1], dims[2]);
        if dims.len() != 4 || dims[3] != k {
            return Err(GpuError::Internal(format!("{name}: convolution weight of shape {dims:?}")));
        }
        let kk = k * k * cin;
        let mut wr = vec![0f32; cout * kk];
        for co in 0..cout {
            for ci in 0..cin {
                for t in 0..k * k {
                    wr[co * kk + t * cin + ci] = w[(co * cin + ci) * k * k + t];
                }
            }
        }
        Ok(Self { lin: ld.lin_host(name, &wr, cout, kk, b)?, cin, k, stride, pad })
    }

    /// A plain `nn.Conv2d` under `prefix` (`.weight`, and `.bias` or zeros when it has none).
    fn plain(ld: &Loader, prefix: &str, stride: usize, pad: usize) -> Result<Self> {
        let (w, dims) = ld.host(&format!("{prefix}.weight"))?;
        let bname = format!("{prefix}.bias");
        let b = if ld.ck.tensors.contains_key(&bname) { ld.host(&bname)?.0 } else { vec![0.0; dims[0]] };
        Self::new(ld, prefix, &w, &dims, &b, stride, pad)
    }

    /// `Conv2d_BN` under `prefix` (`c`, `bn`), folded.
    fn bn(ld: &Loader, prefix: &str, stride: usize, pad: usize) -> Result<Self> {
        let (w, dims, b) = fold_bn(ld, prefix)?;
        Self::new(ld, prefix, &w, &dims, &b, stride, pad)
    }

    fn cout(&self) -> usize {
        self.lin.dout
    }

    /// `h x w x cin` to `(oh x ow x cout, oh, ow)`.
    fn forward(&self, gpu: &Gpu, x: &wgpu::Buffer, h: usize, w: usize, act: Act) -> Result<(GBuf, usize, usize)> {
        if self.k == 1 && self.stride == 1 && self.pad == 0 {
            return Ok((linear(gpu, x, 0, h * w, &self.lin, act)?, h, w));
        }
        let (cols, oh, ow) = im2col(gpu, x, h, w, self.cin, self.k, self.stride, self.pad)?;
        Ok((linear(gpu, &cols, 0, oh * ow, &self.lin, act)?, oh, ow))
    }
}

/// `Conv2d_BN` (`tiny_vit_sam.py`): the convolution's weight scaled by `γ / √(var + 1e-5)`
/// per output channel, bias `β − mean · scale` (as `tiny_vit.rs`'s `bn_affine`, in f32).
fn fold_bn(ld: &Loader, prefix: &str) -> Result<(Vec<f32>, Vec<usize>, Vec<f32>)> {
    let (mut w, dims) = ld.host(&format!("{prefix}.c.weight"))?;
    let get = |n: &str| -> Result<Vec<f32>> { Ok(ld.host(&format!("{prefix}.bn.{n}"))?.0) };
    let (gamma, beta, mean, var) = (get("weight")?, get("bias")?, get("running_mean")?, get("running_var")?);
    let cout = dims[0];
    let per = w.len() / cout;
    let mut shift = vec![0f32; cout];
    for c in 0..cout {
        let scale = gamma[c] / (var[c] + 1e-5).sqrt();
        shift[c] = beta[c] - mean[c] * scale;
        for v in &mut w[c * per..(c + 1) * per] {
            *v *= scale;
        }
    }
    Ok((w, dims, shift))
}

/// A depthwise `Conv2d_BN` (`groups = channels`), folded.
struct DwConv {
    w: wgpu::Buffer,
    b: wgpu::Buffer,
    c: usize,
    k: usize,
    stride: usize,
    pad: usize,
}

impl DwConv {
    fn bn(ld: &Loader, prefix: &str, stride: usize) -> Result<Self> {
        let (w, dims, b) = fold_bn(ld, prefix)?;
        let k = dims[2];
        Ok(Self { w: ld.gpu.upload(prefix, &w), b: ld.gpu.upload(prefix, &b), c: dims[0], k, stride, pad: k / 2 })
    }

    fn forward(&self, gpu: &Gpu, x: &wgpu::Buffer, h: usize, w: usize, act: Act) -> Result<(GBuf, usize, usize)> {
        let c = Conv2d { w: &self.w, b: &self.b, cin: self.c, cout: self.c, k: self.k, stride: self.stride, pad: self.pad };
        dwconv(gpu, x, h, w, &c, act)
    }
}

/// SAM's neck (`image_encoder.py`, `Neck` in ruac-core): 1x1 conv, LayerNorm2d, 3x3 conv,
/// LayerNorm2d, no biases on the convolutions.
struct Neck {
    conv1: ConvMm,
    ln1: Norm,
    conv2: ConvMm,
    ln2: Norm,
}

impl Neck {
    fn new(ld: &Loader, p: &str) -> Result<Self> {
        Ok(Self {
            conv1: ConvMm::plain(ld, &format!("{p}.0"), 1, 0)?,
            ln1: ld.norm(&format!("{p}.1"))?,
            conv2: ConvMm::plain(ld, &format!("{p}.2"), 1, 1)?,
            ln2: ld.norm(&format!("{p}.3"))?,
        })
    }

    fn forward(&self, gpu: &Gpu, x: &wgpu::Buffer, h: usize, w: usize) -> Result<GBuf> {
        let c = self.conv1.cout();
        let (y, _, _) = self.conv1.forward(gpu, x, h, w, Act::None)?;
        let y = layernorm(gpu, &y, h * w, c, &self.ln1.w, &self.ln1.b, 1e-6, Act::None)?;
        let (y, _, _) = self.conv2.forward(gpu, &y, h, w, Act::None)?;
        layernorm(gpu, &y, h * w, c, &self.ln2.w, &self.ln2.b, 1e-6, Act::None)
    }
}

/// TinyViT's `MBConv`: 1x1 expansion, GELU, depthwise 3x3, GELU, 1x1 projection, residual,
/// GELU.
struct MbConv {
    conv1: ConvMm,
    conv2: DwConv,
    conv3: ConvMm,
}

impl MbConv {
    fn forward(&self, gpu: &Gpu, x: &GBuf, h: usize, w: usize) -> Result<()> {
        let (y, _, _) = self.conv1.forward(gpu, x, h, w, Act::Gelu)?;
        let (y, _, _) = self.conv2.forward(gpu, &y, h, w, Act::Gelu)?;
        linear_into(gpu, &y, 0, h * w, &self.conv3.lin, Act::None, x, 0, true)?;
        activate(gpu, x, 0, h * w * self.conv3.cout(), Act::Gelu)
    }
}

/// TinyViT's `PatchMerging`: 1x1, GELU, depthwise 3x3 (stride 2, or 1 for the widths
/// `tiny_vit_sam.py` keeps), GELU, 1x1.
struct PatchMerging {
    conv1: ConvMm,
    conv2: DwConv,
    conv3: ConvMm,
}

impl PatchMerging {
    fn forward(&self, gpu: &Gpu, x: &wgpu::Buffer, h: usize, w: usize) -> Result<(GBuf, usize, usize)> {
        let (y, _, _) = self.conv1.forward(gpu, x, h, w, Act::Gelu)?;
        let (y, oh, ow) = self.conv2.forward(gpu, &y, h, w, Act::Gelu)?;
        self.conv3.forward(gpu, &y, oh, ow, Act::None)
    }
}

/// `TinyViTBlock`: windowed attention (zero-padded windows; the norm is inside the
/// attention, so padding tokens take part as in the reference) with learned offset biases,
/// residual; depthwise `local_conv`; MLP with its own norm, residual.
struct TinyBlock {
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

/// `attention_bias_idxs` (`tiny_vit_sam.py`): offsets `(|dy|, |dx|)` numbered in order of
/// first appearance over all token pairs of a window (as ruac-core's `bias_indices`).
fn bias_indices(window: usize) -> (Vec<usize>, usize) {
    let points: Vec<(usize, usize)> = (0..window).flat_map(|y| (0..window).map(move |x| (y, x))).collect();
    let mut offsets = std::collections::HashMap::new();
    let mut idxs = Vec::with_capacity(points.len() * points.len());
    for p1 in &points {
        for p2 in &points {
            let off = (p1.0.abs_diff(p2.0), p1.1.abs_diff(p2.1));
            let next = offsets.len();
            idxs.push(*offsets.entry(off).or_insert(next));
        }
    }
    (idxs, offsets.len())
}

impl TinyBlock {
    fn new(ld: &Loader, p: &str, dim: usize, heads: usize, window: usize) -> Result<Self> {
        if dim / heads > MAX_HEAD_DIM {
            return Err(GpuError::Unsupported(format!("TinyViT head dimension {}", dim / heads)));
        }
        let (biases, bd) = ld.host(&format!("{p}.attn.attention_biases"))?;
        let (idx, n_off) = bias_indices(window);
        if bd != [heads, n_off] {
            return Err(GpuError::Internal(format!("{p}.attn.attention_biases has shape {bd:?}, expected [{heads}, {n_off}]")));
        }
        let nn = window * window * window * window;
        let mut bias = vec![0f32; heads * nn];
        for h in 0..heads {
            for (i, &o) in idx.iter().enumerate() {
                bias[h * nn + i] = biases[h * n_off + o];
            }
        }
        Ok(Self {
            norm: ld.norm(&format!("{p}.attn.norm"))?,
            qkv: ld.lin(&format!("{p}.attn.qkv"))?,
            proj: ld.lin(&format!("{p}.attn.proj"))?,
            bias: ld.gpu.upload("attention_biases", &bias),
            local_conv: DwConv::bn(ld, &format!("{p}.local_conv"), 1)?,
            mlp_norm: ld.norm(&format!("{p}.mlp.norm"))?,
            fc1: ld.lin(&format!("{p}.mlp.fc1"))?,
            fc2: ld.lin(&format!("{p}.mlp.fc2"))?,
            dim,
            heads,
            window,
        })
    }

    /// `x`: `h x w x dim`, in and out.
    fn forward(&self, gpu: &Gpu, x: GBuf, h: usize, w: usize) -> Result<GBuf> {
        let (dim, ws) = (self.dim, self.window);
        let kd = dim / self.heads;
        let (xw, nh, nw) = win_part(gpu, &x, 1, h, w, dim, ws)?;
        let (nb, n) = (nh * nw, ws * ws);
        let xn = layernorm(gpu, &xw, nb * n, dim, &self.norm.w, &self.norm.b, 1e-5, Act::None)?;
        drop(xw);
        let qkv = linear(gpu, &xn, 0, nb * n, &self.qkv, Act::None)?;
        drop(xn);
        // The reference splits each head's `3 * kd` slice into [q, k, v].
        let part = |i: usize| Heads { buf: &qkv, off: i * kd, bs: n * 3 * dim, hs: 3 * kd, ns: 3 * dim };
        let o = gpu.alloc(nb * n * dim)?;
        let oh = Heads { buf: &o, off: 0, bs: n * dim, hs: kd, ns: dim };
        attention_biased(gpu, nb, self.heads, n, n, kd, part(0), part(1), part(2), oh, Some(ScoreBias::Dense(&self.bias)))?;
        drop(qkv);
        let t = linear(gpu, &o, 0, nb * n, &self.proj, Act::None)?;
        win_unpart_add(gpu, &t, &x, 1, h, w, dim, ws)?;
        drop((t, o));
        let (x, _, _) = self.local_conv.forward(gpu, &x, h, w, Act::None)?;
        let xn = layernorm(gpu, &x, h * w, dim, &self.mlp_norm.w, &self.mlp_norm.b, 1e-5, Act::None)?;
        let hid = linear(gpu, &xn, 0, h * w, &self.fc1, Act::Gelu)?;
        linear_into(gpu, &hid, 0, h * w, &self.fc2, Act::None, &x, 0, true)?;
        Ok(x)
    }
}

enum TinyStage {
    Conv(Vec<MbConv>),
    Attn(Vec<TinyBlock>),
}

/// `TinyViT` with SAM's neck (`tiny_vit.rs`).
struct TinyVit {
    pe1: ConvMm,
    pe2: ConvMm,
    stages: Vec<(TinyStage, Option<PatchMerging>)>,
    neck: Neck,
    img_size: usize,
}

/// `PatchMerging`'s depthwise stride: the reference keeps stride 1 for these output widths.
fn merging_stride(out_dim: usize) -> usize {
    if matches!(out_dim, 320 | 448 | 576) {
        1
    } else {
        2
    }
}

impl TinyVit {
    fn new(ld: &Loader, cfg: &TinyVitConfig) -> Result<Self> {
        let p = "image_encoder";
        let (stride, pad) = if cfg.patch_kernel == 1 { (1, 0) } else { (2, cfg.patch_kernel / 2) };
        let ed = &cfg.embed_dims;
        let n = ed.len();
        let mut stages = Vec::with_capacity(n);
        for i in 0..n {
            let lp = format!("{p}.layers.{i}");
            let down = if i + 1 < n {
                let dp = format!("{lp}.downsample");
                Some(PatchMerging {
                    conv1: ConvMm::bn(ld, &format!("{dp}.conv1"), 1, 0)?,
                    conv2: DwConv::bn(ld, &format!("{dp}.conv2"), merging_stride(ed[i + 1]))?,
                    conv3: ConvMm::bn(ld, &format!("{dp}.conv3"), 1, 0)?,
                })
            } else {
                None
            };
            let stage = if i == 0 {
                let blocks = (0..cfg.depths[0])
                    .map(|j| {
                        let bp = format!("{lp}.blocks.{j}");
                        Ok(MbConv {
                            conv1: ConvMm::bn(ld, &format!("{bp}.conv1"), 1, 0)?,
                            conv2: DwConv::bn(ld, &format!("{bp}.conv2"), 1)?,
                            conv3: ConvMm::bn(ld, &format!("{bp}.conv3"), 1, 0)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                TinyStage::Conv(blocks)
            } else {
                let blocks = (0..cfg.depths[i])
                    .map(|j| TinyBlock::new(ld, &format!("{lp}.blocks.{j}"), ed[i], cfg.num_heads[i], cfg.window_sizes[i]))
                    .collect::<Result<Vec<_>>>()?;
                TinyStage::Attn(blocks)
            };
            stages.push((stage, down));
        }
        Ok(Self {
            pe1: ConvMm::bn(ld, &format!("{p}.patch_embed.seq.0"), stride, pad)?,
            pe2: ConvMm::bn(ld, &format!("{p}.patch_embed.seq.2"), stride, pad)?,
            stages,
            neck: Neck::new(ld, &format!("{p}.neck"))?,
            img_size: cfg.img_size,
        })
    }

    /// `S x S x 3` input to the `e x e x out_chans` embedding.
    fn forward(&self, gpu: &Gpu, x: &wgpu::Buffer) -> Result<(GBuf, usize)> {
        let s = self.img_size;
        let (y, h, w) = self.pe1.forward(gpu, x, s, s, Act::Gelu)?;
        let (mut x, mut h, mut w) = self.pe2.forward(gpu, &y, h, w, Act::None)?;
        drop(y);
        for (stage, down) in &self.stages {
            match stage {
                TinyStage::Conv(blocks) => {
                    for b in blocks {
                        b.forward(gpu, &x, h, w)?;
                    }
                }
                TinyStage::Attn(blocks) => {
                    for b in blocks {
                        x = b.forward(gpu, x, h, w)?;
                    }
                }
            }
            if let Some(d) = down {
                (x, h, w) = d.forward(gpu, &x, h, w)?;
            }
        }
        if h != w {
            return Err(GpuError::Internal(format!("TinyViT embedding of {h} x {w}")));
        }
        Ok((self.neck.forward(gpu, &x, h, w)?, h))
    }
}

/// SAM ViT's `Block` (`image_encoder.py`): pre-norm attention with decomposed relative
/// positions (in zero-padded windows when `window > 0`), pre-norm MLP.
struct VitBlock {
    norm1: Norm,
    qkv: Lin,
    proj: Lin,
    rel_h: wgpu::Buffer,
    rel_w: wgpu::Buffer,
    norm2: Norm,
    lin1: Lin,
    lin2: Lin,
    dim: usize,
    heads: usize,
    window: usize,
}

impl VitBlock {
    /// `x`: `g x g x dim`, updated in place.
    fn forward(&self, gpu: &Gpu, x: &GBuf, g: usize) -> Result<()> {
        let (dim, ws) = (self.dim, self.window);
        let hd = dim / self.heads;
        let xn = layernorm(gpu, x, g * g, dim, &self.norm1.w, &self.norm1.b, 1e-6, Act::None)?;
        let (xw, nb, side) = if ws > 0 {
            let (xw, nh, nw) = win_part(gpu, &xn, 1, g, g, dim, ws)?;
            (xw, nh * nw, ws)
        } else {
            (xn, 1, g)
        };
        let n = side * side;
        let qkv = linear(gpu, &xw, 0, nb * n, &self.qkv, Act::None)?;
        drop(xw);
        // `qkv.reshape(B, HW, 3, heads, hd)`.
        let part = |i: usize| Heads { buf: &qkv, off: i * dim, bs: n * 3 * dim, hs: hd, ns: 3 * dim };
        let rel = rel_pos(gpu, nb, self.heads, side, hd, part(0), &self.rel_h, &self.rel_w)?;
        let o = gpu.alloc(nb * n * dim)?;
        let oh = Heads { buf: &o, off: 0, bs: n * dim, hs: hd, ns: dim };
        attention_biased(gpu, nb, self.heads, n, n, hd, part(0), part(1), part(2), oh, Some(ScoreBias::RelPos { buf: &rel, g: side }))?;
        drop((qkv, rel));
        if ws > 0 {
            let t = linear(gpu, &o, 0, nb * n, &self.proj, Act::None)?;
            win_unpart_add(gpu, &t, x, 1, g, g, dim, ws)?;
        } else {
            linear_into(gpu, &o, 0, n, &self.proj, Act::None, x, 0, true)?;
        }
        drop(o);
        let xn = layernorm(gpu, x, g * g, dim, &self.norm2.w, &self.norm2.b, 1e-6, Act::None)?;
        let hid = linear(gpu, &xn, 0, g * g, &self.lin1, Act::Gelu)?;
        linear_into(gpu, &hid, 0, g * g, &self.lin2, Act::None, x, 0, true)
    }
}

/// `ImageEncoderViT` (`image_encoder.rs`).
struct Vit {
    patch: ConvMm,
    /// `g*g x dim`: the checkpoint's `1, g, g, dim` is already channels-last.
    pos_embed: wgpu::Buffer,
    blocks: Vec<VitBlock>,
    neck: Neck,
    cfg: VitConfig,
}

impl Vit {
    fn new(ld: &Loader, cfg: &VitConfig) -> Result<Self> {
        let p = "image_encoder";
        let (dim, heads) = (cfg.embed_dim, cfg.num_heads);
        if heads == 0 || dim / heads > MAX_HEAD_DIM {
            return Err(GpuError::Unsupported(format!("ViT head dimension {}", dim / heads.max(1))));
        }
        let blocks = (0..cfg.depth)
            .map(|i| {
                let bp = format!("{p}.blocks.{i}");
                let window = if cfg.global_attn_indexes.contains(&i) { 0 } else { cfg.window_size };
                let side = if window > 0 { window } else { cfg.grid() };
                let rel = |n: &str| -> Result<wgpu::Buffer> {
                    let (v, d) = ld.host(&format!("{bp}.attn.{n}"))?;
                    // Other sizes would need the reference's resampling (not in ruac-core either).
                    if d != [2 * side - 1, dim / heads] {
                        return Err(GpuError::Unsupported(format!("{bp}.attn.{n} of shape {d:?} for a {side}x{side} grid")));
                    }
                    Ok(ld.gpu.upload(n, &v))
                };
                Ok(VitBlock {
                    norm1: ld.norm(&format!("{bp}.norm1"))?,
                    qkv: ld.lin(&format!("{bp}.attn.qkv"))?,
                    proj: ld.lin(&format!("{bp}.attn.proj"))?,
                    rel_h: rel("rel_pos_h")?,
                    rel_w: rel("rel_pos_w")?,
                    norm2: ld.norm(&format!("{bp}.norm2"))?,
                    lin1: ld.lin(&format!("{bp}.mlp.lin1"))?,
                    lin2: ld.lin(&format!("{bp}.mlp.lin2"))?,
                    dim,
                    heads,
                    window,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            patch: ConvMm::plain(ld, &format!("{p}.patch_embed.proj"), cfg.patch_size, 0)?,
            pos_embed: ld.buf(&format!("{p}.pos_embed"))?,
            blocks,
            neck: Neck::new(ld, &format!("{p}.neck"))?,
            cfg: cfg.clone(),
        })
    }

    fn forward(&self, gpu: &Gpu, x: &wgpu::Buffer) -> Result<(GBuf, usize)> {
        let s = self.cfg.img_size;
        let (x, g, gw) = self.patch.forward(gpu, x, s, s, Act::None)?;
        let dim = self.cfg.embed_dim;
        if g != self.cfg.grid() || gw != g {
            return Err(GpuError::Internal(format!("ViT patch grid {g} x {gw}, expected {}", self.cfg.grid())));
        }
        add_bcast(gpu, &x, 0, g * g * dim, &self.pos_embed, 0, g * g * dim)?;
        for b in &self.blocks {
            b.forward(gpu, &x, g)?;
        }
        Ok((self.neck.forward(gpu, &x, g, g)?, g))
    }
}

enum Encoder {
    Vit(Vit),
    TinyVit(TinyVit),
}

/// A SAM 1 family model on the GPU: encoder, and the SAM 1 form of [`Decoder`].
pub struct Sam1GpuModel {
    pub cfg: Sam1Config,
    /// The family's preprocessing (`BaseModel::preprocessing` of ruac-core).
    pub preprocessing: Preprocessing,
    /// Bytes of GPU memory the weights take.
    pub weight_bytes: u64,
    /// Checkpoint tensors stored as f16 (empty with f32 weights).
    pub f16_tensors: Vec<String>,
    enc: Encoder,
    pub dec: Decoder,
}

impl Sam1GpuModel {
    /// Uploads the weights of `cfg` from `ck` (already checked by `Checkpoint::build_sam1`).
    pub fn new(gpu: &Gpu, ck: &Checkpoint, cfg: &Sam1Config, preprocessing: Preprocessing) -> Result<Self> {
        let ld = Loader::new(ck, gpu);
        let before = gpu.uploaded_bytes();
        let enc = match &cfg.encoder {
            Sam1EncoderConfig::Vit(v) => Encoder::Vit(Vit::new(&ld, v)?),
            Sam1EncoderConfig::TinyVit(t) => Encoder::TinyVit(TinyVit::new(&ld, t)?),
        };
        let dc = &cfg.decoder;
        let dims = DecoderDims {
            d: dc.transformer_dim,
            e: cfg.embedding_size(),
            image_size: cfg.image_size(),
            heads: dc.transformer_heads,
            depth: dc.transformer_depth,
            n_tokens: dc.num_multimask_outputs + 1,
            iou_head_depth: dc.iou_head_depth,
            bayes: dc.bayes_head,
        };
        let dec = Decoder::new(&ld, DecoderKind::Sam1, &dims)?;
        Ok(Self {
            cfg: cfg.clone(),
            preprocessing,
            weight_bytes: gpu.uploaded_bytes() - before,
            f16_tensors: ld.f16_names.take(),
            enc,
            dec,
        })
    }

    /// Low-resolution mask side (4x the embedding).
    pub fn low_res_size(&self) -> usize {
        4 * self.cfg.embedding_size()
    }

    /// The family's preprocessing on the host (`Preprocessing::apply`, exactly the CPU
    /// path's input), uploaded channels-last, then the encoder: the `e*e x d` embedding.
    pub fn encode(&self, gpu: &Gpu, img: &RgbImage) -> Result<GBuf> {
        let s = self.cfg.image_size();
        let chw = self.preprocessing.apply(img, s);
        let mut hwc = vec![0f32; chw.len()];
        for c in 0..3 {
            for i in 0..s * s {
                hwc[i * 3 + c] = chw[c * s * s + i];
            }
        }
        let x = gpu.upload_pooled(&hwc)?;
        let (emb, e) = match &self.enc {
            Encoder::Vit(v) => v.forward(gpu, &x)?,
            Encoder::TinyVit(t) => t.forward(gpu, &x)?,
        };
        if e != self.cfg.embedding_size() {
            return Err(GpuError::Internal(format!("embedding side {e}, expected {}", self.cfg.embedding_size())));
        }
        Ok(emb)
    }

    /// Prompt encoder and decoder on the embedding; `points` as [`Decoder::decode`] takes
    /// them (SAM 1 order: points, padding when there is no box, box corners).
    pub fn decode(&self, gpu: &Gpu, emb: &GBuf, points: &[(f32, f32, f32)], mask_input: Option<&[f32]>, mode: UncMode) -> Result<DecoderOut> {
        self.dec.decode(gpu, emb, None, points, mask_input, mode)
    }
}
