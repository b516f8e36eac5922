//! [`GpuPredictor`]: `ruac_core::predictor::Predictor` on the GPU. `set_image` encodes once
//! and keeps the features on the GPU; each `predict` runs the prompt encoder and decoder and
//! fills the same flat [`PredictionMaps`] (within float rounding; the Monte Carlo draws are
//! the CPU's PCG32 stream). What to check, where prompts land, which token to return and how
//! to resize back are ruac-core's answers (`Prompt::validate`, `Placement`,
//! `select_tokens`, `Preprocessing::output_plan`); this file only moves buffers.
use candle_core::Device;
use ruac_core::checkpoint::Checkpoint;
use ruac_core::image_io::{OutputPlan, RgbImage};
use ruac_core::model::config::Sam2Config;
use ruac_core::model::mask_decoder::select_tokens;
use ruac_core::model::sam1::Sam1Config;
use ruac_core::model::ModelConfig;
use ruac_core::predictor::{PredictionMaps, Prompt, UncertaintyMode};

use crate::error::{GpuError, Result};
use crate::gpu::{GBuf, Gpu, Limits};
use crate::kernels::colormap;
use crate::kernels::layout::{bilinear, bilinear_into, bilinear_taps, Bilinear};
use crate::mask_decoder::DecoderOut;
use crate::sam1::Sam1GpuModel;
use crate::sam2::{Features, Sam2GpuModel};

/// The configuration [`GpuPredictor::from_config`] builds: ruac-core's [`ModelConfig`].
pub type GpuConfig = ModelConfig;

/// Choices for [`GpuPredictor::with_options`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GpuOptions {
    /// `Some(true)`: store the linear weights as f16 (needs `shader-f16`; an error without
    /// it), `Some(false)`: f32; `None`: f16 where the adapter offers `shader-f16`.
    pub f16_weights: Option<bool>,
    /// Request only WebGPU's default binding and buffer sizes (128 MiB / 256 MiB), as
    /// many integrated and mobile GPUs offer, even where the adapter offers more: the
    /// kernels then tile what would not fit in one binding. For tests and benchmarks.
    pub default_limits: bool,
    /// Adapter `N` of `gpu::list_adapters` (`--device wgpu:N`); `None`: the one wgpu
    /// prefers (a high-performance GPU first).
    pub adapter: Option<usize>,
}

/// The image currently encoded.
struct ImageState {
    features: Encoded,
    orig_hw: (usize, usize),
}

/// What `set_image` keeps on the GPU, per family.
enum Encoded {
    Sam2(Features),
    /// SAM 1's image embedding, `e*e x d`.
    Sam1(GBuf),
}

/// Either family's weights on the GPU.
enum Family {
    Sam2(Box<Sam2GpuModel>),
    Sam1(Box<Sam1GpuModel>),
}

/// SAM 2.1 / SAM 1 / RUAC predictor on the GPU, with `Predictor`'s semantics.
pub struct GpuPredictor {
    gpu: Gpu,
    model: Family,
    cfg: ModelConfig,
    image: Option<ImageState>,
    lut: wgpu::Buffer,
}

/// Every token's low-resolution results, read back in one go (the token choice needs them).
struct LowRes {
    masks: Vec<f32>,
    uncertainty: Vec<f32>,
    iou: Vec<f32>,
    /// SAM 2.1's object-score logit (unused for SAM 1).
    obj_score: f32,
}

/// The chosen tokens and what goes with them into the result.
struct Selection {
    tokens: Vec<usize>,
    obj_score: f32,
    mode: UncertaintyMode,
}

impl GpuPredictor {
    /// Requests an adapter and a device (with the limits the kernels need, checked against
    /// the adapter), checks the checkpoint against `cfg` exactly as the CPU path does
    /// (`Checkpoint::build_model`: every missing, unexpected, mis-shaped or non-finite
    /// tensor is an error), and uploads the weights once.
    pub async fn new(ckpt: &Checkpoint, cfg: &Sam2Config) -> Result<Self> {
        Self::with_options(ckpt, cfg, GpuOptions::default()).await
    }

