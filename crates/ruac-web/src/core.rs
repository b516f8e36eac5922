//! The demo's logic in plain Rust, so native tests exercise exactly what the browser runs:
//! loading a checkpoint from bytes, turning canvas pixels into an image, prompts from flat
//! arrays, predictions into flat arrays, and the exports (mask PNG, uncertainty PNG with
//! legend, COCO RLE JSON).
use candle_core::Device;
use ruac_core::checkpoint::{sam1_is_ignored, Checkpoint, BAYES_HEAD_PREFIX};
use ruac_core::data::rle::Rle;
use ruac_core::image_io::RgbImage;
pub use ruac_core::model::ModelConfig;
use ruac_core::predictor::{PointLabel, PredictionMaps, Predictor, Prompt, UncertaintyMode};
use ruac_core::viz;
use serde::Serialize;

/// Largest image the page hands to the model, in pixels. The page downscales larger pictures
/// to at most 1024 px on the longer side first; this bound keeps a direct API call from
/// allocating `K x H x W` maps of gigabytes (wasm32 has 4 GiB in all).
pub const MAX_WEB_PIXELS: usize = 2048 * 2048;

/// Everything that can go wrong in the demo, each with a message a visitor can act on.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("the weights file {name} is empty or truncated ({len} bytes)")]
    TooShort { name: String, len: usize },
    #[error("{0}")]
    Core(#[from] ruac_core::Error),
    #[error("image of {width}x{height} is too large for the demo (at most {max} pixels); downscale it first")]
    ImageTooLarge { width: usize, height: usize, max: usize },
    #[error("pixel buffer has {got} bytes, expected {width}x{height}x4 = {expected} (RGBA)")]
    PixelBuffer { got: usize, width: usize, height: usize, expected: usize },
    #[error("invalid prompt: {0}")]
    Prompt(String),
    #[error("no image loaded yet: choose an image first")]
    NoImage,
    #[error("unknown uncertainty mode {0:?} (mc or analytic)")]
    Mode(String),
    #[error("PNG encoding failed: {0}")]
    Png(String),
    #[error("the model is busy with another request; wait for it to finish")]
    Busy,
    #[error("GPU backend failed: {0}")]
    Gpu(String),
}

pub type Result<T> = std::result::Result<T, WebError>;

/// What the page shows about the loaded model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub name: String,
    /// Named configuration (`micro`, `tiny`, ...; SAM 1: `vit_b`, `mobile_sam`, `lite_medsam`).
    pub config: String,
    pub image_size: usize,
    /// True for RUAC checkpoints (Bayesian head); false for plain SAM 2.1 / SAM 1.
    pub ruac: bool,
    /// `"sam2"` (SAM 2.1 / RUAC) or `"sam1"` (SAM ViT, MobileSAM, LiteMedSAM).
    pub family: String,
    /// Whether ruac-gpu's WebGPU kernels run this model (both families do).
    pub webgpu: bool,
    pub parameters: usize,
    pub bytes: usize,
}

/// A parsed checkpoint with its configuration; kept so the CPU fallback can be built later
/// (the tensors are reference-counted, so the CPU model shares their memory).
pub struct LoadedModel {
    pub checkpoint: Checkpoint,
    pub cfg: ModelConfig,
    pub info: ModelInfo,
}

/// Parses a checkpoint from bytes: SAM 2.1 / RUAC safetensors, or a SAM 1 family model
/// (SAM ViT, MobileSAM, LiteMedSAM, with or without RUAC's head) as safetensors or PyTorch
/// `.pt`/`.pth` (read from the bytes, no code executed). SAM 2.1: the configuration is
/// inferred from the tensor shapes (`Checkpoint::infer_config`, which also reads the
/// `ruac_image_size` metadata `trainer export` writes).
/// SAM 1: `Checkpoint::infer_sam1_config` (metadata `ruac_sam1_config`, else shapes).
pub fn load_model_bytes(bytes: &[u8], name: &str) -> Result<LoadedModel> {
    if bytes.len() < 8 {
        return Err(WebError::TooShort { name: name.to_string(), len: bytes.len() });
    }
    let checkpoint = if bytes.starts_with(b"PK\x03\x04") {
        Checkpoint::from_pth_bytes(bytes, name)?
    } else {
        Checkpoint::from_safetensors_bytes(bytes, name)?
    };
    if checkpoint.is_sam1() {
        let cfg = checkpoint.infer_sam1_config()?;
        let parameters =
            checkpoint.tensors.iter().filter(|(k, _)| !sam1_is_ignored(k, &cfg)).map(|(_, t)| t.elem_count()).sum();
        let info = ModelInfo {
            name: name.to_string(),
            config: cfg.name.clone(),
            image_size: cfg.image_size(),
            ruac: cfg.decoder.bayes_head,
            family: "sam1".into(),
            webgpu: true,
            parameters,
            bytes: bytes.len(),
        };
        return Ok(LoadedModel { checkpoint, cfg: ModelConfig::Sam1(cfg), info });
    }
    let cfg = checkpoint.config_for(None, None)?;
    cfg.validate()?;
    checkpoint.validate_values(&cfg)?;
    let parameters = checkpoint
        .tensors
        .iter()
        .filter(|(k, _)| !Checkpoint::is_ignored(k, &cfg))
        .map(|(_, t)| t.elem_count())
        .sum();
    let info = ModelInfo {
        name: name.to_string(),
        config: cfg.name.clone(),
        image_size: cfg.image_size,
        ruac: checkpoint.tensors.keys().any(|k| k.starts_with(BAYES_HEAD_PREFIX)),
        family: "sam2".into(),
        webgpu: true,
        parameters,
        bytes: bytes.len(),
    };
    Ok(LoadedModel { checkpoint, cfg: ModelConfig::Sam2(cfg), info })
}

