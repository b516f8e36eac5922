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

use candle_core::{Device, Tensor};
use ruac_core::checkpoint::Checkpoint;
use ruac_core::image_io::RgbImage;
use ruac_core::model::config::Sam2Config;
use ruac_core::predictor::{PointLabel, Prediction, Prompt, UncertaintyMode};

pub use gpu::Gpu;
use kernels::layout::{bilinear, bilinear_into, bilinear_taps};
use model::{Features, GpuModel, UncMode};

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
    features: Features,
    orig_hw: (usize, usize),
}

/// SAM 2.1 / RUAC predictor on the GPU, with `Predictor`'s semantics.
pub struct GpuPredictor {
    gpu: Gpu,
    model: GpuModel,
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
        ckpt.build_model(Some(cfg.clone()), &Device::Cpu)?;
        let mut gpu = Gpu::new().await?;
        if let Some(on) = opts.f16_weights {
            gpu.set_f16_weights(on)?;
        }
        let model = GpuModel::new(&gpu, ckpt, cfg)?;
        let lut = gpu.upload("inferno", &kernels::colormap::lut());
        gpu.sync().await?;
        Ok(Self { gpu, model, image: None, lut })
    }

    /// Whether the linear weights are stored as f16 on the GPU.
    pub fn weights_f16(&self) -> bool {
        self.model.weights_f16()
    }

    /// The checkpoint tensors held as f16 (empty with f32 weights).
    pub fn f16_tensors(&self) -> &[String] {
        &self.model.f16_tensors
    }

    /// GPU memory taken by the weights, in bytes.
    pub fn weight_bytes(&self) -> u64 {
        self.model.weight_bytes
    }

    /// Backend and adapter name, e.g. `Vulkan: llvmpipe (LLVM 19.1.7, 256 bits) (...)`.
    pub fn adapter_info(&self) -> String {
        self.gpu.adapter_info()
    }

    pub fn config(&self) -> &Sam2Config {
        &self.model.cfg
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
        let features = self.model.encode(&self.gpu, img)?;
        self.gpu.sync().await?;
        self.image = Some(ImageState { features, orig_hw: (img.height, img.width) });
        Ok(())
    }

    /// Prompt encoder + mask decoder + uncertainty on the cached features: the same masks,
    /// IoU, object score, low-resolution logits and uncertainty as `Predictor::predict`
    /// with `Predictor::mode = mode`.
    pub async fn predict(&self, p: &Prompt, mode: UncertaintyMode) -> Result<Prediction, GpuError> {
        let st = self.image.as_ref().ok_or(ruac_core::Error::NoImage)?;
        let cfg = &self.model.cfg;
        validate(p, st.orig_hw, cfg.low_res_size())?;
        let (h, w) = st.orig_hw;
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
        let mask: Option<Vec<f32>> = match &p.mask_input {
            Some(m) => Some(m.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?),
            None => None,
        };
        let um = match mode {
            UncertaintyMode::MonteCarlo { samples, seed } => UncMode::MonteCarlo { samples, seed },
            UncertaintyMode::Analytic => UncMode::Analytic,
        };
        let gpu = &self.gpu;
        let out = self.model.decode(gpu, &st.features, &pts, mask.as_deref(), um)?;
        let kt = self.model.n_tokens;
        let lr = cfg.low_res_size();
        let lhw = lr * lr;
        // One read for the low-resolution results; the token choice needs them.
        let small = gpu.alloc(2 * kt * lhw + kt + 1)?;
        gpu.copy(&out.masks, 0, &small, 0, kt * lhw);
        gpu.copy(&out.uncertainty, 0, &small, kt * lhw, kt * lhw);
        gpu.copy(&out.iou_obj, 0, &small, 2 * kt * lhw, kt + 1);
        let v = gpu.read(&small, 0, 2 * kt * lhw + kt + 1).await?;
        let (masks_all, rest) = v.split_at(kt * lhw);
        let (unc_all, rest) = rest.split_at(kt * lhw);
        let (iou_all, obj) = rest.split_at(kt);

        let bayes = cfg.bayes_head.is_some();
        let nm = cfg.decoder.num_multimask_outputs;
        let tokens: Vec<usize> = if p.multimask {
            (1..=nm).collect()
        } else if bayes {
            // RUAC does not use the stability fallback (see Predictor::predict).
            vec![0]
        } else {
            let delta = cfg.decoder.dynamic_multimask_stability_delta;
            let single = &masks_all[..lhw];
            let inter = single.iter().filter(|&&x| x > delta).count() as f32;
            let union = single.iter().filter(|&&x| x > -delta).count() as f32;
            let stability = if union > 0.0 { inter / union } else { 1.0 };
            if stability >= cfg.decoder.dynamic_multimask_stability_thresh {
                vec![0]
            } else {
                let mut best = 1;
                for k in 2..=nm {
                    if iou_all[k] > iou_all[best] {
                        best = k;
                    }
                }
                vec![best]
            }
        };
        let k = tokens.len();
        let mut low = Vec::with_capacity(k * lhw);
        let mut unc_low = Vec::with_capacity(k * lhw);
        for &t in &tokens {
            low.extend(masks_all[t * lhw..(t + 1) * lhw].iter().map(|x| x.clamp(-32.0, 32.0)));
            unc_low.extend_from_slice(&unc_all[t * lhw..(t + 1) * lhw]);
        }
        let iou: Vec<f32> = tokens.iter().map(|&t| iou_all[t]).collect();

        // Bilinear (align_corners = false) to the image size: both maps of every returned
        // token into one buffer and one read when that fits a binding, else in row tiles.
        let mut tab = bilinear_taps(lr, h);
        tab.extend(bilinear_taps(lr, w));
        let tab = gpu.upload("bilinear_taps", &tab);
        let plane = h * w;
        let max_binding = (gpu.limits.max_storage_buffer_binding_size as usize).min(256 << 20);
        let maps = [&out.masks, &out.uncertainty];
        let mut full = Vec::with_capacity(2 * k * plane);
        if 2 * k * plane * 4 <= max_binding {
            let y = gpu.alloc(2 * k * plane)?;
            for (mi, src) in maps.iter().enumerate() {
                for (ti, &t) in tokens.iter().enumerate() {
                    bilinear_into(gpu, src, t * lhw, lr, lr, &tab, h, w, 0, h, &y, (mi * k + ti) * plane)?;
                }
            }
            full = gpu.read(&y, 0, 2 * k * plane).await?;
        } else {
            let max_rows = (max_binding / (4 * w)).clamp(1, h);
            for src in maps {
                for &t in &tokens {
                    let mut row0 = 0;
                    while row0 < h {
                        let rows = max_rows.min(h - row0);
                        let y = bilinear(gpu, src, t * lhw, lr, lr, &tab, h, w, row0, rows)?;
                        full.extend(gpu.read(&y, 0, rows * w).await?);
                        row0 += rows;
                    }
                }
            }
        }
        let unc = full.split_off(k * plane);
        let masks = full;
        let dev = Device::Cpu;
        Ok(Prediction {
            masks: Tensor::from_vec(masks, (k, h, w), &dev)?,
            iou,
            obj_score: obj[0],
            low_res_logits: Tensor::from_vec(low, (k, lr, lr), &dev)?,
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