    /// [`GpuPredictor::new`] with explicit choices (f16 or f32 weights).
    pub async fn with_options(ckpt: &Checkpoint, cfg: &Sam2Config, opts: GpuOptions) -> Result<Self> {
        Self::from_config(ckpt, &ModelConfig::Sam2(cfg.clone()), opts).await
    }

    /// A SAM 1 family model (SAM ViT-B/L/H, MobileSAM, LiteMedSAM, with or without RUAC's
    /// head), checked as `Checkpoint::build_sam1` checks it.
    pub async fn new_sam1(ckpt: &Checkpoint, cfg: &Sam1Config) -> Result<Self> {
        Self::from_config(ckpt, &ModelConfig::Sam1(cfg.clone()), GpuOptions::default()).await
    }

    /// Either family with explicit choices.
    pub async fn from_config(ckpt: &Checkpoint, cfg: &ModelConfig, opts: GpuOptions) -> Result<Self> {
        // The CPU model is built for its checks, then dropped.
        match cfg {
            ModelConfig::Sam2(c) => drop(ckpt.build_model(Some(c.clone()), &Device::Cpu)?),
            ModelConfig::Sam1(c) => drop(ckpt.build_sam1(Some(c.clone()), &Device::Cpu)?),
        }
        let mut gpu = Gpu::with_adapter(if opts.default_limits { Limits::WebGpuDefault } else { Limits::Adapter }, opts.adapter).await?;
        if let Some(on) = opts.f16_weights {
            gpu.set_f16_weights(on)?;
        }
        let model = match cfg {
            ModelConfig::Sam2(c) => Family::Sam2(Box::new(Sam2GpuModel::new(&gpu, ckpt, c)?)),
            ModelConfig::Sam1(c) => Family::Sam1(Box::new(Sam1GpuModel::new(&gpu, ckpt, c)?)),
        };
        let lut = gpu.upload("inferno", &colormap::lut());
        gpu.sync().await?;
        Ok(Self { gpu, model, cfg: cfg.clone(), image: None, lut })
    }

    /// Whether the linear weights are stored as f16 on the GPU.
    pub fn weights_f16(&self) -> bool {
        !self.f16_tensors().is_empty()
    }

    /// The checkpoint tensors held as f16 (empty with f32 weights).
    pub fn f16_tensors(&self) -> &[String] {
        match &self.model {
            Family::Sam2(m) => &m.f16_tensors,
            Family::Sam1(m) => &m.f16_tensors,
        }
    }

    /// GPU memory taken by the weights, in bytes.
    pub fn weight_bytes(&self) -> u64 {
        match &self.model {
            Family::Sam2(m) => m.weight_bytes,
            Family::Sam1(m) => m.weight_bytes,
        }
    }

    /// Backend and adapter name, e.g. `Vulkan: llvmpipe (LLVM 19.1.7, 256 bits) (...)`.
    pub fn adapter_info(&self) -> String {
        self.gpu.adapter_info()
    }

    /// The model's configuration.
    pub fn model_config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The SAM 2.1 configuration (`None` for a SAM 1 model).
    pub fn config(&self) -> Option<&Sam2Config> {
        match &self.cfg {
            ModelConfig::Sam2(c) => Some(c),
            ModelConfig::Sam1(_) => None,
        }
    }

    /// The SAM 1 configuration (`None` for a SAM 2.1 model).
    pub fn sam1_config(&self) -> Option<&Sam1Config> {
        match &self.cfg {
            ModelConfig::Sam1(c) => Some(c),
            ModelConfig::Sam2(_) => None,
        }
    }

    /// Forces the workgroup-memory kernels (`Some(false)`) or the CPU-adapter variants
    /// (`Some(true)`); `None` picks by adapter type.
    pub fn set_cpu_kernels(&mut self, cpu: Option<bool>) {
        self.gpu.set_cpu_kernels(cpu);
    }

    /// The device context (for kernel-level use and tests).
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Preprocesses and encodes an image of any size; the features stay on the GPU.
    pub async fn set_image(&mut self, img: &RgbImage) -> Result<()> {
        self.image = None;
        let features = match &self.model {
            Family::Sam2(m) => Encoded::Sam2(m.encode(&self.gpu, img)?),
            Family::Sam1(m) => Encoded::Sam1(m.encode(&self.gpu, img)?),
        };
        self.gpu.sync().await?;
        self.image = Some(ImageState { features, orig_hw: (img.height, img.width) });
        Ok(())
    }

