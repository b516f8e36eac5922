//! What the trainer's CLI tests share: fixtures, a tiny SAM 2-format domain, the binary.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crates/ruac-core/tests/fixtures").join(name)
}

/// A file of the repository (models, page fixtures).
pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

pub fn micro_pt() -> PathBuf {
    fixture("sam2.1_micro.pt")
}

/// One image (60x40) with two objects: a disc (id 1) and a rectangle (id 2).
pub fn make_domain(root: &Path) -> (Vec<bool>, Vec<bool>) {
    let (w, h) = (60u32, 40u32);
    std::fs::create_dir_all(root.join("JPEGImages/seq")).unwrap();
    std::fs::create_dir_all(root.join("Annotations/seq")).unwrap();
    let disc = |x: u32, y: u32| (x as i32 - 18).pow(2) + (y as i32 - 20).pow(2) <= 100;
    let rect = |x: u32, y: u32| (35..55).contains(&x) && (8..30).contains(&y);
    image::RgbImage::from_fn(w, h, |x, y| {
        if disc(x, y) { image::Rgb([220, 40, 40]) } else if rect(x, y) { image::Rgb([30, 60, 200]) } else { image::Rgb([120, 160, 90]) }
    })
    .save(root.join("JPEGImages/seq/00000.jpg"))
    .unwrap();
    image::GrayImage::from_fn(w, h, |x, y| image::Luma([if disc(x, y) { 1 } else if rect(x, y) { 2 } else { 0 }]))
        .save(root.join("Annotations/seq/00000.png"))
        .unwrap();
    let m1 = (0..h).flat_map(|y| (0..w).map(move |x| disc(x, y))).collect();
    let m2 = (0..h).flat_map(|y| (0..w).map(move |x| rect(x, y))).collect();
    (m1, m2)
}

pub fn manifest(dir: &Path) -> PathBuf {
    let p = dir.join("domains.toml");
    std::fs::write(&p, "[[domain]]\nname = \"toy\"\npath = \"toy\"\nformat = \"davis\"\n").unwrap();
    p
}

pub fn trainer(args: &[&str], paths: &[&Path]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trainer"));
    c.args(args);
    for p in paths {
        c.arg(p);
    }
    c.output().unwrap()
}

pub fn results(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap()
}

pub fn metric(r: &serde_json::Value, protocol: &str, key: &str) -> Option<f64> {
    r["domains"][0]["protocols"][protocol]["metrics"][key].as_f64()
}


/// A micro model at 128 px, one object, no correction clicks: seconds per step.
pub fn train_config(dir: &Path, name: &str, extra: &str, steps: usize) -> PathBuf {
    let text = format!(
        r#"[model]
config = "micro"
image_size = 128
{extra}

[data]
source = "procedural"
max_objects = 1

[train]
steps = {steps}
grad_accum = 1
seed = 7
clip_grad_norm = 1.0
weight_decay = 0.01
checkpoint_every = 2
keep_checkpoints = 2

[lr]
base = [1e-3, 1e-3]
head = [1e-3, 1e-3]
attackers = [1e-2, 1e-2]
vision = [1e-3, 1e-3]

[loss.prompts]
correction_clicks = 0
prob_point = 1.0

[loss.seg]
focal = 1.0
dice = 1.0
iou = 1.0
obj_score = 1.0
"#
    );
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

