//! `ruac-web`: the wasm-bindgen module behind the RUAC web demo (issue #5, "The module").
//!
//! A [`Session`] holds one model. `Session.create` parses a SAM 2.1 / RUAC safetensors file
//! and picks a backend: WebGPU through `ruac-gpu` when asked for and available, else candle
//! on the CPU (SIMD128). `setImage` encodes the image once; each `predict` reuses the
//! embedding and returns the three candidate masks, their predicted IoU and the per-pixel
//! uncertainty. If the GPU fails at any point the session rebuilds itself on the CPU, re-runs
//! the request and reports why (`takeNotice`). Every failure reaches JavaScript as an
//! `Error` with a message; panics are routed to `console.error` by
//! `console_error_panic_hook`, and none is expected.
pub mod core;

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Float32Array, Uint8Array};
use ruac_core::image_io::RgbImage;
use ruac_core::predictor::{Predictor, UncertaintyMode};
use wasm_bindgen::prelude::*;

use crate::core::{FlatPrediction, LoadedModel, WebError};

/// Installs the panic hook once per module instance.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// The inference backend in use.
enum Backend {
    Cpu(Box<Predictor>),
    #[cfg(feature = "gpu")]
    Gpu(Box<ruac_gpu::GpuPredictor>),
}

struct Inner {
    model: LoadedModel,
    backend: Backend,
    label: String,
    image: Option<RgbImage>,
    mode: UncertaintyMode,
    /// One-shot message for the page (e.g. "WebGPU failed, now on the CPU").
    notice: Option<String>,
    /// Test hook: the next GPU call fails as a lost device would.
    fail_gpu_next: bool,
}

fn js_err(e: WebError) -> JsError {
    JsError::new(&e.to_string())
}

const CPU_LABEL: &str = "CPU (candle, wasm SIMD128)";

impl Inner {
    /// Replaces the GPU backend by the CPU one after a GPU failure, re-encoding the current
    /// image, so the page keeps working with the same results (issue #5, "CPU fallback").
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    fn fall_back_to_cpu(&mut self, why: &str) -> Result<(), WebError> {
        let mut p = core::cpu_predictor(&self.model)?;
        p.mode = self.mode;
        if let Some(img) = &self.image {
            p.set_image(img)?;
        }
        self.backend = Backend::Cpu(Box::new(p));
        self.label = CPU_LABEL.to_string();
        self.notice = Some(format!("WebGPU failed ({why}); switched to the CPU backend, results are the same but slower."));
        Ok(())
    }

    async fn set_image(&mut self, img: RgbImage) -> Result<(), WebError> {
        self.image = Some(img);
        let img = self.image.as_ref().ok_or(WebError::NoImage)?;
        match &mut self.backend {
            Backend::Cpu(p) => Ok(p.set_image(img)?),
            #[cfg(feature = "gpu")]
            Backend::Gpu(g) => {
                let r = if std::mem::take(&mut self.fail_gpu_next) {
                    Err("simulated device loss".to_string())
                } else {
                    g.set_image(img).await.map_err(|e| e.to_string())
                };
                match r {
                    Ok(()) => Ok(()),
                    Err(e) => self.fall_back_to_cpu(&e),
                }
            }
        }
    }

    async fn predict(&mut self, prompt: &ruac_core::predictor::Prompt) -> Result<FlatPrediction, WebError> {
        let img = self.image.as_ref().ok_or(WebError::NoImage)?;
        // Checked here, before any backend, so a GPU error is never a user's mistake.
        core::check_prompt(prompt, img.width, img.height, self.model.cfg.low_res_size())?;
        #[cfg(feature = "gpu")]
        if let Backend::Gpu(g) = &mut self.backend {
            let r = if std::mem::take(&mut self.fail_gpu_next) {
                Err("simulated device loss".to_string())
            } else {
                g.predict(prompt, self.mode).await.map_err(|e| e.to_string())
            };
            match r {
                Ok(p) => return Ok(core::flatten(p)),
                Err(e) => self.fall_back_to_cpu(&e)?,
            }
        }
        match &mut self.backend {
            Backend::Cpu(p) => {
                p.mode = self.mode;
                Ok(core::flatten(p.predict_maps(prompt)?))
            }
            #[cfg(feature = "gpu")]
            Backend::Gpu(_) => Err(WebError::Gpu("GPU backend still active after fallback".into())),
        }
    }
}

/// One loaded model and its backend.
#[wasm_bindgen]
pub struct Session {
    inner: Rc<RefCell<Inner>>,
}

