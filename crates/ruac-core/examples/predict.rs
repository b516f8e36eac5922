//! Load a checkpoint, encode an image, click once, and write the mask and the per-pixel
//! uncertainty map as PNGs.
//!
//! ```sh
//! cargo run --release -p ruac-core --example predict -- \
//!     models/ruac-micro.safetensors web/gallery/chelsea.jpg 190,130 out/
//! ```
//!
//! Arguments: checkpoint (SAM 2.1 / RUAC `.pt` or `.safetensors`, SAM 1 family `.pth`),
//! image, a foreground click `X,Y` in image pixels, output folder. Writes `mask.png` (the
//! mask with the highest predicted IoU) and `uncertainty.png` (inferno colormap with a
//! legend in the map's unit).
use std::path::PathBuf;

use candle_core::{DType, Device};
use ruac_core::checkpoint::Checkpoint;
use ruac_core::image_io::RgbImage;
use ruac_core::predictor::{PointLabel, Predictor, Prompt, UncertaintyMode};
use ruac_core::viz;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [weights, image, click, out] = &args[..] else {
        return Err("usage: predict CHECKPOINT IMAGE X,Y OUT_DIR".into());
    };
    let (x, y) = click
        .split_once(',')
        .and_then(|(x, y)| Some((x.trim().parse::<f32>().ok()?, y.trim().parse::<f32>().ok()?)))
        .ok_or_else(|| format!("the click must be X,Y in image pixels, got {click:?}"))?;
    let out = PathBuf::from(out);

    // Load: the format (PyTorch zip or safetensors) and the configuration are read from the file.
    let model = Checkpoint::load(weights)?.build_base(None, None, &Device::Cpu)?;
    println!("model {} (RUAC head: {})", model.name(), model.has_bayes_head());
    let mut predictor = Predictor::new(model, Device::Cpu);
    // The released setting: entropy of the mean of 20 seeded Weibull draws, in nats.
    predictor.mode = UncertaintyMode::MonteCarlo { samples: 20, seed: 0 };

    // Encode once; every click after this runs only the prompt encoder and the decoder.
    let img = RgbImage::open(image)?;
    predictor.set_image(&img)?;
    let prompt = Prompt { points: vec![(x, y, PointLabel::Positive)], multimask: true, ..Default::default() };
    let pred = predictor.predict(&prompt)?;

    // The mask with the highest predicted IoU, and its uncertainty map.
    let best = pred.best();
    let (w, h) = (img.width, img.height);
    let logits = pred.masks.get(best)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let uncertainty = pred.uncertainty.get(best)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    std::fs::create_dir_all(&out)?;
    let mask: Vec<u8> = logits.iter().map(|&v| if v > 0.0 { 255 } else { 0 }).collect();
    image::GrayImage::from_raw(w as u32, h as u32, mask).ok_or("mask buffer size")?.save(out.join("mask.png"))?;
    let vmax = pred.mode.max_value();
    let (rgb, legend_w) = viz::with_legend(&viz::colorize(&uncertainty, vmax), w, h, vmax, "nats");
    image::RgbImage::from_raw(legend_w as u32, h as u32, rgb).ok_or("map buffer size")?.save(out.join("uncertainty.png"))?;

    let area = logits.iter().filter(|&&v| v > 0.0).count();
    let mean = uncertainty.iter().sum::<f32>() / uncertainty.len() as f32;
    println!(
        "mask {best} of {}: predicted IoU {:.3}, {area} px; mean uncertainty {mean:.4} ({}); wrote {}",
        pred.iou.len(),
        pred.iou[best],
        pred.mode.unit(),
        out.display()
    );
    Ok(())
}
