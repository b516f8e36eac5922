//! The page at real size (issue 13, item 2), native side: a RUAC checkpoint the size of
//! the released base-plus model (seeded random weights in the official layout, video-memory
//! tensors included, plus RUAC's head: `model::init::init_official_layout`, about 324 MB) and a 1024 x 768 image, one click through the wasm module's own functions.
//! Writes the model, the image and the result, sampled every `STRIDE` values, for
//! `web/tests/real-size.test.mjs`, which loads the same file in headless Chromium and must
//! give the same numbers. Speed and memory are what this size is for; the masks of random
//! weights mean nothing.
use std::path::PathBuf;

use candle_core::Tensor;
use ruac_core::image_io::RgbImage;
use ruac_core::model::config::{BayesHeadConfig, Sam2Config};
use ruac_core::model::init::init_official_layout;
use ruac_web::core;

/// Every `STRIDE`-th value of the masks and the uncertainty goes to the reference (a prime,
/// so the samples fall on every row and column phase).
const STRIDE: usize = 1009;
/// The click (image pixels) and the image size.
const CLICK: [f32; 3] = [560.5, 330.5, 1.0];
const SIZE: (usize, usize) = (1024, 768);

fn image() -> RgbImage {
    let (w, h) = SIZE;
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let inside = (x as i64 - 560).pow(2) + (y as i64 - 330).pow(2) < 160 * 160;
            data.extend(if inside { [220, 40, (x % 31) as u8] } else { [(x * 255 / w) as u8, (y * 255 / h) as u8, ((x + y) % 97) as u8] });
        }
    }
    RgbImage::new(w, h, data).unwrap()
}

#[test]
fn native_reference_for_the_browser_base_plus() {
    let cfg = Sam2Config::base_plus().with_bayes_head(Some(BayesHeadConfig::default()));
    let shapes = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ruac-core/tests/fixtures/sam2.1_shapes.json");
    let mut all: std::collections::BTreeMap<String, std::collections::BTreeMap<String, Vec<usize>>> =
        serde_json::from_str(&std::fs::read_to_string(shapes).unwrap()).unwrap();
    let tensors: Vec<(String, Tensor)> = init_official_layout(&cfg, &all.remove("base_plus").unwrap(), 5).unwrap().into_iter().collect();
    let bytes = safetensors::serialize(tensors, None).unwrap();
    assert!((320e6..335e6).contains(&(bytes.len() as f64)), "{} bytes: not the released model's size (330.8 MB)", bytes.len());
    let name = "ruac-bplus-random.safetensors";
    let loaded = core::load_model_bytes(&bytes, name).unwrap();
    assert_eq!((loaded.info.family.as_str(), loaded.info.config.as_str(), loaded.info.image_size), ("sam2", "base_plus", 1024));
    assert!(loaded.info.ruac);
    let img = image();
    let mode = core::parse_mode("mc", 20, 0).unwrap();
    let mut web = core::cpu_predictor(&loaded).unwrap();
    web.mode = mode;
    let t = std::time::Instant::now();
    web.set_image(&img).unwrap();
    let encode_s = t.elapsed().as_secs_f64();
    let prompt = core::make_prompt(&CLICK, &[], core::multimask_for(&loaded.info.family, false)).unwrap();
    core::check_prompt(&prompt, img.width, img.height, 0).unwrap();
    let out = core::flatten(web.predict_maps(&prompt).unwrap());
    assert_eq!((out.k, out.height, out.width), (3, SIZE.1, SIZE.0));
    let n = SIZE.0 * SIZE.1;
    let inside: Vec<usize> = (0..3).map(|i| out.masks[i * n..(i + 1) * n].iter().filter(|&&v| v > 0.0).count()).collect();
    let sample = |v: &[f32]| v.iter().step_by(STRIDE).copied().collect::<Vec<f32>>();
    let (ms, us) = (sample(&out.masks), sample(&out.uncertainty));
    let spread = ms.iter().cloned().fold(f32::MIN, f32::max) - ms.iter().cloned().fold(f32::MAX, f32::min);
    assert!(spread > 1e-2 && us.iter().any(|&u| u > 0.0), "flat maps ({spread}): the comparison would prove little");
    eprintln!("base-plus-sized RUAC: {} bytes, native encode {encode_s:.1} s, IoU {:?}, mask pixels {inside:?}", bytes.len(), out.iou);

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), &bytes).unwrap();
    image::RgbImage::from_raw(img.width as u32, img.height as u32, img.data.clone()).unwrap().save(dir.join("ruac-web-bplus-image.png")).unwrap();
    let json = serde_json::json!({
        "model": name, "image": "ruac-web-bplus-image.png", "click": CLICK, "stride": STRIDE,
        "k": out.k, "width": out.width, "height": out.height, "iou": out.iou, "best": out.best, "obj_score": out.obj_score,
        "mode": out.mode, "inside": inside, "masks": ms, "uncertainty": us, "bytes": bytes.len(), "native_encode_s": encode_s,
    });
    std::fs::write(dir.join("ruac-web-bplus-reference.json"), json.to_string()).unwrap();
}
