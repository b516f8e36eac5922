//! `trainer segment` end to end on the micro parity checkpoint.
use std::process::Command;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crates/ruac-core/tests/fixtures").join(name)
}

fn write_image(dir: &std::path::Path) -> std::path::PathBuf {
    let img = image::RgbImage::from_fn(150, 96, |x, y| {
        let d = ((x as i32 - 52).pow(2) + (y as i32 - 42).pow(2)) as f32;
        if d < 17.0 * 17.0 { image::Rgb([220, 30, 40]) } else { image::Rgb([(40 + x) as u8, (30 + y) as u8, 120]) }
    });
    let p = dir.join("scene.png");
    img.save(&p).unwrap();
    p
}

fn trainer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
}

#[test]
fn segment_writes_mask_uncertainty_and_scores() {
    let dir = tempfile::tempdir().unwrap();
    let img = write_image(dir.path());
    let out = dir.path().join("out");
    let st = trainer()
        .args(["segment", "--weights"])
        .arg(fixture("sam2.1_micro.pt"))
        .args(["--image-size", "128", "--image"])
        .arg(&img)
        .args(["--point", "52,40,1", "--point", "120,30,0", "--multimask", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    for f in ["mask.png", "mask_0.png", "mask_1.png", "mask_2.png", "uncertainty.png", "overlay.png", "uncertainty.npy", "result.json"] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let mask = image::open(out.join("mask.png")).unwrap().to_luma8();
    assert_eq!(mask.dimensions(), (150, 96));
    assert!(mask.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
    let unc = image::open(out.join("uncertainty.png")).unwrap().to_rgb8();
    assert_eq!(unc.height(), 96);
    assert!(unc.width() > 150, "legend panel appended");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    let iou = json["iou_predictions"].as_array().unwrap();
    assert_eq!(iou.len(), 3);
    let best = json["best_mask"].as_u64().unwrap() as usize;
    let max = iou.iter().map(|v| v.as_f64().unwrap()).fold(f64::MIN, f64::max);
    assert_eq!(iou[best].as_f64().unwrap(), max);
    // The .npy holds K x H x W float32 values (header + 3*96*150*4 bytes).
    let npy = std::fs::read(out.join("uncertainty.npy")).unwrap();
    assert!(npy.starts_with(b"\x93NUMPY"));
    assert!(npy.len() > 3 * 96 * 150 * 4);
}

#[test]
fn segment_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let img = write_image(dir.path());
    let run = |extra: &[&str]| {
        let o = trainer()
            .args(["segment", "--weights"])
            .arg(fixture("sam2.1_micro.pt"))
            .args(["--image-size", "128", "--image"])
            .arg(&img)
            .args(["--out"])
            .arg(dir.path().join("o"))
            .args(extra)
            .output()
            .unwrap();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    assert!(run(&[]).contains("no prompt"));
    assert!(run(&["--point", "500,10,1"]).contains("outside the 150x96 image"));
    assert!(run(&["--point", "5,10,7"]).contains("label must be 1"));
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, b"nope").unwrap();
    let o = trainer()
        .args(["segment", "--weights"])
        .arg(fixture("sam2.1_micro.pt"))
        .args(["--image"])
        .arg(&bad)
        .args(["--point", "1,1,1", "--out"])
        .arg(dir.path().join("o"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("unrecognised image format"));
}

/// A SAM 1 family checkpoint (the tiny ViT SAM fixture; configuration in its metadata)
/// through the same command: one mask for a box, IoU, the map of its own probability.
#[test]
fn segment_runs_a_sam1_model_with_a_box() {
    let dir = tempfile::tempdir().unwrap();
    let img = write_image(dir.path());
    let out = dir.path().join("out");
    let st = trainer()
        .args(["segment", "--weights"])
        .arg(fixture("sam1_tiny_vit.safetensors"))
        .args(["--image"])
        .arg(&img)
        .args(["--box", "30,20,80,70", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let mask = image::open(out.join("mask.png")).unwrap().to_luma8();
    assert_eq!(mask.dimensions(), (150, 96));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(json["model"], "vit_tiny");
    assert_eq!(json["ruac_head"], false);
    assert_eq!(json["iou_predictions"].as_array().unwrap().len(), 1);
    assert_eq!(json["uncertainty"]["mode"], "sam_sigmoid_entropy");
}
