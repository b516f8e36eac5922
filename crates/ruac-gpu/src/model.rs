//! SAM 2.1 (+ RUAC's Bayesian head) on the GPU: the weights, uploaded once under the
//! checkpoint's own names, and the forward pass of `ruac_core::model` layer by layer
//! (`hiera.rs`, `neck.rs`, `sam2.rs`, `prompt_encoder.rs`, `transformer.rs`,
//! `mask_decoder.rs`, `bayes_head.rs`). Activations are channels-last (`H*W x C`) so that
//! 1x1 convolutions are matrix products and `LayerNorm2d` is a plain LayerNorm.
use candle_core::DType;
use ruac_core::checkpoint::Checkpoint;
use ruac_core::model::config::Sam2Config;
use ruac_core::model::hiera::bicubic_resize;

use crate::gpu::{Gpu, GBuf, Result};
use crate::kernels::attention::{attention, Heads};
use crate::kernels::conv::{conv2d, conv_t2x2, Conv2d};
use crate::kernels::eltwise::add_bcast;
use crate::kernels::layernorm::layernorm;
use crate::kernels::layout::{pool2x2, up_nearest_add, win_part, win_unpart_add};
use crate::kernels::matmul::{matmul, Act, Bias, Matmul, View};
use crate::kernels::{bayes, preprocess, prompt};
use crate::GpuError;

/// `nn.Linear` with the weight stored transposed (`in x out`, contiguous columns for the
/// matmul's B tiles).
pub struct Lin {
    pub wt: wgpu::Buffer,
    /// `wt` holds f16 values (`Gpu::f16_weights` at upload).
    pub wt_f16: bool,
    pub b: wgpu::Buffer,
    pub din: usize,
    pub dout: usize,
}

pub struct Norm {
    pub w: wgpu::Buffer,
    pub b: wgpu::Buffer,
}

/// Reads checkpoint tensors as f32 and uploads them.
pub(crate) struct Loader<'a> {
    pub ck: &'a Checkpoint,
    pub gpu: &'a Gpu,
    /// Names of the tensors stored as f16.
    pub f16_names: std::cell::RefCell<Vec<String>>,
}

impl<'a> Loader<'a> {
    pub fn new(ck: &'a Checkpoint, gpu: &'a Gpu) -> Self {
        Self { ck, gpu, f16_names: Default::default() }
    }

    pub fn host(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        let t = self.ck.tensors.get(name).ok_or_else(|| GpuError::Internal(format!("checkpoint tensor {name} missing")))?;
        Ok((t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?, t.dims().to_vec()))
    }

    pub fn buf(&self, name: &str) -> Result<wgpu::Buffer> {
        Ok(self.gpu.upload(name, &self.host(name)?.0))
    }

    /// A linear layer (or a 1x1 convolution) under `prefix`.
    pub fn lin(&self, prefix: &str) -> Result<Lin> {
        let (w, dims) = self.host(&format!("{prefix}.weight"))?;
        let (dout, din) = (dims[0], dims[1..].iter().product::<usize>());
        let b = self.host(&format!("{prefix}.bias"))?.0;
        self.lin_host(prefix, &w, dout, din, &b)
    }

    /// A linear layer from host values: `w` is `dout x din` (PyTorch's layout), `b` has
    /// `dout` values; `name` is the checkpoint prefix it came from.
    pub fn lin_host(&self, name: &str, w: &[f32], dout: usize, din: usize, b: &[f32]) -> Result<Lin> {
        if w.len() != dout * din || b.len() != dout {
            return Err(GpuError::Internal(format!("{name}: {} weights, {} biases for {dout} x {din}", w.len(), b.len())));
        }
        let prefix = name;
        let mut wt = vec![0f32; w.len()];
        for o in 0..dout {
            for i in 0..din {
                wt[i * dout + o] = w[o * din + i];
            }
        }
        // The linear layers hold almost all of the weights (the rest are norms, biases and a
        // few small convolutions), so they alone are stored as f16 when asked.
        let (wt, wt_f16) = if self.gpu.f16_weights() {
            let h: Vec<u16> = wt.iter().map(|&x| half::f16::from_f32(x).to_bits()).collect();
            self.f16_names.borrow_mut().push(format!("{prefix}.weight"));
            (self.gpu.upload(prefix, &h), true)
        } else {
            (self.gpu.upload(prefix, &wt), false)
        };
        Ok(Lin { wt, wt_f16, b: self.gpu.upload(&format!("{prefix}.bias"), b), din, dout })
    }

    pub fn norm(&self, prefix: &str) -> Result<Norm> {
        Ok(Norm { w: self.buf(&format!("{prefix}.weight"))?, b: self.buf(&format!("{prefix}.bias"))? })
    }
}

/// `x (rows x din) @ W + b`, activation, into a new buffer. `x_off` in values.
pub fn linear(gpu: &Gpu, x: &wgpu::Buffer, x_off: usize, rows: usize, l: &Lin, act: Act) -> Result<GBuf> {
    let y = gpu.alloc(rows * l.dout)?;
    linear_into(gpu, x, x_off, rows, l, act, &y, 0, false)?;
    Ok(y)
}