#[wasm_bindgen]
impl Session {
    /// Parses a checkpoint (safetensors; SAM 1 family also `.pt`/`.pth`) and builds the
    /// model. `backend` is `"cpu"`, `"webgpu"` (fails if WebGPU is unavailable) or `"auto"`
    /// (WebGPU, else the CPU). Both families (SAM 2.1 and SAM 1: SAM ViT, MobileSAM,
    /// LiteMedSAM, with or without a RUAC head) run on either backend.
    pub async fn create(bytes: Vec<u8>, name: String, backend: String) -> Result<Session, JsError> {
        let model = core::load_model_bytes(&bytes, &name).map_err(js_err)?;
        drop(bytes);
        let mode = UncertaintyMode::default();
        let (backend, label, notice) = match backend.as_str() {
            "cpu" => (cpu_backend(&model)?, CPU_LABEL.to_string(), None),
            "webgpu" | "auto" => match gpu_backend(&model).await {
                Ok((b, l)) => (b, l, None),
                Err(e) if backend == "webgpu" => return Err(js_err(e)),
                Err(e) => (cpu_backend(&model)?, CPU_LABEL.to_string(), Some(format!("{e}; using the CPU backend."))),
            },
            other => return Err(JsError::new(&format!("unknown backend {other:?} (cpu, webgpu or auto)"))),
        };
        let inner = Inner { model, backend, label, image: None, mode, notice, fail_gpu_next: false };
        Ok(Session { inner: Rc::new(RefCell::new(inner)) })
    }

    /// The backend in use, in words (adapter name for WebGPU).
    pub fn backend(&self) -> String {
        self.inner.try_borrow().map(|i| i.label.clone()).unwrap_or_else(|_| "busy".into())
    }

    /// True while the WebGPU backend is in use.
    #[wasm_bindgen(js_name = isGpu)]
    pub fn is_gpu(&self) -> bool {
        #[cfg(feature = "gpu")]
        if let Ok(i) = self.inner.try_borrow() {
            return matches!(i.backend, Backend::Gpu(_));
        }
        false
    }

    /// The model's description as JSON (`ModelInfo`).
    #[wasm_bindgen(js_name = modelInfo)]
    pub fn model_info(&self) -> Result<String, JsError> {
        let i = self.inner.try_borrow().map_err(|_| js_err(WebError::Busy))?;
        serde_json::to_string(&i.model.info).map_err(|e| JsError::new(&e.to_string()))
    }

    /// A message for the page since the last call (fallbacks), or `undefined`.
    #[wasm_bindgen(js_name = takeNotice)]
    pub fn take_notice(&self) -> Option<String> {
        self.inner.try_borrow_mut().ok().and_then(|mut i| i.notice.take())
    }

    /// Chooses the uncertainty: `"mc"` with `samples` seeded Weibull draws (released
    /// default: 20), or `"analytic"`.
    #[wasm_bindgen(js_name = setUncertainty)]
    pub fn set_uncertainty(&self, mode: &str, samples: u32, seed: u32) -> Result<(), JsError> {
        let m = core::parse_mode(mode, samples, seed).map_err(js_err)?;
        self.inner.try_borrow_mut().map_err(|_| js_err(WebError::Busy))?.mode = m;
        Ok(())
    }

    /// Encodes an image given as canvas RGBA pixels; the embedding is cached for `predict`.
    #[wasm_bindgen(js_name = setImage)]
    pub fn set_image(&self, rgba: Vec<u8>, width: u32, height: u32) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let img = core::rgba_to_rgb(&rgba, width as usize, height as usize).map_err(js_err)?;
            drop(rgba);
            let mut i = inner.try_borrow_mut().map_err(|_| js_err(WebError::Busy))?;
            i.set_image(img).await.map_err(js_err)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Decodes one prompt: `points` as `x, y, label` triples, `bbox` empty or four numbers,
    /// in image pixels; `mask_input` empty or an earlier [`Prediction`]'s low-resolution
    /// logits of one mask (`lowRes²` values), the refinement SAM's tools pass with the next
    /// click. Resolves to a [`Prediction`].
    pub fn predict(&self, points: Vec<f32>, bbox: Vec<f32>, mask_input: Vec<f32>, multimask: bool) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut i = inner.try_borrow_mut().map_err(|_| js_err(WebError::Busy))?;
            let prompt = core::make_prompt(&points, &bbox, multimask).map_err(js_err)?;
            let prompt = core::with_mask_input(prompt, &mask_input, i.model.cfg.low_res_size()).map_err(js_err)?;
            let p = i.predict(&prompt).await.map_err(js_err)?;
            Ok(Prediction { p }.into())
        })
    }

    /// Test hook: the next GPU call fails as a lost device would, so the fallback path can
    /// be exercised in a browser (no effect on the CPU backend).
    #[wasm_bindgen(js_name = simulateGpuFailure)]
    pub fn simulate_gpu_failure(&self) {
        if let Ok(mut i) = self.inner.try_borrow_mut() {
            i.fail_gpu_next = true;
        }
    }
}

fn cpu_backend(model: &LoadedModel) -> Result<Backend, JsError> {
    Ok(Backend::Cpu(Box::new(core::cpu_predictor(model).map_err(js_err)?)))
}

