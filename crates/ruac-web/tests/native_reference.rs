//! The native side of the browser tests, and the demo's Rust logic on its own.
//!
//! `native_reference_for_the_browser_case` runs the click of `web/tests/fixtures/case.json`
//! on the default model through the same functions the wasm module calls, checks it against
//! ruac-core's own loading path, and writes the result to
//! `target/tmp/ruac-web-reference.json`, which `web/tests/browser.test.mjs` compares with
//! what the page computes (CPU and WebGPU).
use std::path::PathBuf;

use candle_core::Device;
use ruac_core::checkpoint::Checkpoint;
use ruac_core::data::rle::Rle;
use ruac_core::image_io::RgbImage;
use ruac_core::predictor::Predictor;
use ruac_web::core::{self, WebError};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model_bytes() -> Vec<u8> {
    std::fs::read(root().join("web/models/ruac-micro.safetensors")).expect("default model committed")
}

#[derive(serde::Deserialize)]
struct Case {
    image: String,
    points: Vec<[f32; 3]>,
    multimask: bool,
    mode: String,
    samples: u32,
    seed: u32,
}

fn case() -> Case {
    let s = std::fs::read_to_string(root().join("web/tests/fixtures/case.json")).unwrap();
    serde_json::from_str(&s).unwrap()
}

#[test]
fn native_reference_for_the_browser_case() {
    let case = case();
    let loaded = core::load_model_bytes(&model_bytes(), "ruac-micro.safetensors").unwrap();
    assert!(loaded.info.ruac, "the default model carries the Bayesian head");
    assert_eq!(loaded.info.config, "micro");
    let img = RgbImage::open(root().join("web/tests/fixtures").join(&case.image)).unwrap();
    // The page hands over canvas RGBA; go through the same conversion.
    let rgba: Vec<u8> = img.data.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
    let img2 = core::rgba_to_rgb(&rgba, img.width, img.height).unwrap();
    assert_eq!(img, img2);

    let flat_points: Vec<f32> = case.points.iter().flatten().copied().collect();
    let prompt = core::make_prompt(&flat_points, &[], case.multimask).unwrap();
    core::check_prompt(&prompt, img.width, img.height, 0).unwrap();
    let mode = core::parse_mode(&case.mode, case.samples, case.seed).unwrap();

    let mut web = core::cpu_predictor(&loaded).unwrap();
    web.mode = mode;
    web.set_image(&img2).unwrap();
    let out = core::flatten(web.predict_maps(&prompt).unwrap());

    // The same through ruac-core's own file loading: the web path must not change a number.
    let ck = Checkpoint::load(root().join("web/models/ruac-micro.safetensors")).unwrap();
    let mut direct = Predictor::new(ck.build_model(None, &Device::Cpu).unwrap(), Device::Cpu);
    direct.mode = mode;
    direct.set_image(&img).unwrap();
    let d = core::flatten(direct.predict_maps(&prompt).unwrap());
    assert_eq!(out.masks, d.masks);
    assert_eq!(out.uncertainty, d.uncertainty);
    assert_eq!(out.iou, d.iou);

    assert_eq!((out.k, out.height, out.width), (3, img.height, img.width));
    assert!(out.masks.iter().chain(&out.uncertainty).all(|v| v.is_finite()));
    assert!(out.uncertainty.iter().all(|&u| (0.0..=out.max_value + 1e-6).contains(&u)));

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ruac-web-reference.json");
    std::fs::write(&path, serde_json::to_string(&out).unwrap()).unwrap();
    eprintln!("reference written to {}", path.display());
}

