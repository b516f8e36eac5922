//! `trainer eval` / `trainer compare` end to end on a tiny SAM 2-format domain.
mod common;
use common::*;

use std::path::Path;
use std::process::Command;

use candle_core::{Device, Tensor};

#[test]
fn eval_with_a_model_writes_reports_and_resumes_from_cache() {
    let dir = tempfile::tempdir().unwrap();
    make_domain(&dir.path().join("toy"));
    let m = manifest(dir.path());
    let out = dir.path().join("eval");
    let mut c = Command::new(env!("CARGO_BIN_EXE_trainer"));
    c.args(["eval", "--manifest"]).arg(&m).arg("--weights").arg(micro_pt());
    c.args(["--image-size", "128", "--prompts", "click1,click3,box", "--mc-samples", "4", "--out"]).arg(&out);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in ["results.json", "results.csv", "summary.md", "plots/reliability_click1.svg", "plots/risk_coverage_box.svg", "plots/unc_vs_error_toy_click3.svg", "plots/pavpu_box.svg"] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let r = results(&out);
    for p in ["click1", "click3", "box"] {
        let pr = &r["domains"][0]["protocols"][p];
        assert_eq!(pr["n_images"], 1);
        assert_eq!(pr["n_objects"], 2, "{p}");
        let j = metric(&r, p, "segmentation.j").unwrap();
        assert!((0.0..=1.0).contains(&j));
        let jf = metric(&r, p, "segmentation.jf").unwrap();
        let f = metric(&r, p, "segmentation.f").unwrap();
        assert!((jf - (j + f) / 2.0).abs() < 1e-9, "J&F is the mean of J and F");
        // PAvPU curve: fractions, one point per threshold of the default grid.
        let curve = pr["pavpu_curve"].as_array().unwrap();
        assert_eq!(curve.len(), 21);
        assert!(curve.iter().all(|c| (0.0..=1.0).contains(&c[1].as_f64().unwrap())));
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("| toy | 1 | 2 |") && md.contains("**average**"), "{md}");
    // A second run reuses the per-domain cache.
    let o2 = c.output().unwrap();
    assert!(o2.status.success());
    assert!(String::from_utf8_lossy(&o2.stderr).contains("cached") || String::from_utf8_lossy(&o2.stdout).contains("cached"));
    assert_eq!(results(&out)["domains"], r["domains"]);
}

fn write_predictions(root: &Path, masks: &[(u64, &Vec<bool>)], invert: bool) {
    for (id, m) in masks {
        let d = root.join("toy/seq/00000").join(id.to_string());
        std::fs::create_dir_all(&d).unwrap();
        let prob: Vec<f32> = m.iter().map(|&g| if g ^ invert { 0.9 } else { 0.1 }).collect();
        let unc: Vec<f32> = (0..m.len()).map(|i| (i % 7) as f32 / 10.0).collect();
        Tensor::from_vec(prob, (40, 60), &Device::Cpu).unwrap().write_npy(d.join("box.prob.npy")).unwrap();
        Tensor::from_vec(unc, (40, 60), &Device::Cpu).unwrap().write_npy(d.join("box.unc.npy")).unwrap();
        std::fs::write(d.join("box.json"), "{\"iou_score\": 0.8}").unwrap();
    }
}

#[test]
fn saved_predictions_are_scored_and_compared() {
    let dir = tempfile::tempdir().unwrap();
    let (m1, m2) = make_domain(&dir.path().join("toy"));
    let man = manifest(dir.path());
    let good = dir.path().join("pred_good");
    let bad = dir.path().join("pred_bad");
    write_predictions(&good, &[(1, &m1), (2, &m2)], false);
    write_predictions(&bad, &[(1, &m1), (2, &m2)], true);
    for (pred, out) in [(&good, "eval_good"), (&bad, "eval_bad")] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_trainer"));
        c.args(["eval", "--prompts", "box", "--manifest"]).arg(&man).arg("--predictions").arg(pred).arg("--out").arg(dir.path().join(out));
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let g = results(&dir.path().join("eval_good"));
    let b = results(&dir.path().join("eval_bad"));
    // A perfect mask: J = F = 1; no wrong pixel, so AUROC is undefined.
    assert_eq!(metric(&g, "box", "segmentation.j"), Some(1.0));
    assert_eq!(metric(&g, "box", "segmentation.f"), Some(1.0));
    assert_eq!(metric(&g, "box", "whole.uncertainty.auroc"), None);
    // Inverted: J = 0; every pixel wrong.
    assert_eq!(metric(&b, "box", "segmentation.j"), Some(0.0));
    // Brier of p = 0.9 / 0.1 on the right side: 0.01; on the wrong side: 0.81.
    assert!((metric(&g, "box", "whole.calibration.brier").unwrap() - 0.01).abs() < 1e-6);
    assert!((metric(&b, "box", "whole.calibration.brier").unwrap() - 0.81).abs() < 1e-6);

    let cmp = dir.path().join("cmp");
    let mut c = Command::new(env!("CARGO_BIN_EXE_trainer"));
    c.args(["compare", "--a"]).arg(dir.path().join("eval_bad/results.json")).arg("--b").arg(dir.path().join("eval_good/results.json"));
    c.args(["--name-a", "inverted", "--name-b", "exact", "--resamples", "200", "--out"]).arg(&cmp);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(cmp.join("compare.md")).unwrap();
    // B − A per metric; the complement of a mask has the same boundary, so only J differs.
    assert!(md.contains("| J | 1 | 0.0000 | 1.0000 | +1.0000 |"), "{md}");
    assert!(md.contains("| J&F | 1 | 0.5000 | 1.0000 | +0.5000 |"), "{md}");
    assert!(md.contains("| Brier | 1 | 0.8100 | 0.0100 | -0.8000 |"), "{md}");
    assert!(cmp.join("plots/jf_by_domain_box.svg").exists());
}

#[test]
fn eval_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let man = manifest(dir.path());
    let o = trainer(&["eval", "--out", "x", "--manifest"], &[&man]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("exactly one of --weights or --predictions"));
    let o = trainer(&["eval", "--prompts", "click2", "--predictions", "/tmp", "--out", "x", "--manifest"], &[&man]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("click1, click3, click5"));
    make_domain(&dir.path().join("toy"));
    let out = dir.path().join("o");
    let o = trainer(&["eval", "--pavpu-patch", "0", "--predictions", "/tmp", "--out"], &[&out, Path::new("--manifest"), &man]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("PAvPU settings"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = trainer(&["eval", "--predictions", "/tmp", "--out", "x", "--manifest"], &[&dir.path().join("none.toml")]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("reading manifest"));
}