/// [`linear`] into `y` at `y_off`, optionally added to what is there (residuals).
#[allow(clippy::too_many_arguments)]
pub fn linear_into(gpu: &Gpu, x: &wgpu::Buffer, x_off: usize, rows: usize, l: &Lin, act: Act, y: &wgpu::Buffer, y_off: usize, accumulate: bool) -> Result<()> {
    let mut mm = Matmul::new(rows, l.dout, l.din, View::rows(x, x_off, l.din), View::rows(&l.wt, 0, l.dout).half(l.wt_f16), View::rows(y, y_off, l.dout));
    mm.bias = Bias::Cols(&l.b, 0);
    mm.act = act;
    mm.accumulate = accumulate;
    matmul(gpu, &mm)
}

/// `a + b` (`n` values each) into a new buffer.
fn add_new(gpu: &Gpu, a: &wgpu::Buffer, b: &wgpu::Buffer, n: usize) -> Result<GBuf> {
    let y = gpu.alloc(n)?;
    gpu.copy(a, 0, &y, 0, n);
    add_bcast(gpu, &y, 0, n, b, 0, n)?;
    Ok(y)
}

/// Hiera's `MultiScaleBlock` (hieradet.py).
struct Block {
    norm1: Norm,
    qkv: Lin,
    attn_proj: Lin,
    norm2: Norm,
    fc1: Lin,
    fc2: Lin,
    proj: Option<Lin>,
    dim: usize,
    dim_out: usize,
    heads: usize,
    window: usize,
    q_stride: bool,
}

impl Block {
    /// `x`: `h x w x dim`; returns `h' x w' x dim_out`.
    fn forward(&self, gpu: &Gpu, x: GBuf, h: usize, w: usize) -> Result<(GBuf, usize, usize)> {
        let (dim, dout) = (self.dim, self.dim_out);
        let hd = dout / self.heads;
        let xn = layernorm(gpu, &x, h * w, dim, &self.norm1.w, &self.norm1.b, 1e-6, Act::None)?;
        // The residual: the input, or its projection (pooled at a stage transition).
        let (res, rh, rw) = match &self.proj {
            Some(p) => {
                let sc = linear(gpu, &xn, 0, h * w, p, Act::None)?;
                if self.q_stride {
                    (pool2x2(gpu, &sc, 0, dout, 1, h, w, dout)?, h / 2, w / 2)
                } else {
                    (sc, h, w)
                }
            }
            None => (x, h, w),
        };
        let ws = self.window;
        let (xw, nb, sh, sw) = if ws > 0 {
            let (xw, nh, nw) = win_part(gpu, &xn, 1, h, w, dim, ws)?;
            (xw, nh * nw, ws, ws)
        } else {
            (xn, 1, h, w)
        };
        let n = sh * sw;
        let qkv = linear(gpu, &xw, 0, nb * n, &self.qkv, Act::None)?;
        drop(xw);
        let pooled;
        let (q, nq) = if self.q_stride {
            pooled = pool2x2(gpu, &qkv, 0, 3 * dout, nb, sh, sw, dout)?;
            let nq = (sh / 2) * (sw / 2);
            (Heads { buf: &pooled, off: 0, bs: nq * dout, hs: hd, ns: dout }, nq)
        } else {
            (Heads { buf: &qkv, off: 0, bs: n * 3 * dout, hs: hd, ns: 3 * dout }, n)
        };
        let k = Heads { buf: &qkv, off: dout, bs: n * 3 * dout, hs: hd, ns: 3 * dout };
        let v = Heads { buf: &qkv, off: 2 * dout, bs: n * 3 * dout, hs: hd, ns: 3 * dout };
        let o = gpu.alloc(nb * nq * dout)?;
        attention(gpu, nb, self.heads, nq, n, hd, q, k, v, Heads { buf: &o, off: 0, bs: nq * dout, hs: hd, ns: dout })?;
        if ws > 0 {
            let t = linear(gpu, &o, 0, nb * nq, &self.attn_proj, Act::None)?;
            let ws2 = if self.q_stride { ws / 2 } else { ws };
            win_unpart_add(gpu, &t, &res, 1, rh, rw, dout, ws2)?;
        } else {
            linear_into(gpu, &o, 0, nq, &self.attn_proj, Act::None, &res, 0, true)?;
        }
        let xn2 = layernorm(gpu, &res, rh * rw, dout, &self.norm2.w, &self.norm2.b, 1e-6, Act::None)?;
        let hidden = linear(gpu, &xn2, 0, rh * rw, &self.fc1, Act::Gelu)?;
        linear_into(gpu, &hidden, 0, rh * rw, &self.fc2, Act::None, &res, 0, true)?;
        Ok((res, rh, rw))
    }
}

/// The two-way transformer's `Attention` (transformer.py).
struct Attn {
    q: Lin,
    k: Lin,
    v: Lin,
    out: Lin,
    heads: usize,
}

impl Attn {
    /// `out_proj(attention(q_proj q, k_proj k, v_proj v))` written to (or added to) `y`.
    #[allow(clippy::too_many_arguments)]
    fn forward(&self, gpu: &Gpu, q: &wgpu::Buffer, nq: usize, k: &wgpu::Buffer, v: &wgpu::Buffer, nk: usize, y: &wgpu::Buffer, accumulate: bool) -> Result<()> {
        let qp = linear(gpu, q, 0, nq, &self.q, Act::None)?;
        let kp = linear(gpu, k, 0, nk, &self.k, Act::None)?;
        let vp = linear(gpu, v, 0, nk, &self.v, Act::None)?;
        let inner = self.q.dout;
        let hd = inner / self.heads;
        let o = gpu.alloc(nq * inner)?;
        let hv = |buf| Heads { buf, off: 0, bs: 0, hs: hd, ns: inner };
        attention(gpu, 1, self.heads, nq, nk, hd, hv(&qp), hv(&kp), hv(&vp), hv(&o))?;
        linear_into(gpu, &o, 0, nq, &self.out, Act::None, y, 0, accumulate)
    }
}

