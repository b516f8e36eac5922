//! `ruac-gpu`: RUAC inference (SAM 2.1 + the Bayesian pixel head of ruac-core) on wgpu, with
//! a WGSL kernel for every operation: preprocessing, Hiera, FPN neck, prompt encoder,
//! two-way transformer, mask decoder, the Bayesian head's analytic and Monte Carlo
//! uncertainty, bilinear upsampling and the inferno colormap. The same code runs natively
//! (Vulkan, Metal, DX12, GL) and in the browser (WebGPU, `wasm32-unknown-unknown`).
//!
//! [`GpuPredictor`] mirrors `ruac_core::predictor::Predictor`: `set_image` encodes once and
//! keeps the embeddings on the GPU, each `predict` runs the prompt encoder and decoder and
//! returns the same [`Prediction`] (within float rounding; the Monte Carlo draws are the
//! CPU's PCG32 stream).
pub mod gpu;
pub mod kernels;
pub mod model;
pub mod sam1;

use candle_core::{Device, Tensor};
use ruac_core::checkpoint::Checkpoint;
use ruac_core::image_io::RgbImage;
use ruac_core::image_io::Preprocessing;
use ruac_core::model::config::Sam2Config;
use ruac_core::model::sam1::Sam1Config;
use ruac_core::predictor::{BaseModel, PointLabel, Prediction, Prompt, UncertaintyMode};

use gpu::GBuf;
pub use gpu::Gpu;
use kernels::layout::{bilinear, bilinear_into, bilinear_taps};
use model::{Features, GpuModel, UncMode};
use sam1::Sam1GpuModel;