/// The candle CPU predictor for a loaded model (SIMD128 in the browser), either family.
pub fn cpu_predictor(m: &LoadedModel) -> Result<Predictor> {
    Ok(match &m.cfg {
        ModelConfig::Sam2(c) => Predictor::new(m.checkpoint.build_model(Some(c.clone()), &Device::Cpu)?, Device::Cpu),
        ModelConfig::Sam1(c) => Predictor::new(m.checkpoint.build_sam1(Some(c.clone()), &Device::Cpu)?, Device::Cpu),
    })
}

/// Whether the page asks for several candidate masks: SAM 1 with a box gives the single
/// mask (token 0), as `MedSAMLite.forward` and `SamPredictor` with a box do; otherwise three.
pub fn multimask_for(family: &str, has_box: bool) -> bool {
    !(family == "sam1" && has_box)
}

/// Canvas `ImageData` (RGBA, row-major) to the model's RGB image; alpha is dropped, as
/// `RgbImage::decode` does (`to_rgb8`).
pub fn rgba_to_rgb(rgba: &[u8], width: usize, height: usize) -> Result<RgbImage> {
    if width.saturating_mul(height) > MAX_WEB_PIXELS {
        return Err(WebError::ImageTooLarge { width, height, max: MAX_WEB_PIXELS });
    }
    let expected = width * height * 4;
    if rgba.len() != expected {
        return Err(WebError::PixelBuffer { got: rgba.len(), width, height, expected });
    }
    let rgb = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    Ok(RgbImage::new(width, height, rgb)?)
}

/// A prompt from the page's flat arrays: `points` as `x, y, label` triples (label 1
/// positive, 0 negative), `bbox` empty or `x0, y0, x1, y1`; image pixel coordinates.
/// Range checks against the image are [`check_prompt`]'s.
pub fn make_prompt(points: &[f32], bbox: &[f32], multimask: bool) -> Result<Prompt> {
    if points.len() % 3 != 0 {
        return Err(WebError::Prompt(format!("points must be x, y, label triples ({} numbers given)", points.len())));
    }
    let mut pts = Vec::with_capacity(points.len() / 3);
    for t in points.chunks_exact(3) {
        let label = match t[2] {
            l if l == 1.0 => PointLabel::Positive,
            l if l == 0.0 => PointLabel::Negative,
            l => return Err(WebError::Prompt(format!("point label {l} is neither 1 (positive) nor 0 (negative)"))),
        };
        pts.push((t[0], t[1], label));
    }
    let bbox = match bbox.len() {
        0 => None,
        4 => Some([bbox[0], bbox[1], bbox[2], bbox[3]]),
        n => return Err(WebError::Prompt(format!("a box has 4 coordinates, {n} given"))),
    };
    Ok(Prompt { points: pts, bbox, mask_input: None, multimask })
}

/// Adds a mask prompt to `p`: the low-resolution logits (`low_res x low_res`, row-major) of
/// an earlier prediction's chosen mask, as SAM's interactive tools pass them with the next
/// click. Empty: no mask prompt.
pub fn with_mask_input(mut p: Prompt, mask: &[f32], low_res: usize) -> Result<Prompt> {
    if mask.is_empty() {
        return Ok(p);
    }
    if low_res.checked_mul(low_res) != Some(mask.len()) {
        return Err(WebError::Prompt(format!(
            "a mask prompt has {low_res}x{low_res} low-resolution logits, {} given",
            mask.len()
        )));
    }
    let t = candle_core::Tensor::from_vec(mask.to_vec(), (1, 1, low_res, low_res), &candle_core::Device::Cpu)
        .map_err(|e| WebError::Core(e.into()))?;
    p.mask_input = Some(t);
    Ok(p)
}

/// ruac-core's prompt checks (`Prompt::validate`, the predictors' own), run before the
/// backend so that a GPU error is never a visitor's mistake; `low_res` is the model's
/// low-resolution side, the shape a mask prompt must have.
pub fn check_prompt(p: &Prompt, width: usize, height: usize, low_res: usize) -> Result<()> {
    Ok(p.validate((height, width), low_res)?)
}

