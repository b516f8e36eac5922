//! Speed and memory benchmark of the predictor (`Predictor::set_image` and `predict`).
//!
//! A plain binary (`harness = false`), driven by `tools/bench_compare.py`, which compares
//! it with the PyTorch reference (`SAM2ImagePredictor`) on the same weights, image, point and
//! thread count. Run it directly with
//!
//! ```sh
//! cargo bench -p ruac-core --bench predictor -- \
//!     --weights ckpt.safetensors --config tiny --image-size 1024 --threads 2 --reps 5 --json out.json
//! ```
//!
//! The thread count is RAYON_NUM_THREADS (which candle's CPU kernels and gemm read); set it
//! in the environment. When it is unset the binary sets it from `--threads` before any
//! candle call; when it is set to something else the binary refuses to run.
//!
//! Input: a deterministic `S x S` RGB image (`S` = the image size, 1024 for the official
//! configurations) of gradients, a red disc and a blue rectangle; the prompt is one positive
//! click at the disc centre with multimask output (3 masks).
//!
//! Timed (after `--warmup` untimed runs each; median and min of `--reps` runs):
//! * `set_image`: preprocessing + image encoder;
//! * `predict_mc`: `Predictor::predict` with the default uncertainty (Monte Carlo, 20 samples);
//! * `predict_analytic`: the same with `UncertaintyMode::Analytic`;
//! * `predict_no_unc`: the same decoder steps without any uncertainty map, spelled out
//!   with the public model API (`Predictor` itself always computes one);
//! * `predict_sam_head_no_unc`: for a RUAC checkpoint, the same with SAM 2.1's own
//!   hypernetwork pixel head (the checkpoint minus `pixel_bndl.*`), i.e. exactly what
//!   PyTorch's `SAM2ImagePredictor.predict` computes.
//!
//! Memory (Linux, `/proc/self/status`): `VmHWM` after loading; then the high-water mark is
//! reset (`/proc/self/clear_refs` = 5) and `VmHWM` after the first `set_image` gives the
//! peak of set_image itself (weights included, as they stay resident); `VmRSS` before it is
//! the resident baseline.
use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{Device, Tensor};
use ruac_core::checkpoint::{Checkpoint, BAYES_HEAD_PREFIX};
use ruac_core::model::mask_decoder::gather_tokens;
use ruac_core::model::{BayesHeadConfig, ImageFeatures, Sam2Config, Sam2Model};
use ruac_core::predictor::{PointLabel, Predictor, Prompt, UncertaintyMode};
use serde_json::{json, Value};

mod common;
use common::{bench_image, fnv1a, proc_status_kb, reset_peak_rss, setup_process, stats, time_it, Args, Res};

const USAGE: &str = "usage: predictor --weights PATH --config NAME [--image-size N] [--threads N] [--reps N] [--warmup N] [--json OUT]";

/// What `Predictor::predict` does minus the uncertainty map, with the public model API.
/// Returns (masks `K,H,W`, IoU, low-res logits `K,h,w`).
fn predict_no_uncertainty(model: &Sam2Model, feats: &ImageFeatures, orig_hw: (usize, usize), point: (f32, f32)) -> Res<(Tensor, Vec<f32>, Tensor)> {
    let dev = feats.image_embed.device();
    let (h, w) = orig_hw;
    let s = model.cfg.image_size as f32;
    let coords = Tensor::from_vec(vec![point.0 / w as f32 * s, point.1 / h as f32 * s], (1, 1, 2), dev)?;
    let labels = Tensor::from_vec(vec![1f32], (1, 1), dev)?;
    let (sparse, dense) = model.prompt_encoder.forward(Some((&coords, &labels)), None)?;
    let dense_pe = model.prompt_encoder.get_dense_pe()?;
    let dec = &model.mask_decoder;
    let out = dec.predict_masks(&feats.image_embed, &dense_pe, &sparse, &dense, (&feats.feat_s0, &feats.feat_s1))?;
    let picks = dec.select_tokens(&out, true)?;
    let low = gather_tokens(&out.masks, &picks)?;
    let iou = gather_tokens(&out.iou.unsqueeze(2)?, &picks)?.flatten_all()?.to_vec1::<f32>()?;
    let masks = low.upsample_bilinear2d(h, w, false)?.squeeze(0)?;
    Ok((masks, iou, low.clamp(-32.0, 32.0)?.squeeze(0)?))
}

/// Summary numbers of a prediction, for a cross-check against the PyTorch run.
fn summary(masks: &Tensor, iou: &[f32], low: &Tensor) -> Res<Value> {
    let low_v = low.flatten_all()?.to_vec1::<f32>()?;
    let n = low_v.len() as f64;
    let mean = low_v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let abs_mean = low_v.iter().map(|&x| x.abs() as f64).sum::<f64>() / n;
    let pos = masks.flatten_all()?.to_vec1::<f32>()?.iter().filter(|&&x| x > 0.0).count();
    Ok(json!({ "iou": iou, "low_res_mean": mean, "low_res_abs_mean": abs_mean, "mask_positive_pixels": pos, "low_res_shape": low.dims() }))
}