    /// The cached image embedding, channels-last (`e*e x d`; SAM 2.1's with `no_mem_embed`
    /// added), for checks against the CPU encoder.
    pub async fn image_embedding(&self) -> Result<Vec<f32>> {
        let st = self.image.as_ref().ok_or(ruac_core::Error::NoImage)?;
        let b = match &st.features {
            Encoded::Sam2(f) => &f.image_embed,
            Encoded::Sam1(e) => e,
        };
        self.gpu.read(b, 0, b.len).await
    }

    /// Prompt encoder + mask decoder + uncertainty on the cached features: the same masks,
    /// IoU, object score, low-resolution logits and uncertainty as `Predictor::predict_maps`
    /// with `Predictor::mode = mode` (SAM 1: no object score, `+inf` as on the CPU).
    pub async fn predict(&self, p: &Prompt, mode: UncertaintyMode) -> Result<PredictionMaps> {
        let st = self.image.as_ref().ok_or(ruac_core::Error::NoImage)?;
        let cfg = &self.cfg;
        let lr = cfg.low_res_size();
        p.validate(st.orig_hw, lr)?;
        let mask = p.mask_values()?;
        let points = cfg.placement(st.orig_hw).place(p, st.orig_hw).encoder_points();
        let out = match (&self.model, &st.features) {
            (Family::Sam2(m), Encoded::Sam2(f)) => m.decode(&self.gpu, f, &points, mask.as_deref(), mode)?,
            (Family::Sam1(m), Encoded::Sam1(e)) => m.decode(&self.gpu, e, &points, mask.as_deref(), mode)?,
            _ => return Err(GpuError::Internal("the cached features belong to another model".into())),
        };
        let n_multimask = cfg.num_multimask_outputs();
        let low = self.read_low(&out, n_multimask + 1, lr).await?;
        let tokens = select_tokens(p.multimask, n_multimask, cfg.single_mask(), &low.masks[..lr * lr], &low.iou);
        let obj_score = match cfg {
            ModelConfig::Sam2(_) => low.obj_score,
            ModelConfig::Sam1(_) => f32::INFINITY,
        };
        self.finish(&out, low, Selection { tokens, obj_score, mode }, st.orig_hw).await
    }

    /// One read of every token's low-resolution logits and uncertainty and the IoU (and
    /// object-score) values.
    async fn read_low(&self, out: &DecoderOut, n_tokens: usize, lr: usize) -> Result<LowRes> {
        let gpu = &self.gpu;
        let plane = n_tokens * lr * lr;
        let small = gpu.alloc(2 * plane + n_tokens + 1)?;
        gpu.copy(&out.masks, 0, &small, 0, plane);
        gpu.copy(&out.uncertainty, 0, &small, plane, plane);
        gpu.copy(&out.iou_obj, 0, &small, 2 * plane, n_tokens + 1);
        let mut v = gpu.read(&small, 0, 2 * plane + n_tokens + 1).await?;
        let obj_score = v[2 * plane + n_tokens];
        let iou = v[2 * plane..2 * plane + n_tokens].to_vec();
        v.truncate(2 * plane);
        let uncertainty = v.split_off(plane);
        Ok(LowRes { masks: v, uncertainty, iou, obj_score })
    }

