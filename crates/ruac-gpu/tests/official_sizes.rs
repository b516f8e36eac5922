//! The official SAM 2.1 sizes at their own 1024 px on wgpu under WebGPU's default limits
//! (128 MiB per storage binding, 256 MiB per buffer, whatever the adapter offers) against
//! candle on the CPU, with RUAC's head. At 1024 px the first block of stage 2 would hold
//! `3 x 2 x embed_dim` values per stage-1 token in one buffer (144 MiB for tiny) and large's
//! stage-1 MLP `4 x 144` (144 MiB): the encoder tiles them (`hiera.rs`), and this checks the
//! tiles add up to the untiled result. Weights: `model::init::init_params` (seeded, the
//! official names and shapes, which `ruac-core/tests/official_configs.rs` checks against the
//! reference's list). Tiny runs in `make test`; all four sizes are one ignored test (slow
//! on a software adapter):
//!
//! ```sh
//! cargo test --release -p ruac-gpu --test official_sizes -- --ignored --nocapture
//! ```
mod common;
use common::*;

use candle_core::Device;
use ruac_core::checkpoint::Checkpoint;
use ruac_core::image_io::RgbImage;
use ruac_core::model::config::{BayesHeadConfig, Sam2Config};
use ruac_core::model::init::init_params;
use ruac_core::predictor::{PointLabel, Predictor, Prompt, UncertaintyMode};
use ruac_gpu::{GpuOptions, GpuPredictor};

const DEFAULT_BINDING: u64 = 128 << 20;

/// A real photo (the page's test photo, 300 x 200, CC0) enlarged to 1024 x 768 (nearest).
fn image() -> RgbImage {
    let src = RgbImage::open(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/tests/fixtures/chelsea-300.png")).unwrap();
    let (w, h) = (1024, 768);
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let i = ((y * src.height / h) * src.width + x * src.width / w) * 3;
            data.extend_from_slice(&src.data[i..i + 3]);
        }
    }
    RgbImage::new(w, h, data).unwrap()
}

/// The largest activation the untiled encoder would need at 1024 px, in bytes.
fn largest_untiled(cfg: &Sam2Config) -> u64 {
    let tokens = (cfg.image_size / 4).pow(2) as u64;
    let e = cfg.hiera.embed_dim as u64;
    (tokens * 3 * 2 * e * 4).max(tokens * 4 * e * 4)
}

fn check(cfg: Sam2Config, seed: u64) {
    let cfg = cfg.with_bayes_head(Some(BayesHeadConfig::default()));
    assert_eq!(cfg.image_size, 1024);
    assert!(largest_untiled(&cfg) > DEFAULT_BINDING, "{}: nothing to tile at 1024 px, the test proves nothing", cfg.name);
    let tensors = init_params(&cfg, seed).unwrap().into_iter().collect();
    let ck = Checkpoint { tensors, source: format!("random {}", cfg.name), metadata: Default::default() };
    let opts = GpuOptions { f16_weights: Some(false), default_limits: true, adapter: None };
    let mut gpu = match pollster::block_on(GpuPredictor::with_options(&ck, &cfg, opts)) {
        Ok(g) => g,
        Err(e) => panic!("GpuPredictor failed (CI needs a GPU adapter: apt-get install mesa-vulkan-drivers): {e}"),
    };
    let limits = &gpu.gpu().limits;
    assert!(limits.max_storage_buffer_binding_size <= DEFAULT_BINDING && limits.max_buffer_size <= 256 << 20, "{limits:?}");
    eprintln!("{}: adapter {}, untiled the largest activation would be {} MiB", cfg.name, gpu.adapter_info(), largest_untiled(&cfg) >> 20);
    let mut cpu = Predictor::new(ck.build_model(Some(cfg.clone()), &Device::Cpu).unwrap(), Device::Cpu);
    let img = image();
    let t = std::time::Instant::now();
    pollster::block_on(gpu.set_image(&img)).expect("GPU set_image under the default limits");
    eprintln!("  wgpu encode {:.1} s", t.elapsed().as_secs_f64());
    cpu.set_image(&img).unwrap();
    let prompts = [
        ("click, multimask", Prompt { points: vec![(560.0, 330.0, PointLabel::Positive)], multimask: true, ..Default::default() }),
        ("box", Prompt { bbox: Some([380.0, 150.0, 740.0, 500.0]), ..Default::default() }),
    ];
    for (name, p) in prompts {
        let mode = UncertaintyMode::Analytic;
        cpu.mode = mode;
        let want = cpu.predict(&p).unwrap();
        let got = pollster::block_on(gpu.predict(&p, mode)).expect("GPU predict").to_prediction(&Device::Cpu).unwrap();
        assert_eq!(got.tokens, want.tokens, "{name}: selected tokens");
        let what = format!("{} {name}", cfg.name);
        assert_close(&format!("{what}: low-res logits"), &to_vec(&got.low_res_logits), &to_vec(&want.low_res_logits), 2e-3);
        assert_close(&format!("{what}: masks"), &to_vec(&got.masks), &to_vec(&want.masks), 2e-3);
        assert_close(&format!("{what}: iou"), &got.iou, &want.iou, 2e-3);
        assert_close(&format!("{what}: uncertainty"), &to_vec(&got.uncertainty_low_res), &to_vec(&want.uncertainty_low_res), 2e-3);
        let l = to_vec(&want.low_res_logits);
        let spread = l.iter().cloned().fold(f32::MIN, f32::max) - l.iter().cloned().fold(f32::MAX, f32::min);
        assert!(spread > 1e-2, "{what}: flat logits ({spread}), the comparison proves little");
        eprintln!("  {name}: max abs error logits {:.2e}", max_abs_diff(&to_vec(&got.low_res_logits), &l));
    }
}

#[test]
fn tiny_at_1024_under_webgpu_default_limits_matches_candle() {
    check(Sam2Config::tiny(), 11);
}

#[test]
#[ignore = "minutes on a software adapter; run with --ignored (documented in BENCHMARKS.md)"]
fn every_official_size_at_1024_under_webgpu_default_limits_matches_candle() {
    for (i, cfg) in [Sam2Config::small(), Sam2Config::base_plus(), Sam2Config::large()].into_iter().enumerate() {
        check(cfg, 20 + i as u64);
    }
}
