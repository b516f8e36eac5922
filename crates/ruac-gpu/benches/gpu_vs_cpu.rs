//! Encode (`set_image`) and per-click decode (`predict`) times of the wgpu path
//! (`GpuPredictor`) against candle on the CPU (`Predictor`), natively.
//!
//! ```sh
//! cargo bench -p ruac-gpu --bench gpu_vs_cpu -- [--config micro|tiny|small|base_plus|large]
//!     [--image-size N] [--reps N] [--sam2]
//! ```
//!
//! `micro` uses the committed fixture weights (SAM 2.1 micro + the RUAC head); the official
//! configurations get deterministic random weights in the official layout
//! (`sam2.1_shapes.json`) plus a random RUAC head (`--sam2`: plain SAM 2.1, no head), as
//! speed does not depend on the values. Input: a deterministic 1280x960 RGB image; prompt:
//! one positive click, multimask output (3 masks); uncertainty: Monte Carlo (20 samples,
//! the released default) and analytic. Each timing is the median of `--reps` runs after one
//! warm-up run. The CPU side uses RAYON_NUM_THREADS (default: all cores).
use std::collections::HashMap;
use std::time::Instant;

use candle_core::{Device, Tensor};
use ruac_core::checkpoint::Checkpoint;
use ruac_core::image_io::RgbImage;
use ruac_core::predictor::{PointLabel, Predictor, Prompt, UncertaintyMode};
use ruac_gpu::GpuPredictor;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ruac-core/tests/fixtures").join(name)
}

/// Deterministic values in [-scale, scale).
fn random(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0) * scale
        })
        .collect()
}

fn checkpoint(config: &str, ruac: bool) -> Res<Checkpoint> {
    if config == "micro" {
        let mut ck = Checkpoint::load(fixture("sam2.1_micro.pt"))?;
        if ruac {
            ck.tensors.extend(Checkpoint::load(fixture("ruac_micro_head.safetensors"))?.tensors);
        }
        return Ok(ck);
    }
    let shapes: HashMap<String, HashMap<String, Vec<usize>>> = serde_json::from_str(&std::fs::read_to_string(fixture("sam2.1_shapes.json"))?)?;
    let layout = shapes.get(config).ok_or(format!("unknown configuration {config}"))?;
    let mut layout: Vec<(String, Vec<usize>)> = layout.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if ruac {
        let p = "sam_mask_decoder.pixel_bndl";
        for (k, v) in [("linear_add.0.weight", vec![32, 32]), ("linear_add.0.bias", vec![32]), ("linear_k.0.weight", vec![1, 32]), ("linear_k.0.bias", vec![1]), ("linear_add_w.weight", vec![64, 256]), ("linear_add_w.bias", vec![64]), ("linear_kw.0.weight", vec![1, 2]), ("linear_kw.0.bias", vec![1]), ("linear.bias", vec![2])] {
            layout.push((format!("{p}.{k}"), v));
        }
    }
    let mut tensors = HashMap::new();
    for (i, (name, shape)) in layout.into_iter().enumerate() {
        let n: usize = shape.iter().product();
        let fan_in = if shape.len() > 1 { shape[1..].iter().product::<usize>() } else { 1 };
        let scale = if name.ends_with("norm1.weight") || name.ends_with("norm2.weight") || name.ends_with(".1.weight") && shape.len() == 1 { 1.0 } else { 1.0 / (fan_in as f32).sqrt() };
        tensors.insert(name, Tensor::from_vec(random(n, i as u64 + 1, scale), shape, &Device::Cpu)?);
    }
    Ok(Checkpoint { tensors, source: format!("random {config}"), metadata: Default::default() })
}

fn image() -> Res<RgbImage> {
    let (w, h) = (1280, 960);
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let inside = (x as i64 - 700).pow(2) + (y as i64 - 400).pow(2) < 200 * 200;
            data.extend(if inside { [220, 40, 40] } else { [(x * 255 / w) as u8, (y * 255 / h) as u8, 120] });
        }
    }
    Ok(RgbImage::new(w, h, data)?)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time<F: FnMut() -> Res<()>>(reps: usize, mut f: F) -> Res<f64> {
    f()?;
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(t))
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let get = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let config = get("--config").unwrap_or_else(|| "micro".into());
    let reps: usize = get("--reps").map(|s| s.parse()).transpose()?.unwrap_or(5);
    let ruac = !args.iter().any(|a| a == "--sam2");
    let ck = checkpoint(&config, ruac)?;
    let mut cfg = ck.infer_config()?;
    if let Some(s) = get("--image-size") {
        cfg = cfg.with_image_size(s.parse()?);
    }
    let img = image()?;
    let p = Prompt { points: vec![(700.0, 400.0, PointLabel::Positive)], multimask: true, ..Default::default() };
    let modes = [("mc20", UncertaintyMode::MonteCarlo { samples: 20, seed: 0 }), ("analytic", UncertaintyMode::Analytic)];

    let t = Instant::now();
    let mut gpu = pollster::block_on(GpuPredictor::new(&ck, &cfg))?;
    let load_gpu = t.elapsed().as_secs_f64() * 1e3;
    println!("config {} (RUAC head: {ruac}), image {}x{} -> {} px, {} reps (median ms)", cfg.name, img.width, img.height, cfg.image_size, reps);
    println!("wgpu adapter: {}", gpu.adapter_info());
    println!("wgpu load (weights upload + kernel compile): {load_gpu:.1} ms");
    let enc_gpu = time(reps, || Ok(pollster::block_on(gpu.set_image(&img))?))?;
    for (k, n, s) in gpu.gpu().take_profile() {
        println!("  profile {k:<16} {n:>6} dispatches {:>10.1} ms", s * 1e3);
    }
    let mut dec_gpu = vec![];
    for (name, m) in modes {
        dec_gpu.push((name, time(reps, || pollster::block_on(gpu.predict(&p, m)).map(|_| ()).map_err(Into::into))?));
    }
    for (k, n, s) in gpu.gpu().take_profile() {
        println!("  profile {k:<16} {n:>6} dispatches {:>10.1} ms", s * 1e3);
    }
    drop(gpu);

    let mut cpu = Predictor::new(ck.build_model(Some(cfg.clone()), &Device::Cpu)?, Device::Cpu);
    let enc_cpu = time(reps, || Ok(cpu.set_image(&img)?))?;
    let mut dec_cpu = vec![];
    for (name, m) in modes {
        cpu.mode = m;
        dec_cpu.push((name, time(reps, || cpu.predict(&p).map(|_| ()).map_err(Into::into))?));
    }
    println!("{:<24} {:>12} {:>12} {:>8}", "step", "wgpu ms", "candle ms", "ratio");
    println!("{:<24} {:>12.1} {:>12.1} {:>8.2}", "encode (set_image)", enc_gpu, enc_cpu, enc_cpu / enc_gpu);
    for ((name, g), (_, c)) in dec_gpu.iter().zip(&dec_cpu) {
        println!("{:<24} {:>12.1} {:>12.1} {:>8.2}", format!("decode / click ({name})"), g, c, c / g);
    }
    Ok(())
}
