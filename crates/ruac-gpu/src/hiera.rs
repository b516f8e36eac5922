//! The Hiera trunk on the GPU, as ruac-core's `model/hiera.rs` (`hieradet.py`): patch
//! embedding, the bicubic background plus tiled window positional embedding, and the
//! multi-scale blocks of [`HieraConfig::blocks`], the one schedule both backends build.
use ruac_core::image_io::RgbImage;
use ruac_core::model::config::{HieraBlockSpec, HieraConfig};
use ruac_core::model::hiera::bicubic_resize;

use crate::error::{GpuError, Result};
use crate::gpu::{GBuf, Gpu};
use crate::kernels::attention::{attention, AttnShape, Heads, Qkvo, MAX_HEAD_DIM};
use crate::kernels::conv::{conv2d, Conv2d};
use crate::kernels::eltwise::add_bcast;
use crate::kernels::layout::{pool2x2, win_part, win_unpart_add, Maps};
use crate::kernels::matmul::Act;
use crate::kernels::preprocess::preprocess;
use crate::layers::{Lin, Norm, Out};
use crate::loader::Weights;

/// Hiera's `MultiScaleBlock`.
struct MultiScaleBlock {
    norm1: Norm,
    qkv: Lin,
    attn_proj: Lin,
    norm2: Norm,
    fc1: Lin,
    fc2: Lin,
    /// The residual's projection at a stage transition.
    proj: Option<Lin>,
    spec: HieraBlockSpec,
}

impl MultiScaleBlock {
    fn new(w: &Weights, spec: HieraBlockSpec) -> Result<Self> {
        if spec.dim_out / spec.heads > MAX_HEAD_DIM {
            return Err(GpuError::Unsupported(format!("Hiera head dimension {}", spec.dim_out / spec.heads)));
        }
        Ok(Self {
            norm1: w.norm("norm1", 1e-6)?,
            qkv: w.lin("attn.qkv")?,
            attn_proj: w.lin("attn.proj")?,
            norm2: w.norm("norm2", 1e-6)?,
            fc1: w.lin("mlp.layers.0")?,
            fc2: w.lin("mlp.layers.1")?,
            proj: if spec.dim != spec.dim_out { Some(w.lin("proj")?) } else { None },
            spec,
        })
    }

    /// `x`: `h x w x dim`; returns `h' x w' x dim_out`.
    fn forward(&self, gpu: &Gpu, x: GBuf, (h, w): (usize, usize)) -> Result<(GBuf, usize, usize)> {
        let HieraBlockSpec { dim, dim_out: dout, heads, window, q_stride, .. } = self.spec;
        let head_dim = dout / heads;
        let xn = self.norm1.forward(gpu, &x, h * w, Act::None)?;
        // The residual: the input, or its projection (pooled at a stage transition).
        let (res, rh, rw) = match &self.proj {
            Some(p) => {
                let shortcut = p.forward(gpu, &xn, h * w, Act::None)?;
                if q_stride {
                    (pool2x2(gpu, &shortcut, 0, dout, Maps::one(h, w, dout))?, h / 2, w / 2)
                } else {
                    (shortcut, h, w)
                }
            }
            None => (x, h, w),
        };
        let (windows, n_windows, wh, ww) = if window > 0 {
            let (xw, nh, nw) = win_part(gpu, &xn, Maps::one(h, w, dim), window)?;
            (xw, nh * nw, window, window)
        } else {
            (xn, 1, h, w)
        };
        let n = wh * ww;
        let nq = if q_stride { (wh / 2) * (ww / 2) } else { n };
        let o = gpu.alloc(n_windows * nq * dout)?;
        // q, k and v of a window group at a time: at 1024 px the first block of stage 2
        // would otherwise hold 6 x dim values per stage-1 token in one buffer (144 MiB for
        // tiny), past WebGPU's default 128 MiB binding. One group when everything fits.
        let group = gpu.items_per_binding(n * 3 * dout);
        for w0 in (0..n_windows).step_by(group) {
            let gn = group.min(n_windows - w0);
            let qkv = self.qkv.forward_at(gpu, (&windows, w0 * n * dim), gn * n, Act::None)?;
            let pooled;
            let q = if q_stride {
                pooled = pool2x2(gpu, &qkv, 0, 3 * dout, Maps { b: gn, h: wh, w: ww, c: dout })?;
                Heads { buf: &pooled, off: 0, bs: nq * dout, hs: head_dim, ns: dout }
            } else {
                Heads { buf: &qkv, off: 0, bs: n * 3 * dout, hs: head_dim, ns: 3 * dout }
            };
            let k = Heads { buf: &qkv, off: dout, bs: n * 3 * dout, hs: head_dim, ns: 3 * dout };
            let v = Heads { buf: &qkv, off: 2 * dout, bs: n * 3 * dout, hs: head_dim, ns: 3 * dout };
            let shape = AttnShape { batch: gn, heads, nq, nk: n, hd: head_dim };
            attention(gpu, shape, Qkvo { q, k, v, o: Heads { buf: &o, off: w0 * nq * dout, bs: nq * dout, hs: head_dim, ns: dout } })?;
        }
        drop(windows);
        if window > 0 {
            let t = self.attn_proj.forward(gpu, &o, n_windows * nq, Act::None)?;
            let out_window = if q_stride { window / 2 } else { window };
            win_unpart_add(gpu, &t, &res, Maps::one(rh, rw, dout), out_window)?;
        } else {
            self.attn_proj.forward_into(gpu, (&o, 0), nq, Act::None, Out::add_to(&res))?;
        }
        let xn2 = self.norm2.forward(gpu, &res, rh * rw, Act::None)?;
        // The MLP in row groups whose hidden activations bind (large's stage 1 at 1024 px
        // has 4 x 144 hidden values per token: 144 MiB).
        let rows = rh * rw;
        let group = gpu.items_per_binding(self.fc1.dout);
        for r0 in (0..rows).step_by(group) {
            let gr = group.min(rows - r0);
            let hidden = self.fc1.forward_at(gpu, (&xn2, r0 * dout), gr, Act::Gelu)?;
            self.fc2.forward_into(gpu, (&hidden, 0), gr, Act::None, Out { buf: &res, off: r0 * dout, add: true })?;
        }
        Ok((res, rh, rw))
    }
}