struct TwoWayBlock {
    self_attn: Attn,
    norm1: Norm,
    t2i: Attn,
    norm2: Norm,
    mlp0: Lin,
    mlp1: Lin,
    norm3: Norm,
    norm4: Norm,
    i2t: Attn,
    skip_first_layer_pe: bool,
}

/// The Bayesian head's tensors: `linear_add`, `linear_add_w`, and the small ones packed as
/// `[w_k (c), b_k, w_kw0, w_kw1, b_kw, b_bg, b_fg]` (see `bayes.wgsl`).
struct BayesW {
    linear_add: Lin,
    linear_add_w: Lin,
    hp: wgpu::Buffer,
}

enum Head {
    Hyper(Vec<[Lin; 3]>),
    Bayes(BayesW),
}

/// Image features kept on the GPU between clicks (`ImageFeatures` of ruac-core),
/// channels-last.
pub struct Features {
    /// `e*e x d`, with `no_mem_embed` added.
    pub image_embed: GBuf,
    /// `conv_s0` of the stride-4 level, `16 e*e x d/8`.
    pub feat_s0: GBuf,
    /// `conv_s1` of the stride-8 level, `4 e*e x d/4`.
    pub feat_s1: GBuf,
}

/// Everything the decoder computes for all mask tokens (before the selection).
pub struct DecoderOut {
    /// Mask logits, `k x lr*lr`.
    pub masks: GBuf,
    /// IoU per token (`k`), then the object-score logit, in one buffer.
    pub iou_obj: GBuf,
    /// Uncertainty per token, `k x lr*lr`.
    pub uncertainty: GBuf,
}

/// How `decode` computes the uncertainty.
#[derive(Debug, Clone, Copy)]
pub enum UncMode {
    MonteCarlo { samples: usize, seed: u64 },
    Analytic,
}

pub struct GpuModel {
    pub cfg: Sam2Config,
    /// Bytes of GPU memory the weights take (f16 linear weights halve most of it).
    pub weight_bytes: u64,
    /// Checkpoint tensors stored as f16 (empty with f32 weights).
    pub f16_tensors: Vec<String>,
    patch_w: wgpu::Buffer,
    patch_b: wgpu::Buffer,
    pos_embed: wgpu::Buffer,
    blocks: Vec<Block>,
    stage_ends: Vec<usize>,
    neck: Vec<Lin>,
    no_mem_embed: wgpu::Buffer,
    conv_s0: Lin,
    conv_s1: Lin,
    pub dec: Decoder,
    pub n_tokens: usize,
}

/// Which decoder: SAM 2.1's (object-score token and head, high-resolution skips, sigmoid
/// IoU) or SAM 1's (`segment_anything/modeling/mask_decoder.py`: none of these, and the
/// checkpoints' own names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecoderKind {
    Sam2,
    Sam1,
}

/// Prompt encoder and mask decoder (two-way transformer, upscaling, IoU head, pixel head),
/// shared by both families.
pub struct Decoder {
    kind: DecoderKind,
    d: usize,
    /// Side of the image embedding.
    e: usize,
    image_size: usize,
    // Prompt encoder.
    gauss: wgpu::Buffer,
    point_emb: wgpu::Buffer,
    mask_conv1_w: wgpu::Buffer,
    mask_conv1_b: wgpu::Buffer,
    mask_ln1: Norm,
    mask_conv2_w: wgpu::Buffer,
    mask_conv2_b: wgpu::Buffer,
    mask_ln2: Norm,
    mask_conv3: Lin,
    no_mask_embed: wgpu::Buffer,
    /// `get_dense_pe` as `e*e x d`, computed once.
    dense_pe: GBuf,
    // Mask decoder.
    layers: Vec<TwoWayBlock>,
    final_attn: Attn,
    norm_final: Norm,
    /// SAM 2.1: `[obj_score_token, iou_token, mask_tokens]`, `(2 + k) x d`; SAM 1:
    /// `[iou_token, mask_tokens]`.
    out_tokens: wgpu::Buffer,
    up1_w: wgpu::Buffer,
    up1_b: wgpu::Buffer,
    up_ln: Norm,
    up2_w: wgpu::Buffer,
    up2_b: wgpu::Buffer,
    head: Head,
    iou_head: Vec<Lin>,
    obj_head: Vec<Lin>,
    jump: wgpu::Buffer,
    pub n_tokens: usize,
}

/// The decoder's sizes, read from either family's configuration.
pub struct DecoderDims {
    pub d: usize,
    pub e: usize,
    pub image_size: usize,
    pub heads: usize,
    pub depth: usize,
    pub n_tokens: usize,
    pub iou_head_depth: usize,
    pub bayes: bool,
}

