//! `trainer segment`: one image, one prompt, files out.
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use candle_core::DType;
use clap::Args;
use ruac_core::checkpoint::Checkpoint;
use ruac_core::image_io::RgbImage;
use ruac_core::predictor::{PointLabel, Prompt, UncertaintyMode};
use ruac_core::viz;

#[derive(Args, Debug)]
pub struct SegmentArgs {
    /// Checkpoint: SAM 2.1 `.pt`/`.safetensors`, a RUAC `model.safetensors`, or a SAM 1
    /// family `.pth`/`.safetensors` (SAM ViT, MobileSAM, LiteMedSAM; with or without RUAC's head).
    #[arg(long)]
    pub weights: PathBuf,
    /// Configuration name (tiny, small, base_plus, large, micro; SAM 1: vit_b, vit_l, vit_h,
    /// mobile_sam, lite_medsam); inferred when omitted.
    #[arg(long)]
    pub config: Option<String>,
    /// Input resolution of the encoder (default: the configuration's).
    #[arg(long)]
    pub image_size: Option<usize>,
    #[arg(long)]
    pub image: PathBuf,
    /// A point `X,Y,LABEL` in image pixels; LABEL 1 = foreground, 0 = background. Repeatable.
    #[arg(long = "point", value_parser = parse_point)]
    pub points: Vec<(f32, f32, PointLabel)>,
    /// A box `X0,Y0,X1,Y1` in image pixels.
    #[arg(long = "box", value_parser = parse_box)]
    pub bbox: Option<[f32; 4]>,
    /// Return three candidate masks instead of one.
    #[arg(long)]
    pub multimask: bool,
    /// Monte Carlo samples for the uncertainty (0: the analytic closed form instead).
    #[arg(long, default_value_t = 20)]
    pub mc_samples: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// `cpu`, `cuda:N` (a `--features cuda` build), `wgpu` or `wgpu:N` (ruac-gpu natively:
    /// Vulkan, Metal, DX12). A device that is missing is an error.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Encode and predict this many times and report the median times (the first call of a
    /// GPU includes compiling its kernels: time with 3 or more).
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `f` `n` times (at least once); the last result and the median time in ms.
fn timed<T>(n: usize, mut f: impl FnMut() -> Result<T>) -> Result<(T, f64)> {
    let mut ms = vec![];
    let mut last = None;
    for _ in 0..n.max(1) {
        let t = std::time::Instant::now();
        last = Some(f()?);
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    let out = last.context("no repetition ran")?;
    Ok((out, ms[ms.len() / 2]))
}

fn parse_point(s: &str) -> std::result::Result<(f32, f32, PointLabel), String> {
    let v: Vec<&str> = s.split(',').collect();
    if v.len() != 3 {
        return Err(format!("expected X,Y,LABEL, got {s:?}"));
    }
    let num = |t: &str| t.trim().parse::<f32>().map_err(|_| format!("{t:?} is not a number"));
    let label = match v[2].trim() {
        "1" => PointLabel::Positive,
        "0" => PointLabel::Negative,
        other => return Err(format!("label must be 1 (foreground) or 0 (background), got {other:?}")),
    };
    Ok((num(v[0])?, num(v[1])?, label))
}

fn parse_box(s: &str) -> std::result::Result<[f32; 4], String> {
    let v: Vec<f32> = s
        .split(',')
        .map(|t| t.trim().parse::<f32>().map_err(|_| format!("{t:?} is not a number")))
        .collect::<std::result::Result<_, _>>()?;
    if v.len() != 4 {
        return Err(format!("expected X0,Y0,X1,Y1, got {s:?}"));
    }
    Ok([v[0], v[1], v[2], v[3]])
}

fn save_png(path: &std::path::Path, w: usize, h: usize, rgb: Vec<u8>) -> Result<()> {
    let img = image::RgbImage::from_raw(w as u32, h as u32, rgb).context("image buffer size")?;
    img.save(path).with_context(|| format!("writing {}", path.display()))
}

pub fn run(a: SegmentArgs) -> Result<()> {
    if a.points.is_empty() && a.bbox.is_none() {
        bail!("no prompt: give at least one --point X,Y,LABEL or a --box X0,Y0,X1,Y1");
    }
    let ck = Checkpoint::load(&a.weights)?;
    let img = RgbImage::open(&a.image)?;
    let mode = if a.mc_samples == 0 {
        UncertaintyMode::Analytic
    } else {
        UncertaintyMode::MonteCarlo { samples: a.mc_samples, seed: a.seed }
    };
    let mut m = crate::device::load_model(&ck, a.config.as_deref(), a.image_size, mode, &a.device)?;
    eprintln!("device: {}", m.device);
    let ((), encode_ms) = timed(a.repeat, || Ok(m.model.set_image(&img)?))?;
    let prompt = Prompt { points: a.points.clone(), bbox: a.bbox, mask_input: None, multimask: a.multimask };
    let (out, predict_ms) = timed(a.repeat, || Ok(m.model.predict(&prompt)?))?;
    eprintln!("set_image {encode_ms:.1} ms, predict {predict_ms:.1} ms (median of {})", a.repeat.max(1));
    let has_head = m.config.has_bayes_head();

    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let (w, h) = (img.width, img.height);
    let k = out.iou.len();
    let best = out.best();
    let masks = out.masks.to_dtype(DType::F32)?.reshape((k, h * w))?.to_vec2::<f32>()?;
    let unc = out.uncertainty.to_dtype(DType::F32)?.reshape((k, h * w))?.to_vec2::<f32>()?;
    for i in 0..k {
        let mask: Vec<u8> = masks[i].iter().map(|&v| if v > 0.0 { 255 } else { 0 }).collect();
        let name = if i == best { "mask.png".to_string() } else { format!("mask_{i}.png") };
        image::GrayImage::from_raw(w as u32, h as u32, mask)
            .context("mask buffer")?
            .save(a.out.join(&name))
            .with_context(|| format!("writing {name}"))?;
        if k > 1 && i == best {
            std::fs::copy(a.out.join("mask.png"), a.out.join(format!("mask_{i}.png")))?;
        }
    }
    let vmax = out.mode.max_value();
    let unit = match out.mode {
        UncertaintyMode::MonteCarlo { .. } => viz::UNIT_NATS,
        UncertaintyMode::Analytic => viz::UNIT_NORM_ENTROPY,
    };
    let colored = viz::colorize(&unc[best], vmax);
    let (legend, lw) = viz::with_legend(&colored, w, h, vmax, unit);
    save_png(&a.out.join("uncertainty.png"), lw, h, legend)?;
    let bin: Vec<bool> = masks[best].iter().map(|&v| v > 0.0).collect();
    save_png(&a.out.join("overlay.png"), w, h, viz::overlay_mask(&img.data, w, h, &bin, [30, 144, 255], 0.45))?;
    out.uncertainty.to_dtype(DType::F32)?.write_npy(a.out.join("uncertainty.npy"))?;

    let summary = serde_json::json!({
        "image": a.image.display().to_string(),
        "width": w, "height": h,
        "model": m.config.name(),
        "ruac_head": has_head,
        "device": m.device,
        "timing_ms": { "set_image": encode_ms, "predict": predict_ms, "repeat": a.repeat.max(1) },
        "iou_predictions": out.iou,
        "best_mask": best,
        "mask_tokens": out.tokens,
        "object_score_logit": out.obj_score,
        "mask_area_px": bin.iter().filter(|b| **b).count(),
        "uncertainty": {
            // Plain SAM 2.1 has no posterior: its map is the entropy of its own probability.
            "mode": match (has_head, out.mode) {
                (false, _) => "sam_sigmoid_entropy",
                (true, UncertaintyMode::MonteCarlo { .. }) => "monte_carlo",
                (true, UncertaintyMode::Analytic) => "analytic",
            },
            "samples": match out.mode { UncertaintyMode::MonteCarlo { samples, .. } if has_head => samples, _ => 0 },
            "unit": out.mode.unit(),
            "mean": unc[best].iter().sum::<f32>() / unc[best].len() as f32,
            "npy": "uncertainty.npy (K x H x W, float32)",
        },
    });
    std::fs::write(a.out.join("result.json"), serde_json::to_string_pretty(&summary)?)?;
    println!("wrote {} (best mask {best}, predicted IoU {:.3})", a.out.display(), out.iou[best]);
    Ok(())
}