#[test]
fn bad_weights_give_messages() {
    let bytes = model_bytes();
    let msg = |r: Result<core::LoadedModel, WebError>| r.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg(core::load_model_bytes(&bytes[..4], "x")).contains("empty or truncated"));
    let m = msg(core::load_model_bytes(&bytes[..bytes.len() / 2], "half.safetensors"));
    assert!(m.contains("half.safetensors") && m.contains("not a valid safetensors"), "{m}");
    assert!(msg(core::load_model_bytes(b"PK\x03\x04rest of a zip", "sam.pt")).contains("PyTorch"));
    assert!(msg(core::load_model_bytes(&[7u8; 1000], "noise.bin")).contains("not a valid safetensors"));
    // A valid safetensors file that is not a SAM 2.1 model.
    let t = candle_core::Tensor::zeros((2, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
    let tmp = std::env::temp_dir().join(format!("ruac-web-other-{}.safetensors", std::process::id()));
    candle_core::safetensors::save(&std::collections::HashMap::from([("w".to_string(), t)]), &tmp).unwrap();
    let other = std::fs::read(&tmp).unwrap();
    std::fs::remove_file(&tmp).ok();
    assert!(msg(core::load_model_bytes(&other, "other")).contains("not a SAM 2.1 checkpoint"));
}

#[test]
fn bad_images_and_prompts_give_messages() {
    let e = core::rgba_to_rgb(&[0; 10], 2, 2).unwrap_err().to_string();
    assert!(e.contains("expected 2x2x4"), "{e}");
    let e = core::rgba_to_rgb(&[], 8000, 8000).unwrap_err().to_string();
    assert!(e.contains("too large"), "{e}");
    assert!(core::make_prompt(&[1.0, 2.0], &[], true).is_err());
    assert!(core::make_prompt(&[1.0, 2.0, 0.5], &[], true).unwrap_err().to_string().contains("label"));
    assert!(core::make_prompt(&[], &[1.0, 2.0], true).is_err());
    let p = core::make_prompt(&[70.0, 2.0, 1.0], &[], true).unwrap();
    assert!(core::check_prompt(&p, 64, 43, 0).unwrap_err().to_string().contains("outside"));
    let p = core::make_prompt(&[], &[5.0, 5.0, 5.0, 9.0], true).unwrap();
    assert!(core::check_prompt(&p, 64, 43, 0).unwrap_err().to_string().contains("empty"));
    assert!(core::check_prompt(&core::make_prompt(&[], &[], true).unwrap(), 64, 43, 0).is_err());
    assert!(core::parse_mode("exact", 1, 0).is_err());
}

#[test]
fn exports_round_trip() {
    let (w, h) = (5, 3);
    #[rustfmt::skip]
    let logits = [-1.0, 2.0, 2.0, -1.0, -1.0,
                  -1.0, 2.0, 2.0, 2.0, -1.0,
                  -1.0, -1.0, -1.0, -1.0, 0.5f32];
    let json: serde_json::Value = serde_json::from_str(&core::coco_rle_json(&logits, w, h, 0.9).unwrap()).unwrap();
    let counts = json["segmentation"]["counts"].as_str().unwrap();
    let back = Rle::from_coco_string(counts, h, w).unwrap().decode();
    let want: Vec<bool> = logits.iter().map(|&v| v > 0.0).collect();
    assert_eq!(back, want);
    assert_eq!(json["area"], 6);
    assert_eq!(json["bbox"], serde_json::json!([1, 0, 4, 3]));
    assert_eq!(json["segmentation"]["size"], serde_json::json!([3, 5]));

    let png = core::mask_png(&logits, w, h).unwrap();
    let img = image::load_from_memory(&png).unwrap().to_luma8();
    assert_eq!(img.dimensions(), (5, 3));
    assert_eq!(img.as_raw().iter().map(|&v| v == 255).collect::<Vec<_>>(), want);
    let unc = vec![0.3f32; 64 * 48];
    let png = core::uncertainty_png(&unc, 64, 48, std::f32::consts::LN_2, "nats").unwrap();
    let img = image::load_from_memory(&png).unwrap().to_rgb8();
    assert!(img.width() > 64 && img.height() == 48, "legend panel appended");
    assert!(core::mask_png(&logits, 4, 4).is_err());
    assert_eq!(core::inferno_lut().len(), 768);
}

/// The browser tests' SAM 1 model: the tiny ViT SAM of ruac-core's parity fixtures (64 px;
/// its configuration travels in the safetensors metadata) with a fresh RUAC Bayesian head
/// (`model::init`, seeded), as safetensors bytes.
fn sam1_tiny_with_head() -> Vec<u8> {
    use ruac_core::model::init::init_tensor;
    use ruac_core::model::sam1::parameter_shapes;
    let ck = Checkpoint::load(root().join("crates/ruac-core/tests/fixtures/sam1_tiny_vit.safetensors")).unwrap();
    let cfg = ck.infer_sam1_config().unwrap().with_bayes_head(true);
    let mut tensors = ck.tensors.clone();
    let mut rng = ruac_core::rng::Pcg32::new(6);
    for (name, dims) in parameter_shapes(&cfg).unwrap() {
        if name.starts_with("mask_decoder.pixel_bndl.") {
            tensors.insert(name.clone(), init_tensor(&name, &dims, &mut rng).unwrap());
        }
    }
    let mut sorted: Vec<_> = tensors.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    safetensors::serialize(sorted, Some(ck.metadata.clone())).unwrap()
}

/// The box the browser's SAM 1 test sets on `cat-64.png` (x0, y0, x1, y1).
const SAM1_BOX: [f32; 4] = [8.0, 5.0, 50.0, 38.0];

/// A SAM 1 model with a box through the demo's functions, against ruac-core's own path;
/// writes the model (`ruac-web-sam1-tiny.safetensors`) and the result with its box
/// (`ruac-web-sam1-reference.json`) for `web/tests/browser.test.mjs`.
#[test]
fn native_reference_for_the_browser_sam1_box() {
    let case = case();
    let bytes = sam1_tiny_with_head();
    let loaded = core::load_model_bytes(&bytes, "sam1-tiny.safetensors").unwrap();
    assert_eq!((loaded.info.family.as_str(), loaded.info.config.as_str()), ("sam1", "vit_tiny"));
    assert!(loaded.info.ruac && loaded.info.webgpu);
    assert_eq!(loaded.info.image_size, 64);
    let img = RgbImage::open(root().join("web/tests/fixtures").join(&case.image)).unwrap();
    let multimask = core::multimask_for(&loaded.info.family, true);
    assert!(!multimask, "SAM 1 with a box: the single mask");
    let prompt = core::make_prompt(&[], &SAM1_BOX, multimask).unwrap();
    core::check_prompt(&prompt, img.width, img.height, 0).unwrap();
    let mode = core::parse_mode(&case.mode, case.samples, case.seed).unwrap();

    let mut web = core::cpu_predictor(&loaded).unwrap();
    web.mode = mode;
    web.set_image(&img).unwrap();
    let out = core::flatten(web.predict_maps(&prompt).unwrap());

    let ck = Checkpoint::from_safetensors_bytes(&bytes, "sam1-tiny.safetensors").unwrap();
    let mut direct = Predictor::new(ck.build_base(None, None, &Device::Cpu).unwrap(), Device::Cpu);
    direct.mode = mode;
    direct.set_image(&img).unwrap();
    let d = core::flatten(direct.predict_maps(&prompt).unwrap());
    assert_eq!((out.masks.clone(), out.uncertainty.clone(), out.iou.clone()), (d.masks, d.uncertainty, d.iou));
    assert_eq!((out.k, out.height, out.width), (1, img.height, img.width));
    assert!(out.uncertainty.iter().all(|&u| (0.0..=out.max_value + 1e-6).contains(&u)));
    assert!(out.uncertainty.iter().any(|&u| u > 0.0), "the Bayesian head's map is not all zero");

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ruac-web-sam1-tiny.safetensors"), &bytes).unwrap();
    let mut json = serde_json::to_value(&out).unwrap();
    json["box"] = serde_json::json!(SAM1_BOX);
    std::fs::write(dir.join("ruac-web-sam1-reference.json"), json.to_string()).unwrap();
}

/// The page's default model (web/models/ruac-photo.safetensors, RUAC on LiteMedSAM for
/// photos) on a real photo (`chelsea-300.png`, CC0): a click (three candidates) and a box
/// (one mask), through the wasm module's functions and through ruac-core's own loading; the
/// result goes to `target/tmp/ruac-web-photo-reference.json` for the browser test.
pub const PHOTO_CLICK: [f32; 3] = [110.5, 80.5, 1.0];
pub const PHOTO_BOX: [f32; 4] = [20.0, 4.0, 290.0, 199.0];
/// A second click after `PHOTO_CLICK`, refining its best mask (the page's click sequence).
pub const PHOTO_SECOND_CLICK: [f32; 3] = [160.5, 150.5, 1.0];

#[test]
fn native_reference_for_the_browser_photo_default() {
    let case = case();
    let path = root().join("web/models/ruac-photo.safetensors");
    let bytes = std::fs::read(&path).expect("the default model is committed");
    let loaded = core::load_model_bytes(&bytes, "ruac-photo.safetensors").unwrap();
    assert_eq!((loaded.info.family.as_str(), loaded.info.config.as_str()), ("sam1", "lite_medsam"));
    assert!(loaded.info.ruac, "the default model carries the Bayesian head");
    let img = RgbImage::open(root().join("web/tests/fixtures/chelsea-300.png")).unwrap();
    let mode = core::parse_mode(&case.mode, case.samples, case.seed).unwrap();
    let mut web = core::cpu_predictor(&loaded).unwrap();
    web.mode = mode;
    web.set_image(&img).unwrap();
    let ck = Checkpoint::from_safetensors_bytes(&bytes, "ruac-photo.safetensors").unwrap();
    let mut direct = Predictor::new(ck.build_base(None, None, &Device::Cpu).unwrap(), Device::Cpu);
    direct.mode = mode;
    direct.set_image(&img).unwrap();
    let mut json = serde_json::json!({ "click": PHOTO_CLICK, "box": PHOTO_BOX });
    for (name, points, bbox, k) in [("click_result", &PHOTO_CLICK[..], &[][..], 3), ("box_result", &[][..], &PHOTO_BOX[..], 1)] {
        let prompt = core::make_prompt(points, bbox, core::multimask_for(&loaded.info.family, bbox.len() == 4)).unwrap();
        core::check_prompt(&prompt, img.width, img.height, 0).unwrap();
        let out = core::flatten(web.predict_maps(&prompt).unwrap());
        let d = core::flatten(direct.predict_maps(&prompt).unwrap());
        assert_eq!((&out.masks, &out.uncertainty, &out.iou), (&d.masks, &d.uncertainty, &d.iou), "{name}");
        assert_eq!((out.k, out.height, out.width), (k, img.height, img.width), "{name}");
        let inside = out.masks[..img.width * img.height].iter().filter(|&&v| v > 0.0).count();
        assert!(inside > 0 && inside < img.width * img.height, "{name}: a mask that is neither empty nor everything ({inside})");
        assert!(out.uncertainty.iter().any(|&u| u > 0.0), "{name}: a per-pixel uncertainty map");
        json[name] = serde_json::to_value(&out).unwrap();
    }
    // Refinement: the second click goes with the first click's best low-resolution logits as
    // the mask prompt, on both loading paths; a mask prompt of the wrong size is refused.
    let first = core::flatten(web.predict_maps(&core::make_prompt(&PHOTO_CLICK, &[], true).unwrap()).unwrap());
    let n = first.low_res * first.low_res;
    assert_eq!(first.low_res_logits.len(), 3 * n);
    let chosen = &first.low_res_logits[first.best * n..(first.best + 1) * n];
    let points: Vec<f32> = PHOTO_CLICK.iter().chain(&PHOTO_SECOND_CLICK).copied().collect();
    let refine = core::with_mask_input(core::make_prompt(&points, &[], true).unwrap(), chosen, first.low_res).unwrap();
    core::check_prompt(&refine, img.width, img.height, first.low_res).unwrap();
    let out = core::flatten(web.predict_maps(&refine).unwrap());
    let d = core::flatten(direct.predict_maps(&refine).unwrap());
    assert_eq!((&out.masks, &out.uncertainty, &out.iou), (&d.masks, &d.uncertainty, &d.iou), "refine");
    let plain = core::flatten(web.predict_maps(&core::make_prompt(&points, &[], true).unwrap()).unwrap());
    assert_ne!(out.masks, plain.masks, "the mask prompt changes the result");
    let short = core::with_mask_input(core::make_prompt(&points, &[], true).unwrap(), &chosen[1..], first.low_res);
    assert!(short.unwrap_err().to_string().contains("mask prompt"));
    json["second_click"] = serde_json::json!(PHOTO_SECOND_CLICK);
    json["refine_result"] = serde_json::to_value(&out).unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ruac-web-photo-reference.json"), json.to_string()).unwrap();
}