impl GpuModel {
    /// Uploads the weights of `cfg` from `ck` (already checked by `Checkpoint::build_model`).
    pub fn new(gpu: &Gpu, ck: &Checkpoint, cfg: &Sam2Config) -> Result<Self> {
        let ld = Loader { ck, gpu, f16_names: Default::default() };
        let uploaded_before = gpu.uploaded_bytes();
        let hc = &cfg.hiera;
        let t = "image_encoder.trunk";
        // Hiera blocks: the same schedule as HieraTrunk::new.
        let stage_ends: Vec<usize> = (1..=hc.stages.len()).map(|i| hc.stages[..i].iter().sum::<usize>() - 1).collect();
        let q_pool_blocks: Vec<usize> = stage_ends[..stage_ends.len() - 1].iter().map(|x| x + 1).take(hc.q_pool).collect();
        let depth: usize = hc.stages.iter().sum();
        let (mut dim, mut heads, mut cur_stage) = (hc.embed_dim, hc.num_heads, 1);
        let mut blocks = Vec::with_capacity(depth);
        for i in 0..depth {
            let mut dim_out = dim;
            let mut window = hc.window_spec[cur_stage - 1];
            if hc.global_att_blocks.contains(&i) {
                window = 0;
            }
            if i > 0 && stage_ends.contains(&(i - 1)) {
                dim_out = (dim as f64 * hc.dim_mul) as usize;
                heads = (heads as f64 * hc.head_mul) as usize;
                cur_stage += 1;
            }
            if dim_out / heads > crate::kernels::attention::MAX_HEAD_DIM {
                return Err(GpuError::Unsupported(format!("Hiera head dimension {}", dim_out / heads)));
            }
            let p = format!("{t}.blocks.{i}");
            blocks.push(Block {
                norm1: ld.norm(&format!("{p}.norm1"))?,
                qkv: ld.lin(&format!("{p}.attn.qkv"))?,
                attn_proj: ld.lin(&format!("{p}.attn.proj"))?,
                norm2: ld.norm(&format!("{p}.norm2"))?,
                fc1: ld.lin(&format!("{p}.mlp.layers.0"))?,
                fc2: ld.lin(&format!("{p}.mlp.layers.1"))?,
                proj: if dim != dim_out { Some(ld.lin(&format!("{p}.proj"))?) } else { None },
                dim,
                dim_out,
                heads,
                window,
                q_stride: q_pool_blocks.contains(&i),
            });
            dim = dim_out;
        }
        // Positional embedding for this input size, as HieraTrunk::pos_embed_for: bicubic
        // background plus the tiled window embedding, stored channels-last.
        let size = cfg.image_size / 4;
        let (bkg, bd) = ld.host(&format!("{t}.pos_embed"))?;
        let (win, wd) = ld.host(&format!("{t}.pos_embed_window"))?;
        let (c, bh, bw, ws) = (bd[1], bd[2], bd[3], wd[2]);
        if !size.is_multiple_of(ws) {
            return Err(GpuError::Core(ruac_core::Error::Invalid(format!("feature size {size} is not a multiple of the positional window {ws}"))));
        }
        let up = bicubic_resize(&bkg, c, bh, bw, size, size);
        let mut pos = vec![0f32; size * size * c];
        for ch in 0..c {
            for y in 0..size {
                for x in 0..size {
                    pos[(y * size + x) * c + ch] = up[(ch * size + y) * size + x] + win[(ch * ws + y % ws) * ws + x % ws];
                }
            }
        }

        let mut chans = hc.stage_dims();
        chans.reverse();
        let neck = (0..chans.len()).map(|i| ld.lin(&format!("image_encoder.neck.convs.{i}.conv"))).collect::<Result<Vec<_>>>()?;
        let dc = &cfg.decoder;
        let dims = DecoderDims {
            d: cfg.d_model,
            e: cfg.embedding_size(),
            image_size: cfg.image_size,
            heads: dc.transformer_heads,
            depth: dc.transformer_depth,
            n_tokens: dc.num_multimask_outputs + 1,
            iou_head_depth: dc.iou_head_depth,
            bayes: cfg.bayes_head.is_some(),
        };
        let dec = Decoder::new(&ld, DecoderKind::Sam2, &dims)?;
        let md = "sam_mask_decoder";
        Ok(Self {
            cfg: cfg.clone(),
            patch_w: ld.buf(&format!("{t}.patch_embed.proj.weight"))?,
            patch_b: ld.buf(&format!("{t}.patch_embed.proj.bias"))?,
            pos_embed: gpu.upload("pos_embed", &pos),
            blocks,
            stage_ends,
            neck,
            no_mem_embed: ld.buf("no_mem_embed")?,
            conv_s0: ld.lin(&format!("{md}.conv_s0"))?,
            conv_s1: ld.lin(&format!("{md}.conv_s1"))?,
            n_tokens: dec.n_tokens,
            dec,
            // Last: every upload above has happened (fields are evaluated in order).
            weight_bytes: gpu.uploaded_bytes() - uploaded_before,
            f16_tensors: ld.f16_names.take(),
        })
    }

    /// Whether the linear weights were uploaded as f16.
    pub fn weights_f16(&self) -> bool {
        !self.f16_tensors.is_empty()
    }

