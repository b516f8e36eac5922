//! Forward plus backward of the SAM 2.1 model, the core of a training step, timed for a
//! side-by-side with PyTorch (`tools/bench_train.py` runs the official `sam2` code on the same
//! weights, image, click, loss and thread count; BENCHMARKS.md has the results).
//!
//! ```sh
//! cargo bench -p ruac-core --bench fwd_bwd -- --weights ckpt.safetensors --image-size 256 \
//!     --threads 2 --reps 5 --json out.json
//! ```
//!
//! One image (the benchmark image of `benches/common`), one positive click on its disc; the
//! forward is `encode_image`, the prompt encoder and `predict_masks` (all four mask tokens);
//! the loss is the mean binary cross-entropy of the four low-resolution masks against the
//! disc plus the mean squared error of the IoU predictions to 0.5, a loss both
//! implementations compute identically. Two settings:
//! * `full`: every parameter trained (the base model's training, `configs/sam2.1-micro-base.toml`);
//! * `frozen_encoder`: the image encoder frozen, as in RUAC's clean branch.
//!
//! The loss and the gradient norm are reported so the driver can check both implementations
//! computed the same thing.
use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use ruac_core::checkpoint::{is_buffer, Checkpoint, BAYES_HEAD_PREFIX};
use ruac_core::image_io::preprocess;
use ruac_core::method::losses::bce_with_logits;
use ruac_core::method::params::ParamStore;
use ruac_core::model::{Sam2Config, Sam2Model};
use serde_json::json;

mod common;
use common::{bench_image, fnv1a, setup_process, stats, Args, Res};

const USAGE: &str = "usage: fwd_bwd --weights PATH [--config micro] [--image-size N] [--threads N] [--reps N] [--warmup N] [--json OUT]";

/// The disc of the benchmark image at the low-resolution mask size (same integer formula).
fn target(low: usize) -> Vec<f32> {
    let (c, r) = ((low * 2 / 5) as i64, (low / 6) as i64);
    let mut t = Vec::with_capacity(low * low);
    for y in 0..low as i64 {
        for x in 0..low as i64 {
            t.push((((x - c) * (x - c) + (y - c) * (y - c)) <= r * r) as u8 as f32);
        }
    }
    t
}

/// Forward to the loss.
fn forward(model: &Sam2Model, x: &Tensor, coords: &Tensor, labels: &Tensor, tgt: &Tensor) -> candle_core::Result<Tensor> {
    let feats = model.encode_image(x)?;
    let (sparse, dense) = model.prompt_encoder.forward(Some((coords, labels)), None)?;
    let pe = model.prompt_encoder.get_dense_pe()?;
    let out = model.mask_decoder.predict_masks(&feats.image_embed, &pe, &sparse, &dense, (&feats.feat_s0, &feats.feat_s1))?;
    let bce = bce_with_logits(&out.masks, &tgt.broadcast_as(out.masks.shape())?)?;
    let iou = (out.iou - 0.5)?.sqr()?.mean_all()?;
    bce + iou
}

fn main() -> Res<()> {
    let args = Args::parse(USAGE, Args { config: "micro".into(), image_size: Some(256), ..Args::default() })?;
    let image_size = args.image_size.unwrap_or(256);
    setup_process(args.threads)?;
    let dev = Device::Cpu;
    let cfg = Sam2Config::by_name(&args.config)
        .ok_or_else(|| format!("unknown configuration {}", args.config))?
        .with_image_size(image_size)
        .with_bayes_head(None);
    let s = cfg.image_size;
    let ckpt = Checkpoint::load(&args.weights)?;
    let tensors: BTreeMap<String, Tensor> = ckpt
        .tensors
        .iter()
        .filter(|(k, _)| !Checkpoint::is_ignored(k, &cfg) && !k.starts_with(BAYES_HEAD_PREFIX))
        .map(|(k, t)| Ok((k.clone(), t.to_dtype(DType::F32)?)))
        .collect::<candle_core::Result<_>>()?;

    let img = bench_image(s);
    let x = Tensor::from_vec(preprocess(&img, s), (1, 3, s, s), &dev)?;
    let c = (s * 2 / 5) as f32;
    let coords = Tensor::from_vec(vec![c, c], (1, 1, 2), &dev)?;
    let labels = Tensor::from_vec(vec![1f32], (1, 1), &dev)?;
    let low = s / 4;
    let tgt = Tensor::from_vec(target(low), (1, 1, low, low), &dev)?;

    let mut results = serde_json::Map::new();
    for setting in ["full", "frozen_encoder"] {
        let store = ParamStore::new(tensors.clone(), |n| !is_buffer(n) && (setting == "full" || !n.starts_with("image_encoder.")))?;
        let model = Sam2Model::new(&cfg, store.vb(""))?;
        let trained = store.trained();
        let n_trained: usize = trained.iter().map(|(_, v)| v.elem_count()).sum();
        let (mut fwd, mut bwd) = (vec![], vec![]);
        let (mut loss_v, mut gnorm) = (0f64, 0f64);
        let mut per_param = BTreeMap::new();
        for rep in 0..args.warmup + args.reps {
            let t0 = Instant::now();
            let loss = forward(&model, &x, &coords, &labels, &tgt)?;
            loss_v = loss.to_scalar::<f32>()? as f64;
            let t1 = Instant::now();
            let grads = loss.backward()?;
            // Reading every gradient is part of what an optimiser step needs anyway.
            let mut sq = 0f64;
            per_param.clear();
            for (name, v) in &trained {
                if let Some(g) = grads.get(v.as_tensor()) {
                    let s = g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
                    per_param.insert(name.to_string(), s.sqrt());
                    sq += s;
                }
            }
            let t2 = Instant::now();
            gnorm = sq.sqrt();
            if rep >= args.warmup {
                fwd.push((t1 - t0).as_secs_f64());
                bwd.push((t2 - t1).as_secs_f64());
            }
        }
        let total: Vec<f64> = fwd.iter().zip(&bwd).map(|(a, b)| a + b).collect();
        eprintln!(
            "rust {setting} @{s} threads={}: forward {:.4}s, backward {:.4}s, loss {loss_v:.6}, grad norm {gnorm:.6}",
            args.threads, stats(&fwd)["median_s"], stats(&bwd)["median_s"]
        );
        results.insert(
            setting.into(),
            json!({
                "trained_params": n_trained,
                "loss": loss_v,
                "grad_norm": gnorm,
                "grad_norms": per_param,
                "timings": { "forward": stats(&fwd), "backward": stats(&bwd), "forward_backward": stats(&total) },
            }),
        );
    }
    let out = json!({
        "impl": "rust-candle",
        "config": args.config,
        "image_size": s,
        "image_fnv1a64": fnv1a(&img.data),
        "threads": args.threads,
        "candle_threads": candle_core::utils::get_num_threads(),
        "reps": args.reps,
        "warmup": args.warmup,
        "settings": results,
    });
    let text = serde_json::to_string_pretty(&out)?;
    match &args.json {
        Some(p) => std::fs::write(p, format!("{text}\n"))?,
        None => println!("{text}"),
    }
    Ok(())
}