    /// The chosen tokens' maps, resized to the image as `Preprocessing::output_plan` says
    /// (bilinear, align_corners = false), into the flat result.
    async fn finish(&self, out: &DecoderOut, low: LowRes, sel: Selection, (h, w): (usize, usize)) -> Result<PredictionMaps> {
        let gpu = &self.gpu;
        let lr = self.cfg.low_res_size();
        let lhw = lr * lr;
        let Selection { tokens, obj_score, mode } = sel;
        let k = tokens.len();
        let mut low_res_logits = Vec::with_capacity(k * lhw);
        let mut uncertainty_low_res = Vec::with_capacity(k * lhw);
        for &t in &tokens {
            low_res_logits.extend(low.masks[t * lhw..(t + 1) * lhw].iter().map(|x| x.clamp(-32.0, 32.0)));
            uncertainty_low_res.extend_from_slice(&low.uncertainty[t * lhw..(t + 1) * lhw]);
        }
        let iou: Vec<f32> = tokens.iter().map(|&t| low.iou[t]).collect();

        // The source planes: the decoder's maps, or their resize to the cropped input.
        let maps = [&out.masks, &out.uncertainty];
        let staged;
        let plan = self.cfg.preprocessing().output_plan((h, w), self.cfg.image_size());
        let (planes, ih, iw, stride): (Vec<(&wgpu::Buffer, usize)>, usize, usize, usize) = match plan {
            OutputPlan::Direct => (maps.iter().flat_map(|m| tokens.iter().map(move |&t| (&***m, t * lhw))).collect(), lr, lr, lr),
            OutputPlan::ThroughSquare { size: s, crop_hw: (nh, nw) } => {
                // Rows 0..nh of the `s x s` resize, full width: the crop's columns are
                // the first nw of each row (the next resize's taps stay below nw).
                let mut taps = bilinear_taps(lr, s);
                taps.extend(bilinear_taps(lr, s));
                let taps = gpu.upload("bilinear_taps", &taps);
                staged = gpu.alloc(2 * k * nh * s)?;
                let mut planes = vec![];
                for (mi, src) in maps.iter().enumerate() {
                    for (ti, &t) in tokens.iter().enumerate() {
                        let off = (mi * k + ti) * nh * s;
                        let r = Bilinear { x: src, in_off: t * lhw, ih: lr, iw: lr, taps: &taps, oh: s, ow: s };
                        bilinear_into(gpu, &r, 0..nh, &staged, off)?;
                        planes.push((&*staged as &wgpu::Buffer, off));
                    }
                }
                (planes, nh, nw, s)
            }
        };
        let mut taps = bilinear_taps(ih, h);
        taps.extend(bilinear_taps(iw, w));
        let taps = gpu.upload("bilinear_taps", &taps);
        let resize = |x, in_off| Bilinear { x, in_off, ih, iw: stride, taps: &taps, oh: h, ow: w };
        // Every plane into one buffer and one read when that fits a binding, else in row
        // tiles.
        let plane = h * w;
        let max_binding = (gpu.limits.max_storage_buffer_binding_size as usize).min(256 << 20);
        let mut full = Vec::with_capacity(2 * k * plane);
        if 2 * k * plane * 4 <= max_binding {
            let y = gpu.alloc(2 * k * plane)?;
            for (i, (src, off)) in planes.iter().enumerate() {
                bilinear_into(gpu, &resize(src, *off), 0..h, &y, i * plane)?;
            }
            full = gpu.read(&y, 0, 2 * k * plane).await?;
        } else {
            let max_rows = (max_binding / (4 * w)).clamp(1, h);
            for (src, off) in &planes {
                let mut row0 = 0;
                while row0 < h {
                    let rows = max_rows.min(h - row0);
                    let y = bilinear(gpu, &resize(src, *off), row0..row0 + rows)?;
                    full.extend(gpu.read(&y, 0, rows * w).await?);
                    row0 += rows;
                }
            }
        }
        let uncertainty = full.split_off(k * plane);
        Ok(PredictionMaps {
            k,
            height: h,
            width: w,
            masks: full,
            uncertainty,
            low_res: lr,
            low_res_logits,
            uncertainty_low_res,
            iou,
            obj_score,
            tokens,
            mode,
        })
    }

    /// Inferno colours (`ruac_core::viz::colorize`) of `values` in `[0, vmax]`, as RGBA8
    /// bytes (alpha 255), computed on the GPU.
    pub async fn colorize(&self, values: &[f32], vmax: f32) -> Result<Vec<u8>> {
        if values.is_empty() {
            return Ok(vec![]);
        }
        let max = (self.gpu.limits.max_storage_buffer_binding_size as usize / 4).min(16 << 20);
        let mut out = Vec::with_capacity(values.len() * 4);
        for chunk in values.chunks(max) {
            let v = self.gpu.upload("colorize_in", chunk);
            let y = colormap::colormap(&self.gpu, &v, chunk.len(), vmax, &self.lut)?;
            out.extend(self.gpu.read_bytes(&y, 0, chunk.len() * 4).await?);
        }
        Ok(out)
    }
}