    /// Hiera trunk outputs, high resolution first: `(buffer, h, w, channels)`.
    pub fn trunk(&self, gpu: &Gpu, img: &ruac_core::image_io::RgbImage) -> Result<Vec<(GBuf, usize, usize, usize)>> {
        let s = self.cfg.image_size;
        let x = preprocess::preprocess(gpu, img, s)?;
        let c0 = self.cfg.hiera.embed_dim;
        let pe = Conv2d { w: &self.patch_w, b: &self.patch_b, cin: 3, cout: c0, k: 7, stride: 4, pad: 3 };
        let (mut x, mut h, mut w) = conv2d(gpu, &x, s, s, &pe, Act::None)?;
        add_bcast(gpu, &x, 0, h * w * c0, &self.pos_embed, 0, h * w * c0)?;
        let mut outs = Vec::with_capacity(self.stage_ends.len());
        for (i, blk) in self.blocks.iter().enumerate() {
            (x, h, w) = blk.forward(gpu, x, h, w)?;
            if self.stage_ends.contains(&i) {
                let c = blk.dim_out;
                // Later blocks may add into `x`: keep a copy of the stage output.
                let keep = gpu.alloc(h * w * c)?;
                gpu.copy(&x, 0, &keep, 0, h * w * c);
                outs.push((keep, h, w, c));
            }
        }
        Ok(outs)
    }

    /// `set_image`: trunk, FPN neck (lateral 1x1 + nearest top-down), scalp, `no_mem_embed`
    /// and the decoder's `conv_s0` / `conv_s1` skips.
    pub fn encode(&self, gpu: &Gpu, img: &ruac_core::image_io::RgbImage) -> Result<Features> {
        let trunk = self.trunk(gpu, img)?;
        let d = self.cfg.d_model;
        let n = trunk.len() - 1;
        let mut fpn: Vec<Option<(GBuf, usize, usize)>> = (0..trunk.len()).map(|_| None).collect();
        let mut prev: Option<usize> = None;
        for i in (0..=n).rev() {
            let (x, h, w, _) = &trunk[i];
            let lat = linear(gpu, x, 0, h * w, &self.neck[n - i], Act::None)?;
            if let (Some(p), true) = (prev, self.cfg.fpn_top_down_levels.contains(&i)) {
                if let Some((pb, _, _)) = &fpn[p] {
                    up_nearest_add(gpu, pb, &lat, *h, *w, d)?;
                }
            }
            fpn[i] = Some((lat, *h, *w));
            prev = Some(i);
        }
        drop(trunk);
        let keep = fpn.len() - self.cfg.scalp;
        let take = |i: usize| fpn[i].as_ref().ok_or_else(|| GpuError::Internal(format!("FPN level {i} missing")));
        let (last, lh, lw) = take(keep - 1)?;
        let image_embed = gpu.alloc(lh * lw * d)?;
        gpu.copy(last, 0, &image_embed, 0, lh * lw * d);
        add_bcast(gpu, &image_embed, 0, lh * lw * d, &self.no_mem_embed, 0, d)?;
        let (l0, h0, w0) = take(0)?;
        let feat_s0 = linear(gpu, l0, 0, h0 * w0, &self.conv_s0, Act::None)?;
        let (l1, h1, w1) = take(1)?;
        let feat_s1 = linear(gpu, l1, 0, h1 * w1, &self.conv_s1, Act::None)?;
        Ok(Features { image_embed, feat_s0, feat_s1 })
    }

    /// Prompt encoder, two-way transformer, upscaling, IoU/object heads, pixel head and
    /// the uncertainty of every mask token. `points`: `(x + 0.5, y + 0.5, label)` in
    /// input-image pixels, boxes as corners (labels 2, 3), without the padding point.
    pub fn decode(&self, gpu: &Gpu, f: &Features, points: &[(f32, f32, f32)], mask_input: Option<&[f32]>, mode: UncMode) -> Result<DecoderOut> {
        // SAM 2.1 pads every point prompt (`forward(points, boxes=None)`).
        let mut pts = points.to_vec();
        if !pts.is_empty() {
            pts.push((0.0, 0.0, -1.0));
        }
        self.dec.decode(gpu, &f.image_embed, Some((&f.feat_s0, &f.feat_s1)), &pts, mask_input, mode)
    }
}