#[cfg(feature = "gpu")]
async fn gpu_backend(model: &LoadedModel) -> Result<(Backend, String), WebError> {
    let opts = ruac_gpu::GpuOptions::default();
    let g = ruac_gpu::GpuPredictor::from_config(&model.checkpoint, &model.cfg, opts).await.map_err(|e| WebError::Gpu(e.to_string()))?;
    // f16 weights where the adapter offers shader-f16 (half the weight memory).
    let weights = if g.weights_f16() { "f16 weights" } else { "f32 weights" };
    let label = format!("WebGPU ({}) · {weights}, {:.1} MB", g.adapter_info(), g.weight_bytes() as f64 / 1e6);
    Ok((Backend::Gpu(Box::new(g)), label))
}

#[cfg(not(feature = "gpu"))]
async fn gpu_backend(_model: &LoadedModel) -> Result<(Backend, String), WebError> {
    Err(WebError::Gpu("this build has no WebGPU backend".into()))
}

/// One prediction: `K` candidate masks (logits) and uncertainty maps, row-major `K x H x W`.
#[wasm_bindgen]
pub struct Prediction {
    p: FlatPrediction,
}

#[wasm_bindgen]
impl Prediction {
    #[wasm_bindgen(getter)]
    pub fn k(&self) -> usize {
        self.p.k
    }
    #[wasm_bindgen(getter)]
    pub fn width(&self) -> usize {
        self.p.width
    }
    #[wasm_bindgen(getter)]
    pub fn height(&self) -> usize {
        self.p.height
    }
    /// Mask logits (`> 0` is inside; probability = sigmoid).
    pub fn masks(&self) -> Float32Array {
        Float32Array::from(&self.p.masks[..])
    }
    pub fn uncertainty(&self) -> Float32Array {
        Float32Array::from(&self.p.uncertainty[..])
    }
    /// Predicted IoU of each mask (the decoder's one score per mask).
    pub fn iou(&self) -> Float32Array {
        Float32Array::from(&self.p.iou[..])
    }
    #[wasm_bindgen(getter, js_name = objScore)]
    pub fn obj_score(&self) -> f32 {
        self.p.obj_score
    }
    #[wasm_bindgen(getter)]
    pub fn best(&self) -> usize {
        self.p.best
    }
    /// `"mc"` or `"analytic"`.
    #[wasm_bindgen(getter)]
    pub fn mode(&self) -> String {
        self.p.mode.clone()
    }
    /// The uncertainty's unit, for the legend.
    #[wasm_bindgen(getter)]
    pub fn unit(&self) -> String {
        self.p.unit.clone()
    }
    /// The largest value the uncertainty can take (legend top).
    /// Side of the low-resolution logits.
    #[wasm_bindgen(getter, js_name = lowRes)]
    pub fn low_res(&self) -> usize {
        self.p.low_res
    }
    /// `K x lowRes x lowRes` low-resolution logits (clamped to ±32): mask `k`'s slice is the
    /// next click's mask prompt.
    #[wasm_bindgen(js_name = lowResLogits)]
    pub fn low_res_logits(&self) -> Float32Array {
        Float32Array::from(&self.p.low_res_logits[..])
    }
    #[wasm_bindgen(getter, js_name = maxValue)]
    pub fn max_value(&self) -> f32 {
        self.p.max_value
    }
}

/// Mask `logit > 0` as a PNG (one `H x W` plane of logits).
#[wasm_bindgen(js_name = maskPng)]
pub fn mask_png(logits: &[f32], width: usize, height: usize) -> Result<Uint8Array, JsError> {
    Ok(Uint8Array::from(&core::mask_png(logits, width, height).map_err(js_err)?[..]))
}

/// Uncertainty map as an inferno PNG with legend and unit.
#[wasm_bindgen(js_name = uncertaintyPng)]
pub fn uncertainty_png(values: &[f32], width: usize, height: usize, vmax: f32, unit: &str) -> Result<Uint8Array, JsError> {
    Ok(Uint8Array::from(&core::uncertainty_png(values, width, height, vmax, unit).map_err(js_err)?[..]))
}

/// Mask `logit > 0` as COCO compressed RLE JSON (pycocotools `mask.encode`).
#[wasm_bindgen(js_name = cocoRle)]
pub fn coco_rle(logits: &[f32], width: usize, height: usize, score: f32) -> Result<String, JsError> {
    core::coco_rle_json(logits, width, height, score).map_err(js_err)
}

/// The inferno colormap, 256 RGB triples.
#[wasm_bindgen(js_name = infernoLut)]
pub fn inferno_lut() -> Uint8Array {
    Uint8Array::from(&core::inferno_lut()[..])
}

/// Whether to ask for three candidate masks: not for a SAM 1 model with a box
/// (`core::multimask_for`).
#[wasm_bindgen(js_name = multimaskFor)]
pub fn multimask_for(family: &str, has_box: bool) -> bool {
    core::multimask_for(family, has_box)
}