/// `mc` (Monte Carlo, the released default) or `analytic`.
pub fn parse_mode(mode: &str, samples: u32, seed: u32) -> Result<UncertaintyMode> {
    match mode {
        "mc" | "monte-carlo" => Ok(UncertaintyMode::MonteCarlo { samples: samples.clamp(1, 256) as usize, seed: seed as u64 }),
        "analytic" => Ok(UncertaintyMode::Analytic),
        other => Err(WebError::Mode(other.to_string())),
    }
}

pub fn mode_name(m: &UncertaintyMode) -> &'static str {
    match m {
        UncertaintyMode::MonteCarlo { .. } => "mc",
        UncertaintyMode::Analytic => "analytic",
    }
}

/// A prediction as flat row-major arrays for the page: `K x H x W` logits and uncertainty.
#[derive(Debug, Clone, Serialize)]
pub struct FlatPrediction {
    pub k: usize,
    pub width: usize,
    pub height: usize,
    pub masks: Vec<f32>,
    pub uncertainty: Vec<f32>,
    pub iou: Vec<f32>,
    pub obj_score: f32,
    pub tokens: Vec<usize>,
    /// Side of the low-resolution logits.
    pub low_res: usize,
    /// `K x low_res x low_res` logits, clamped to ±32: the next click's mask prompt.
    pub low_res_logits: Vec<f32>,
    /// Mask with the highest predicted IoU.
    pub best: usize,
    pub mode: String,
    pub unit: String,
    pub max_value: f32,
}

/// The page's view of either backend's [`PredictionMaps`] (moved, not copied).
pub fn flatten(p: PredictionMaps) -> FlatPrediction {
    FlatPrediction {
        best: p.best(),
        mode: mode_name(&p.mode).to_string(),
        unit: p.mode.unit().to_string(),
        max_value: p.mode.max_value(),
        k: p.k,
        width: p.width,
        height: p.height,
        masks: p.masks,
        uncertainty: p.uncertainty,
        iou: p.iou,
        obj_score: p.obj_score,
        tokens: p.tokens,
        low_res: p.low_res,
        low_res_logits: p.low_res_logits,
    }
}

fn check_plane(len: usize, width: usize, height: usize, what: &str) -> Result<()> {
    // checked: on wasm32 `usize` is 32 bits and both sizes come from JavaScript.
    if width == 0 || height == 0 || width.checked_mul(height) != Some(len) {
        return Err(WebError::Prompt(format!("{what} has {len} values, expected {width}x{height}")));
    }
    Ok(())
}

/// A binary mask (`logit > 0`, i.e. probability above 0.5) as a black/white 8-bit PNG.
pub fn mask_png(logits: &[f32], width: usize, height: usize) -> Result<Vec<u8>> {
    check_plane(logits.len(), width, height, "mask")?;
    let px: Vec<u8> = logits.iter().map(|&v| if v > 0.0 { 255 } else { 0 }).collect();
    encode_png(&px, width, height, image::ColorType::L8)
}

/// The uncertainty map in the inferno colormap with the legend (scale and unit) at the
/// right, as `trainer segment` writes `uncertainty.png` (`viz::with_legend`).
pub fn uncertainty_png(values: &[f32], width: usize, height: usize, vmax: f32, unit: &str) -> Result<Vec<u8>> {
    check_plane(values.len(), width, height, "uncertainty map")?;
    let rgb = viz::colorize(values, vmax);
    let (out, nw) = viz::with_legend(&rgb, width, height, vmax, unit);
    encode_png(&out, nw, height, image::ColorType::Rgb8)
}

fn encode_png(px: &[u8], width: usize, height: usize, color: image::ColorType) -> Result<Vec<u8>> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(px, width as u32, height as u32, color.into())
        .map_err(|e| WebError::Png(e.to_string()))?;
    Ok(out)
}

/// One COCO annotation-style object for the mask (`logit > 0`): compressed RLE as
/// pycocotools `mask.encode` writes it (column-major, counts string), its area and bbox.
pub fn coco_rle_json(logits: &[f32], width: usize, height: usize, score: f32) -> Result<String> {
    check_plane(logits.len(), width, height, "mask")?;
    let mask: Vec<bool> = logits.iter().map(|&v| v > 0.0).collect();
    let rle = Rle::from_mask(&mask, height, width)?;
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for y in 0..height {
        for x in 0..width {
            if mask[y * width + x] {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x + 1);
                y1 = y1.max(y + 1);
            }
        }
    }
    let bbox = if x0 == usize::MAX { [0, 0, 0, 0] } else { [x0, y0, x1 - x0, y1 - y0] };
    let v = serde_json::json!({
        "segmentation": { "size": [height, width], "counts": rle.to_coco_string() },
        "area": rle.area(),
        "bbox": bbox,
        "score": score,
    });
    Ok(serde_json::to_string_pretty(&v).unwrap_or_default())
}

/// The inferno colormap as 256 RGB triples, so the page colours maps exactly as the CLI does.
pub fn inferno_lut() -> Vec<u8> {
    (0..256).flat_map(|i| viz::inferno(i as f32 / 255.0)).collect()
}