impl Decoder {
    /// Uploads the prompt encoder and mask decoder of either family (`kind` picks the
    /// checkpoint names and the parts SAM 1 lacks).
    pub(crate) fn new(ld: &Loader, kind: DecoderKind, dims: &DecoderDims) -> Result<Self> {
        let gpu = ld.gpu;
        let (d, e, kind) = (dims.d, dims.e, kind);
        let sam2 = kind == DecoderKind::Sam2;
        let (pe, md) = if sam2 { ("sam_prompt_encoder", "sam_mask_decoder") } else { ("prompt_encoder", "mask_decoder") };
        // SAM 1's `MLPBlock` in the two-way transformer is `lin1`/`lin2` (sam1/mask_decoder.rs).
        let (mlp0, mlp1) = if sam2 { ("mlp.layers.0", "mlp.layers.1") } else { ("mlp.lin1", "mlp.lin2") };
        let mut point_emb = Vec::with_capacity(5 * d);
        for i in 0..4 {
            point_emb.extend(ld.host(&format!("{pe}.point_embeddings.{i}.weight"))?.0);
        }
        point_emb.extend(ld.host(&format!("{pe}.not_a_point_embed.weight"))?.0);
        let gauss = ld.buf(&format!("{pe}.pe_layer.positional_encoding_gaussian_matrix"))?;
        let dense_pe = prompt::grid(gpu, &gauss, e, e, d)?;

        let attn = |p: &str| -> Result<Attn> {
            Ok(Attn {
                q: ld.lin(&format!("{p}.q_proj"))?,
                k: ld.lin(&format!("{p}.k_proj"))?,
                v: ld.lin(&format!("{p}.v_proj"))?,
                out: ld.lin(&format!("{p}.out_proj"))?,
                heads: dims.heads,
            })
        };
        let mut layers = Vec::with_capacity(dims.depth);
        for i in 0..dims.depth {
            let p = format!("{md}.transformer.layers.{i}");
            layers.push(TwoWayBlock {
                self_attn: attn(&format!("{p}.self_attn"))?,
                norm1: ld.norm(&format!("{p}.norm1"))?,
                t2i: attn(&format!("{p}.cross_attn_token_to_image"))?,
                norm2: ld.norm(&format!("{p}.norm2"))?,
                mlp0: ld.lin(&format!("{p}.{mlp0}"))?,
                mlp1: ld.lin(&format!("{p}.{mlp1}"))?,
                norm3: ld.norm(&format!("{p}.norm3"))?,
                norm4: ld.norm(&format!("{p}.norm4"))?,
                i2t: attn(&format!("{p}.cross_attn_image_to_token"))?,
                skip_first_layer_pe: i == 0,
            });
        }
        for l in &layers {
            for a in [&l.self_attn, &l.t2i, &l.i2t] {
                if a.q.dout / a.heads > crate::kernels::attention::MAX_HEAD_DIM {
                    return Err(GpuError::Unsupported(format!("decoder head dimension {}", a.q.dout / a.heads)));
                }
            }
        }
        let n_tokens = dims.n_tokens;
        let mut out_tokens = if sam2 { ld.host(&format!("{md}.obj_score_token.weight"))?.0 } else { vec![] };
        out_tokens.extend(ld.host(&format!("{md}.iou_token.weight"))?.0);
        out_tokens.extend(ld.host(&format!("{md}.mask_tokens.weight"))?.0);
        let head = match dims.bayes {
            true => {
                let b = format!("{md}.pixel_bndl");
                let mut hp = ld.host(&format!("{b}.linear_k.0.weight"))?.0;
                hp.extend(ld.host(&format!("{b}.linear_k.0.bias"))?.0);
                hp.extend(ld.host(&format!("{b}.linear_kw.0.weight"))?.0);
                hp.extend(ld.host(&format!("{b}.linear_kw.0.bias"))?.0);
                hp.extend(ld.host(&format!("{b}.linear.bias"))?.0);
                Head::Bayes(BayesW {
                    linear_add: ld.lin(&format!("{b}.linear_add.0"))?,
                    linear_add_w: ld.lin(&format!("{b}.linear_add_w"))?,
                    hp: gpu.upload("bayes_hp", &hp),
                })
            }
            false => Head::Hyper(
                (0..n_tokens)
                    .map(|i| {
                        let p = format!("{md}.output_hypernetworks_mlps.{i}.layers");
                        Ok([ld.lin(&format!("{p}.0"))?, ld.lin(&format!("{p}.1"))?, ld.lin(&format!("{p}.2"))?])
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
        };
        let mdn = format!("{pe}.mask_downscaling");
        Ok(Self {
            kind,
            d,
            e,
            image_size: dims.image_size,
            gauss,
            point_emb: gpu.upload("point_embeddings", &point_emb),
            mask_conv1_w: ld.buf(&format!("{mdn}.0.weight"))?,
            mask_conv1_b: ld.buf(&format!("{mdn}.0.bias"))?,
            mask_ln1: ld.norm(&format!("{mdn}.1"))?,
            mask_conv2_w: ld.buf(&format!("{mdn}.3.weight"))?,
            mask_conv2_b: ld.buf(&format!("{mdn}.3.bias"))?,
            mask_ln2: ld.norm(&format!("{mdn}.4"))?,
            mask_conv3: ld.lin(&format!("{mdn}.6"))?,
            no_mask_embed: ld.buf(&format!("{pe}.no_mask_embed.weight"))?,
            dense_pe,
            layers,
            final_attn: attn(&format!("{md}.transformer.final_attn_token_to_image"))?,
            norm_final: ld.norm(&format!("{md}.transformer.norm_final_attn"))?,
            out_tokens: gpu.upload("output_tokens", &out_tokens),
            up1_w: ld.buf(&format!("{md}.output_upscaling.0.weight"))?,
            up1_b: ld.buf(&format!("{md}.output_upscaling.0.bias"))?,
            up_ln: ld.norm(&format!("{md}.output_upscaling.1"))?,
            up2_w: ld.buf(&format!("{md}.output_upscaling.3.weight"))?,
            up2_b: ld.buf(&format!("{md}.output_upscaling.3.bias"))?,
            head,
            iou_head: (0..dims.iou_head_depth).map(|i| ld.lin(&format!("{md}.iou_prediction_head.layers.{i}"))).collect::<Result<Vec<_>>>()?,
            obj_head: if sam2 { (0..3).map(|i| ld.lin(&format!("{md}.pred_obj_score_head.layers.{i}"))).collect::<Result<Vec<_>>>()? } else { vec![] },
            jump: gpu.upload("pcg_jump", &bayes::pcg_jump_table()),
            n_tokens,
        })
    }

    /// Output tokens before the mask tokens: `[obj, iou]` (SAM 2.1) or `[iou]` (SAM 1).
    fn n_special(&self) -> usize {
        match self.kind {
            DecoderKind::Sam2 => 2,
            DecoderKind::Sam1 => 1,
        }
    }

    /// Prompt encoder, two-way transformer, upscaling (with SAM 2.1's skips `(s0, s1)`),
    /// IoU/object heads, pixel head and the uncertainty of every mask token for the
    /// `e*e x d` embedding. `points`: `(x + 0.5, y + 0.5, label)` in input-image pixels,
    /// padding point (label -1) included where the family adds one.
    #[allow(clippy::too_many_arguments)]
    pub fn decode(&self, gpu: &Gpu, image_embed: &wgpu::Buffer, skips: Option<(&wgpu::Buffer, &wgpu::Buffer)>, points: &[(f32, f32, f32)], mask_input: Option<&[f32]>, mode: UncMode) -> Result<DecoderOut> {
        let d = self.d;
        let e = self.e;
        let hw = e * e;
        let lr = 4 * e;
        let lhw = lr * lr;
        let c8 = d / 8;
        let kt = self.n_tokens;

        // Sparse prompt.
        let np = points.len();
        let sparse = if points.is_empty() {
            None
        } else {
            let coords: Vec<f32> = points.iter().flat_map(|p| [p.0, p.1]).collect();
            let labels: Vec<f32> = points.iter().map(|p| p.2).collect();
            let cb = gpu.upload("coords", &coords);
            let lb = gpu.upload("labels", &labels);
            Some(prompt::points(gpu, &self.gauss, &self.point_emb, &cb, &lb, np, d, self.image_size)?)
        };
        // Dense prompt added to the image embedding.
        let src = gpu.alloc(hw * d)?;
        gpu.copy(image_embed, 0, &src, 0, hw * d);
        match mask_input {
            Some(m) => {
                let mb = gpu.upload("mask_input", m);
                let c1 = Conv2d { w: &self.mask_conv1_w, b: &self.mask_conv1_b, cin: 1, cout: 4, k: 2, stride: 2, pad: 0 };
                let (x, h1, w1) = conv2d(gpu, &mb, lr, lr, &c1, Act::None)?;
                let x = layernorm(gpu, &x, h1 * w1, 4, &self.mask_ln1.w, &self.mask_ln1.b, 1e-6, Act::Gelu)?;
                let c2 = Conv2d { w: &self.mask_conv2_w, b: &self.mask_conv2_b, cin: 4, cout: 16, k: 2, stride: 2, pad: 0 };
                let (x, h2, w2) = conv2d(gpu, &x, h1, w1, &c2, Act::None)?;
                let x = layernorm(gpu, &x, h2 * w2, 16, &self.mask_ln2.w, &self.mask_ln2.b, 1e-6, Act::Gelu)?;
                let dense = linear(gpu, &x, 0, h2 * w2, &self.mask_conv3, Act::None)?;
                add_bcast(gpu, &src, 0, hw * d, &dense, 0, hw * d)?;
            }
            None => add_bcast(gpu, &src, 0, hw * d, &self.no_mask_embed, 0, d)?,
        }
        // Tokens: [obj (SAM 2.1), iou, mask tokens, sparse].
        let ns = self.n_special();
        let nt = ns + kt + np;
        let tokens = gpu.alloc(nt * d)?;
        gpu.copy(&self.out_tokens, 0, &tokens, 0, (ns + kt) * d);
        if let Some(s) = &sparse {
            gpu.copy(s, 0, &tokens, (ns + kt) * d, np * d);
        }

        // Two-way transformer (transformer.py); `tokens` is also the query PE.
        let mut queries = gpu.alloc(nt * d)?;
        gpu.copy(&tokens, 0, &queries, 0, nt * d);
        let mut keys = src;
        let kpe = &self.dense_pe;
        for l in &self.layers {
            if l.skip_first_layer_pe {
                let nq = gpu.alloc(nt * d)?;
                l.self_attn.forward(gpu, &queries, nt, &queries, &queries, nt, &nq, false)?;
                queries = nq;
            } else {
                let q = add_new(gpu, &queries, &tokens, nt * d)?;
                l.self_attn.forward(gpu, &q, nt, &q, &queries, nt, &queries, true)?;
            }
            queries = layernorm(gpu, &queries, nt, d, &l.norm1.w, &l.norm1.b, 1e-5, Act::None)?;
            let q = add_new(gpu, &queries, &tokens, nt * d)?;
            let k = add_new(gpu, &keys, kpe, hw * d)?;
            l.t2i.forward(gpu, &q, nt, &k, &keys, hw, &queries, true)?;
            queries = layernorm(gpu, &queries, nt, d, &l.norm2.w, &l.norm2.b, 1e-5, Act::None)?;
            let hdn = linear(gpu, &queries, 0, nt, &l.mlp0, Act::Relu)?;
            linear_into(gpu, &hdn, 0, nt, &l.mlp1, Act::None, &queries, 0, true)?;
            queries = layernorm(gpu, &queries, nt, d, &l.norm3.w, &l.norm3.b, 1e-5, Act::None)?;
            let q = add_new(gpu, &queries, &tokens, nt * d)?;
            l.i2t.forward(gpu, &k, hw, &q, &queries, nt, &keys, true)?;
            keys = layernorm(gpu, &keys, hw, d, &l.norm4.w, &l.norm4.b, 1e-5, Act::None)?;
        }
        let q = add_new(gpu, &queries, &tokens, nt * d)?;
        let k = add_new(gpu, &keys, kpe, hw * d)?;
        self.final_attn.forward(gpu, &q, nt, &k, &keys, hw, &queries, true)?;
        let hs = layernorm(gpu, &queries, nt, d, &self.norm_final.w, &self.norm_final.b, 1e-5, Act::None)?;
        drop((q, k, queries));

        // Upscaling, with the high-resolution skips in SAM 2.1.
        let (s0, s1) = match skips {
            Some((s0, s1)) => (Some(s0), Some(s1)),
            None => (None, None),
        };
        let up1 = conv_t2x2(gpu, &keys, e, e, d, d / 4, &self.up1_w, &self.up1_b, s1, Act::None)?;
        let up1 = layernorm(gpu, &up1, 4 * hw, d / 4, &self.up_ln.w, &self.up_ln.b, 1e-6, Act::Gelu)?;
        let up = conv_t2x2(gpu, &up1, 2 * e, 2 * e, d / 4, c8, &self.up2_w, &self.up2_b, s0, Act::Gelu)?;
        drop((up1, keys));

        // IoU head (SAM 2.1: token 1, sigmoid output; SAM 1: token 0, raw) and SAM 2.1's
        // object-score head (token 0).
        let iou_obj = gpu.alloc(kt + 1)?;
        let mlp = |layers: &[Lin], row: usize, out_off: usize, last: Act| -> Result<()> {
            let mut x = linear(gpu, &hs, row * d, 1, &layers[0], if layers.len() > 1 { Act::Relu } else { last })?;
            for (i, l) in layers.iter().enumerate().skip(1) {
                if i + 1 == layers.len() {
                    linear_into(gpu, &x, 0, 1, l, last, &iou_obj, out_off, false)?;
                } else {
                    x = linear(gpu, &x, 0, 1, l, Act::Relu)?;
                }
            }
            if layers.len() == 1 {
                gpu.copy(&x, 0, &iou_obj, out_off, layers[0].dout);
            }
            Ok(())
        };
        if self.kind == DecoderKind::Sam2 {
            mlp(&self.iou_head, 1, 0, Act::Sigmoid)?;
            mlp(&self.obj_head, 0, kt, Act::None)?;
        } else {
            mlp(&self.iou_head, 0, 0, Act::None)?;
        }

        let masks = gpu.alloc(kt * lhw)?;
        let zt = |buf| View::transposed(buf, 0, c8);
        let uncertainty = match &self.head {
            Head::Hyper(mlps) => {
                let hyper = gpu.alloc(kt * c8)?;
                for (i, [l0, l1, l2]) in mlps.iter().enumerate() {
                    let x = linear(gpu, &hs, (ns + i) * d, 1, l0, Act::Relu)?;
                    let x = linear(gpu, &x, 0, 1, l1, Act::Relu)?;
                    linear_into(gpu, &x, 0, 1, l2, Act::None, &hyper, i * c8, false)?;
                }
                matmul(gpu, &Matmul::new(kt, lhw, c8, View::rows(&hyper, 0, c8), zt(&up), View::rows(&masks, 0, lhw)))?;
                // Plain SAM 2.1: the entropy of its own probability (nats, or / ln 2).
                let div = match mode {
                    UncMode::Analytic => std::f32::consts::LN_2,
                    UncMode::MonteCarlo { .. } => 1.0,
                };
                bayes::entropy(gpu, &masks, kt * lhw, div)?
            }
            Head::Bayes(b) => {
                let a = linear(gpu, &up, 0, lhw, &b.linear_add, Act::Relu)?;
                let loc = bayes::local(gpu, &a, &b.hp, lhw, c8)?;
                drop(a);
                let rl = linear(gpu, &hs, ns * d, kt, &b.linear_add_w, Act::None)?;
                let g0 = bayes::global(gpu, &rl, &b.hp, kt, c8, 0.0)?;
                let mut mm = Matmul::new(kt, lhw, c8, View::rows(&g0.diff, 0, c8), zt(&loc.mean), View::rows(&masks, 0, lhw));
                mm.bias = Bias::Rows(&g0.bias, 0);
                matmul(gpu, &mm)?;
                match mode {
                    UncMode::MonteCarlo { samples, seed } => bayes::mc_uncertainty(gpu, &loc, &g0, &self.jump, lhw, c8, kt, samples.max(1), seed)?,
                    UncMode::Analytic => {
                        // The reference evaluates it at factor_w = 0.02 (bayes_head.rs).
                        let g2 = bayes::global(gpu, &rl, &b.hp, kt, c8, 0.02)?;
                        let mu = gpu.alloc(kt * lhw)?;
                        let mut mm = Matmul::new(kt, lhw, c8, View::rows(&g2.diff, 0, c8), zt(&loc.mean), View::rows(&mu, 0, lhw));
                        mm.bias = Bias::Rows(&g2.bias, 0);
                        matmul(gpu, &mm)?;
                        let v = gpu.alloc(kt * lhw)?;
                        matmul(gpu, &Matmul::new(kt, lhw, c8, View::rows(&g2.var, 0, c8), zt(&loc.var), View::rows(&v, 0, lhw)))?;
                        bayes::analytic(gpu, &mu, &v, kt * lhw)?
                    }
                }
            }
        };
        Ok(DecoderOut { masks, iou_obj, uncertainty })
    }
}