/// One trunk output: `h x w x channels`, channels-last.
pub struct StageOutput {
    pub buf: GBuf,
    pub h: usize,
    pub w: usize,
}

/// `Hiera` (`image_encoder.trunk`).
pub struct HieraTrunk {
    patch_w: wgpu::Buffer,
    patch_b: wgpu::Buffer,
    /// Positional embedding for the input size, channels-last.
    pos_embed: wgpu::Buffer,
    blocks: Vec<MultiScaleBlock>,
    embed_dim: usize,
    image_size: usize,
}

impl HieraTrunk {
    pub fn new(w: &Weights, cfg: &HieraConfig, image_size: usize) -> Result<Self> {
        let blocks = cfg.blocks().into_iter().enumerate().map(|(i, spec)| MultiScaleBlock::new(&w.pp(format!("blocks.{i}")), spec)).collect::<Result<Vec<_>>>()?;
        let patch = w.pp("patch_embed.proj");
        Ok(Self {
            patch_w: patch.buf("weight")?,
            patch_b: patch.buf("bias")?,
            pos_embed: w.gpu().upload("pos_embed", &pos_embed_for(w, image_size / 4)?),
            blocks,
            embed_dim: cfg.embed_dim,
            image_size,
        })
    }

    /// Preprocessing (on the GPU) and the trunk: every stage's output, high resolution first.
    pub fn forward(&self, gpu: &Gpu, img: &RgbImage) -> Result<Vec<StageOutput>> {
        let s = self.image_size;
        let x = preprocess(gpu, img, s)?;
        let c0 = self.embed_dim;
        let pe = Conv2d { w: &self.patch_w, b: &self.patch_b, cin: 3, cout: c0, k: 7, stride: 4, pad: 3 };
        let (mut x, mut h, mut w) = conv2d(gpu, &x, s, s, &pe, Act::None)?;
        add_bcast(gpu, &x, 0, h * w * c0, &self.pos_embed, 0, h * w * c0)?;
        let mut outs = vec![];
        for blk in &self.blocks {
            (x, h, w) = blk.forward(gpu, x, (h, w))?;
            if blk.spec.stage_end {
                let c = blk.spec.dim_out;
                // Later blocks may add into `x`: keep a copy of the stage output.
                let keep = gpu.alloc(h * w * c)?;
                gpu.copy(&x, 0, &keep, 0, h * w * c);
                outs.push(StageOutput { buf: keep, h, w });
            }
        }
        Ok(outs)
    }
}

/// `_get_pos_embed` for a `size x size` feature map (as `HieraTrunk::pos_embed_for` of
/// ruac-core): the bicubic-resized background plus the tiled window embedding, channels-last.
fn pos_embed_for(w: &Weights, size: usize) -> Result<Vec<f32>> {
    let (bkg, bd) = w.host("pos_embed")?;
    let (win, wd) = w.host("pos_embed_window")?;
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
    Ok(pos)
}