/// Everything that can go wrong on the GPU path.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU adapter found ({0}); natively, install a driver (on Debian/Ubuntu `apt-get install mesa-vulkan-drivers` gives a software Vulkan adapter); in a browser, WebGPU must be enabled")]
    NoAdapter(String),
    #[error("requesting the GPU device failed: {0}")]
    Device(String),
    #[error("the GPU adapter's {limit} is {have}, the kernels need {need}")]
    LimitTooSmall { limit: &'static str, need: u64, have: u64 },
    #[error("WGSL kernel {kernel} failed to compile: {message}")]
    Shader { kernel: &'static str, message: String },
    #[error("GPU validation error: {0}")]
    Validation(String),
    #[error("mapping a GPU buffer for reading failed: {0}")]
    Mapping(String),
    #[error("not supported on the GPU path: {0}")]
    Unsupported(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Core(#[from] ruac_core::Error),
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
}

/// Choices for [`GpuPredictor::with_options`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GpuOptions {
    /// `Some(true)`: store the linear weights as f16 (needs `shader-f16`; an error without
    /// it), `Some(false)`: f32; `None`: f16 where the adapter offers `shader-f16`.
    pub f16_weights: Option<bool>,
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
    Sam2(Box<GpuModel>),
    Sam1(Box<Sam1GpuModel>),
}

/// The configuration [`GpuPredictor::from_config`] builds: SAM 2.1 (+ RUAC head) or a SAM 1
/// family model (SAM ViT, MobileSAM, LiteMedSAM, + RUAC head).
#[derive(Debug, Clone)]
pub enum GpuConfig {
    Sam2(Sam2Config),
    Sam1(Sam1Config),
}

/// SAM 2.1 / SAM 1 / RUAC predictor on the GPU, with `Predictor`'s semantics.
pub struct GpuPredictor {
    gpu: Gpu,
    model: Family,
    image: Option<ImageState>,
    lut: wgpu::Buffer,
}

impl GpuPredictor {
    /// Requests an adapter and a device (with the limits the kernels need, checked against
    /// the adapter), checks the checkpoint against `cfg` exactly as the CPU path does
    /// (`Checkpoint::build_model`: every missing, unexpected, mis-shaped or non-finite
    /// tensor is an error), and uploads the weights once.
    pub async fn new(ckpt: &Checkpoint, cfg: &Sam2Config) -> Result<Self, GpuError> {
        Self::with_options(ckpt, cfg, GpuOptions::default()).await
    }

    /// [`GpuPredictor::new`] with explicit choices (f16 or f32 weights).
    pub async fn with_options(ckpt: &Checkpoint, cfg: &Sam2Config, opts: GpuOptions) -> Result<Self, GpuError> {
        Self::from_config(ckpt, &GpuConfig::Sam2(cfg.clone()), opts).await
    }

    /// A SAM 1 family model (SAM ViT-B/L/H, MobileSAM, LiteMedSAM, with or without RUAC's
    /// head), checked as `Checkpoint::build_sam1` checks it; preprocessing, prompt placement
    /// and resizing as `Predictor` does for that family.
    pub async fn new_sam1(ckpt: &Checkpoint, cfg: &Sam1Config) -> Result<Self, GpuError> {
        Self::from_config(ckpt, &GpuConfig::Sam1(cfg.clone()), GpuOptions::default()).await
    }

    /// Either family with explicit choices.
    pub async fn from_config(ckpt: &Checkpoint, cfg: &GpuConfig, opts: GpuOptions) -> Result<Self, GpuError> {
        // The CPU model is built for its checks (and, for SAM 1, its preprocessing rule),
        // then dropped.
        let pre = match cfg {
            GpuConfig::Sam2(c) => {
                ckpt.build_model(Some(c.clone()), &Device::Cpu)?;
                None
            }
            GpuConfig::Sam1(c) => Some(BaseModel::from(ckpt.build_sam1(Some(c.clone()), &Device::Cpu)?).preprocessing()),
        };
        let mut gpu = Gpu::new().await?;
        if let Some(on) = opts.f16_weights {
            gpu.set_f16_weights(on)?;
        }
        let model = match (cfg, pre) {
            (GpuConfig::Sam1(c), Some(p)) => Family::Sam1(Box::new(Sam1GpuModel::new(&gpu, ckpt, c, p)?)),
            (GpuConfig::Sam2(c), _) => Family::Sam2(Box::new(GpuModel::new(&gpu, ckpt, c)?)),
            (GpuConfig::Sam1(_), None) => return Err(GpuError::Internal("SAM 1 preprocessing missing".into())),
        };
        let lut = gpu.upload("inferno", &kernels::colormap::lut());
        gpu.sync().await?;
        Ok(Self { gpu, model, image: None, lut })
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

    /// The SAM 2.1 configuration (`None` for a SAM 1 model).
    pub fn config(&self) -> Option<&Sam2Config> {
        match &self.model {
            Family::Sam2(m) => Some(&m.cfg),
            Family::Sam1(_) => None,
        }
    }

    /// The SAM 1 configuration (`None` for a SAM 2.1 model).
    pub fn sam1_config(&self) -> Option<&Sam1Config> {
        match &self.model {
            Family::Sam1(m) => Some(&m.cfg),
            Family::Sam2(_) => None,
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
    pub async fn set_image(&mut self, img: &RgbImage) -> Result<(), GpuError> {
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
    pub async fn image_embedding(&self) -> Result<Vec<f32>, GpuError> {
        let st = self.image.as_ref().ok_or(ruac_core::Error::NoImage)?;
        let b = match &st.features {
            Encoded::Sam2(f) => &f.image_embed,
            Encoded::Sam1(e) => e,
        };
        self.gpu.read(b, 0, b.len).await
    }

    /// Prompt encoder + mask decoder + uncertainty on the cached features: the same masks,
    /// IoU, object score, low-resolution logits and uncertainty as `Predictor::predict`
    /// with `Predictor::mode = mode` (SAM 1: no object score, `+inf` as on the CPU).
    pub async fn predict(&self, p: &Prompt, mode: UncertaintyMode) -> Result<Prediction, GpuError> {
        let st = self.image.as_ref().ok_or(ruac_core::Error::NoImage)?;
        let (h, w) = st.orig_hw;
        let mask: Option<Vec<f32>> = match &p.mask_input {
            Some(m) => Some(m.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?),
            None => None,
        };
        let um = match mode {
            UncertaintyMode::MonteCarlo { samples, seed } => UncMode::MonteCarlo { samples, seed },
            UncertaintyMode::Analytic => UncMode::Analytic,
        };
        let gpu = &self.gpu;
        match (&self.model, &st.features) {
            (Family::Sam2(model), Encoded::Sam2(features)) => {
                let cfg = &model.cfg;
                let lr = cfg.low_res_size();
                validate(p, st.orig_hw, lr)?;
                let s = cfg.image_size as f32;
                // `_prep_prompts`: scaled to the square input, box corners first; +0.5 as
                // `_embed_points` adds it.
                let mut pts = vec![];
                if let Some([x0, y0, x1, y1]) = p.bbox {
                    pts.push((x0 / w as f32 * s + 0.5, y0 / h as f32 * s + 0.5, 2.0));
                    pts.push((x1 / w as f32 * s + 0.5, y1 / h as f32 * s + 0.5, 3.0));
                }
                for &(x, y, l) in &p.points {
                    pts.push((x / w as f32 * s + 0.5, y / h as f32 * s + 0.5, if l == PointLabel::Positive { 1.0 } else { 0.0 }));
                }
                let out = model.decode(gpu, features, &pts, mask.as_deref(), um)?;
                let kt = model.n_tokens;
                let low = self.read_low(&out, kt, lr).await?;
                let bayes = cfg.bayes_head.is_some();
                let nm = cfg.decoder.num_multimask_outputs;
                let lhw = lr * lr;
                let tokens: Vec<usize> = if p.multimask {
                    (1..=nm).collect()
                } else if bayes {
                    // RUAC does not use the stability fallback (see Predictor::predict).
                    vec![0]
                } else {
                    let delta = cfg.decoder.dynamic_multimask_stability_delta;
                    let single = &low.masks[..lhw];
                    let inter = single.iter().filter(|&&x| x > delta).count() as f32;
                    let union = single.iter().filter(|&&x| x > -delta).count() as f32;
                    let stability = if union > 0.0 { inter / union } else { 1.0 };
                    if stability >= cfg.decoder.dynamic_multimask_stability_thresh {
                        vec![0]
                    } else {
                        let mut best = 1;
                        for k in 2..=nm {
                            if low.iou[k] > low.iou[best] {
                                best = k;
                            }
                        }
                        vec![best]
                    }
                };
                let obj = low.obj;
                self.finish(&out, low, tokens, lr, st.orig_hw, None, obj, mode).await
            }
            (Family::Sam1(model), Encoded::Sam1(emb)) => {
                let lr = model.low_res_size();
                validate(p, st.orig_hw, lr)?;
                let size = model.cfg.image_size();
                // `ResizeLongestSide.apply_coords` / `apply_boxes` (`x * new_w / old_w` in
                // f64; LiteMedSAM's stretch makes the input square the new size), then
                // `_embed_points` / `_embed_boxes` add 0.5 in f32 (predictor.rs).
                let (nh, nw) = model.preprocessing.input_hw(st.orig_hw, size);
                let (sx, sy) = (nw as f64 / w as f64, nh as f64 / h as f64);
                let place = |x: f32, y: f32| (((x as f64 * sx) as f32) + 0.5, ((y as f64 * sy) as f32) + 0.5);
                // `Sam1Model::embed_prompts`: points (padded only without a box), then the box.
                let mut pts = vec![];
                for &(x, y, l) in &p.points {
                    let (px, py) = place(x, y);
                    pts.push((px, py, if l == PointLabel::Positive { 1.0 } else { 0.0 }));
                }
                if !p.points.is_empty() && p.bbox.is_none() {
                    pts.push((0.0, 0.0, -1.0));
                }
                if let Some([x0, y0, x1, y1]) = p.bbox {
                    let (a, b) = place(x0, y0);
                    let (c, d) = place(x1, y1);
                    pts.push((a, b, 2.0));
                    pts.push((c, d, 3.0));
                }
                let out = model.decode(gpu, emb, &pts, mask.as_deref(), um)?;
                let kt = model.dec.n_tokens;
                let low = self.read_low(&out, kt, lr).await?;
                // `MaskDecoder.forward`: token 0, or tokens 1.. with multimask output.
                let tokens: Vec<usize> = if p.multimask { (1..kt).collect() } else { vec![0] };
                // SAM 1 resizes to the input square and crops the padding first
                // (`Sam.postprocess_masks`); LiteMedSAM resizes once.
                let crop = match model.preprocessing {
                    Preprocessing::Sam1 => Some((size, nh, nw)),
                    _ => None,
                };
                self.finish(&out, low, tokens, lr, st.orig_hw, crop, f32::INFINITY, mode).await
            }
            _ => Err(GpuError::Internal("the cached features belong to another model".into())),
        }
    }

    /// One read of every token's low-resolution logits and uncertainty and the IoU (and
    /// object-score) values: the token choice needs them.
    async fn read_low(&self, out: &model::DecoderOut, kt: usize, lr: usize) -> Result<LowRes, GpuError> {
        let gpu = &self.gpu;
        let lhw = lr * lr;
        let small = gpu.alloc(2 * kt * lhw + kt + 1)?;
        gpu.copy(&out.masks, 0, &small, 0, kt * lhw);
        gpu.copy(&out.uncertainty, 0, &small, kt * lhw, kt * lhw);
        gpu.copy(&out.iou_obj, 0, &small, 2 * kt * lhw, kt + 1);
        let mut v = gpu.read(&small, 0, 2 * kt * lhw + kt + 1).await?;
        let obj = v[2 * kt * lhw + kt];
        let iou = v[2 * kt * lhw..2 * kt * lhw + kt].to_vec();
        v.truncate(2 * kt * lhw);
        let unc = v.split_off(kt * lhw);
        Ok(LowRes { masks: v, unc, iou, obj })
    }

    /// Token selection and resizing to the image: bilinear (align_corners = false) from
    /// `lr x lr`, through the `s x s` input cropped to `nh x nw` when `crop` is given.
    #[allow(clippy::too_many_arguments)]
    async fn finish(&self, out: &model::DecoderOut, low: LowRes, tokens: Vec<usize>, lr: usize, (h, w): (usize, usize), crop: Option<(usize, usize, usize)>, obj_score: f32, mode: UncertaintyMode) -> Result<Prediction, GpuError> {
        let gpu = &self.gpu;
        let lhw = lr * lr;
        let k = tokens.len();
        let mut lo = Vec::with_capacity(k * lhw);
        let mut unc_low = Vec::with_capacity(k * lhw);
        for &t in &tokens {
            lo.extend(low.masks[t * lhw..(t + 1) * lhw].iter().map(|x| x.clamp(-32.0, 32.0)));
            unc_low.extend_from_slice(&low.unc[t * lhw..(t + 1) * lhw]);
        }
        let iou: Vec<f32> = tokens.iter().map(|&t| low.iou[t]).collect();

        // The source planes: the decoder's maps, or their resize to the cropped input.
        let maps = [&out.masks, &out.uncertainty];
        let staged;
        let (planes, ih, iw, stride): (Vec<(&wgpu::Buffer, usize)>, usize, usize, usize) = match crop {
            None => (maps.iter().flat_map(|m| tokens.iter().map(move |&t| (&***m, t * lhw))).collect(), lr, lr, lr),
            Some((s, nh, nw)) => {
                // Rows 0..nh of the `s x s` resize, full width: the crop's columns are
                // the first nw of each row (the next resize's taps stay below nw).
                let mut tab = bilinear_taps(lr, s);
                tab.extend(bilinear_taps(lr, s));
                let tab = gpu.upload("bilinear_taps", &tab);
                staged = gpu.alloc(2 * k * nh * s)?;
                let mut planes = vec![];
                for (mi, src) in maps.iter().enumerate() {
                    for (ti, &t) in tokens.iter().enumerate() {
                        let off = (mi * k + ti) * nh * s;
                        bilinear_into(gpu, src, t * lhw, lr, lr, &tab, s, s, 0, nh, &staged, off)?;
                        planes.push((&*staged as &wgpu::Buffer, off));
                    }
                }
                (planes, nh, nw, s)
            }
        };
        let mut tab = bilinear_taps(ih, h);
        tab.extend(bilinear_taps(iw, w));
        let tab = gpu.upload("bilinear_taps", &tab);
        // Every plane into one buffer and one read when that fits a binding, else in row
        // tiles.
        let plane = h * w;
        let max_binding = (gpu.limits.max_storage_buffer_binding_size as usize).min(256 << 20);
        let mut full = Vec::with_capacity(2 * k * plane);
        if 2 * k * plane * 4 <= max_binding {
            let y = gpu.alloc(2 * k * plane)?;
            for (i, (src, off)) in planes.iter().enumerate() {
                bilinear_into(gpu, src, *off, ih, stride, &tab, h, w, 0, h, &y, i * plane)?;
            }
            full = gpu.read(&y, 0, 2 * k * plane).await?;
        } else {
            let max_rows = (max_binding / (4 * w)).clamp(1, h);
            for (src, off) in &planes {
                let mut row0 = 0;
                while row0 < h {
                    let rows = max_rows.min(h - row0);
                    let y = bilinear(gpu, src, *off, ih, stride, &tab, h, w, row0, rows)?;
                    full.extend(gpu.read(&y, 0, rows * w).await?);
                    row0 += rows;
                }
            }
        }
        let unc = full.split_off(k * plane);
        let masks = full;
        let dev = Device::Cpu;
        Ok(Prediction {
            masks: Tensor::from_vec(masks, (k, h, w), &dev)?,
            iou,
            obj_score,
            low_res_logits: Tensor::from_vec(lo, (k, lr, lr), &dev)?,
            uncertainty: Tensor::from_vec(unc, (k, h, w), &dev)?,
            uncertainty_low_res: Tensor::from_vec(unc_low, (k, lr, lr), &dev)?,
            tokens,
            mode,
        })
    }

    /// Inferno colours (`ruac_core::viz::colorize`) of `values` in `[0, vmax]`, as RGBA8
    /// bytes (alpha 255), computed on the GPU.
    pub async fn colorize(&self, values: &[f32], vmax: f32) -> Result<Vec<u8>, GpuError> {
        if values.is_empty() {
            return Ok(vec![]);
        }
        let max = (self.gpu.limits.max_storage_buffer_binding_size as usize / 4).min(16 << 20);
        let mut out = Vec::with_capacity(values.len() * 4);
        for chunk in values.chunks(max) {
            let v = self.gpu.upload("colorize_in", chunk);
            let y = kernels::colormap::colormap(&self.gpu, &v, chunk.len(), vmax, &self.lut)?;
            out.extend(self.gpu.read_bytes(&y, 0, chunk.len() * 4).await?);
        }
        Ok(out)
    }
}

/// Every token's low-resolution results, read back.
struct LowRes {
    masks: Vec<f32>,
    unc: Vec<f32>,
    iou: Vec<f32>,
    /// SAM 2.1's object-score logit (unused for SAM 1).
    obj: f32,
}

/// The prompt checks of `Predictor::predict` (same messages).
fn validate(p: &Prompt, (h, w): (usize, usize), lr: usize) -> Result<(), GpuError> {
    let bad = |m: String| Err(GpuError::Core(ruac_core::Error::Prompt(m)));
    if p.points.is_empty() && p.bbox.is_none() && p.mask_input.is_none() {
        return bad("no prompt: give at least one point, a box or a mask".into());
    }
    for &(x, y, _) in &p.points {
        if !x.is_finite() || !y.is_finite() {
            return bad(format!("point ({x}, {y}) is not a finite coordinate"));
        }
        if x < 0.0 || y < 0.0 || x > w as f32 || y > h as f32 {
            return bad(format!("point ({x}, {y}) lies outside the {w}x{h} image"));
        }
    }
    if let Some([x0, y0, x1, y1]) = p.bbox {
        if [x0, y0, x1, y1].iter().any(|v| !v.is_finite()) {
            return bad("box has a non-finite coordinate".into());
        }
        if x1 <= x0 || y1 <= y0 {
            return bad(format!("box ({x0}, {y0}, {x1}, {y1}) is empty: need x0 < x1 and y0 < y1"));
        }
        if x0 < 0.0 || y0 < 0.0 || x1 > w as f32 || y1 > h as f32 {
            return bad(format!("box ({x0}, {y0}, {x1}, {y1}) extends outside the {w}x{h} image"));
        }
    }
    if let Some(m) = &p.mask_input {
        if m.dims() != [1, 1, lr, lr] {
            return bad(format!("mask prompt has shape {:?}, expected [1, 1, {lr}, {lr}]", m.dims()));
        }
    }
    Ok(())
}