fn main() -> Res<()> {
    let args = Args::parse(USAGE, Args::default())?;
    setup_process(args.threads)?;
    let dev = Device::Cpu;
    let mut cfg = Sam2Config::by_name(&args.config).ok_or_else(|| format!("unknown configuration {}", args.config))?;
    if let Some(s) = args.image_size {
        cfg = cfg.with_image_size(s);
    }
    let s = cfg.image_size;

    let t_load = Instant::now();
    let ckpt = Checkpoint::load(&args.weights)?;
    let ruac = ckpt.has_bayes_head();
    if ruac {
        cfg = cfg.with_bayes_head(Some(BayesHeadConfig::default()));
    }
    let model = ckpt.build_model(Some(cfg.clone()), &dev)?;
    let load_s = t_load.elapsed().as_secs_f64();
    let n_params: usize = ckpt.tensors.iter().filter(|(k, _)| !Checkpoint::is_ignored(k, &cfg)).map(|(_, t)| t.elem_count()).sum();
    let load_peak_kb = proc_status_kb("VmHWM:");

    let img = bench_image(s);
    let point = ((s * 2 / 5) as f32, (s * 2 / 5) as f32);
    let mut predictor = Predictor::new(model, dev.clone());

    // Memory of set_image: baseline, then peak of the first (cold) call.
    let rss_before_kb = proc_status_kb("VmRSS:");
    let reset_ok = reset_peak_rss();
    let t_first = Instant::now();
    predictor.set_image(&img)?;
    let first_set_image_s = t_first.elapsed().as_secs_f64();
    let set_image_peak_kb = proc_status_kb("VmHWM:");
    let warmup = args.warmup.saturating_sub(1); // the cold call above was the first warm-up run
    let set_image_times = time_it(warmup, args.reps, || Ok(predictor.set_image(&img)?))?;
    let set_image_peak_after_reps_kb = proc_status_kb("VmHWM:");

    let prompt = Prompt { points: vec![(point.0, point.1, PointLabel::Positive)], multimask: true, ..Default::default() };
    let mut timings = BTreeMap::new();
    timings.insert("set_image".to_string(), stats(&set_image_times));

    predictor.mode = UncertaintyMode::default();
    timings.insert("predict_mc".into(), stats(&time_it(args.warmup, args.reps, || Ok(predictor.predict(&prompt).map(|_| ())?))?));
    predictor.mode = UncertaintyMode::Analytic;
    timings.insert("predict_analytic".into(), stats(&time_it(args.warmup, args.reps, || Ok(predictor.predict(&prompt).map(|_| ())?))?));
    let pred = predictor.predict(&prompt)?;
    let unc = pred.uncertainty_low_res.flatten_all()?.to_vec1::<f32>()?;
    let unc_mean = unc.iter().map(|&x| x as f64).sum::<f64>() / unc.len() as f64;

    let feats = predictor.features().ok_or("no features after set_image")?.clone();
    let orig_hw = predictor.orig_hw();
    let sam2 = predictor.model.sam2().ok_or("not a SAM 2.1 model")?;
    timings.insert(
        "predict_no_unc".into(),
        stats(&time_it(args.warmup, args.reps, || predict_no_uncertainty(sam2, &feats, orig_hw, point).map(|_| ()))?),
    );
    let (m, iou, low) = predict_no_uncertainty(sam2, &feats, orig_hw, point)?;
    let own_head = summary(&m, &iou, &low)?;

    // SAM 2.1's hypernetwork head on the same weights (the PyTorch baseline's computation).
    let sam_head = if ruac {
        let mut plain = ckpt.clone();
        plain.tensors.retain(|k, _| !k.starts_with(BAYES_HEAD_PREFIX));
        let plain_model = plain.build_model(Some(cfg.clone().with_bayes_head(None)), &dev)?;
        timings.insert(
            "predict_sam_head_no_unc".into(),
            stats(&time_it(args.warmup, args.reps, || predict_no_uncertainty(&plain_model, &feats, orig_hw, point).map(|_| ()))?),
        );
        let (m, iou, low) = predict_no_uncertainty(&plain_model, &feats, orig_hw, point)?;
        summary(&m, &iou, &low)?
    } else {
        own_head.clone()
    };

    let out = json!({
        "impl": "rust-candle",
        "config": args.config,
        "image_size": s,
        "image_hw": [img.height, img.width],
        "image_fnv1a64": fnv1a(&img.data),
        "point": [point.0, point.1],
        "threads": args.threads,
        "rayon_num_threads": std::env::var("RAYON_NUM_THREADS").ok(),
        "candle_threads": candle_core::utils::get_num_threads(),
        "reps": args.reps,
        "warmup": args.warmup,
        "weights": args.weights,
        "pixel_head": if ruac { "bayesian (RUAC)" } else { "hypernetwork (SAM 2.1)" },
        "params": n_params,
        "load_s": load_s,
        "first_set_image_s": first_set_image_s,
        "timings": timings,
        "memory_kb": {
            "load_peak_vmhwm": load_peak_kb,
            "rss_before_set_image": rss_before_kb,
            "set_image_peak_vmhwm": if reset_ok { set_image_peak_kb } else { None },
            "peak_vmhwm_after_set_image_reps": set_image_peak_after_reps_kb,
            "peak_reset_supported": reset_ok,
            "final_vmhwm": proc_status_kb("VmHWM:"),
        },
        "outputs": {
            "own_head_no_unc": own_head,
            "sam_head_no_unc": sam_head,
            "uncertainty_analytic_low_res_mean": unc_mean,
        },
    });
    let text = serde_json::to_string_pretty(&out)?;
    match &args.json {
        Some(p) => std::fs::write(p, format!("{text}\n"))?,
        None => println!("{text}"),
    }
    let t = |k: &str| out["timings"][k]["median_s"].as_f64().unwrap_or(f64::NAN);
    eprintln!(
        "{} @{} threads={}: set_image {:.4}s, predict mc {:.4}s / analytic {:.4}s / no-unc {:.4}s, set_image peak {} MiB",
        args.config,
        s,
        args.threads,
        t("set_image"),
        t("predict_mc"),
        t("predict_analytic"),
        t("predict_no_unc"),
        set_image_peak_kb.map(|k| k / 1024).unwrap_or(0)
    );
    Ok(())
}
