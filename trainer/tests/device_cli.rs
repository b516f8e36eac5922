//! `--device` through the CLI (issue 17, item 1): `segment` and `eval` on `wgpu` (ruac-gpu
//! natively; in CI Mesa's lavapipe, `apt-get install mesa-vulkan-drivers`) agree with `cpu`
//! for both model families, within the tolerances of ruac-gpu's parity tests, and name the
//! adapter; a device that is asked for and missing is a clear error, never a fallback.
mod common;
use common::*;

use std::path::{Path, PathBuf};

use candle_core::Tensor;

/// RUAC on SAM 2.1 micro and RUAC on LiteMedSAM (the page's default), both committed.
fn ruac_sam2() -> PathBuf {
    repo("web/models/ruac-micro.safetensors")
}
fn ruac_sam1() -> PathBuf {
    repo("web/models/ruac-photo.safetensors")
}
fn photo() -> PathBuf {
    repo("web/tests/fixtures/chelsea-300.png")
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn segment(weights: &Path, device: &str, out: &Path, prompt: &[&str]) -> std::process::Output {
    let mut args = vec!["segment", "--device", device, "--mc-samples", "20", "--seed", "3"];
    args.extend_from_slice(prompt);
    args.push("--weights");
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_trainer"));
    c.args(&args).arg(weights).arg("--image").arg(photo()).arg("--out").arg(out);
    c.output().unwrap()
}

fn segment_agrees(weights: &Path, gpu_device: &str, prompt: &[&str], what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (cpu, gpu) = (dir.path().join("cpu"), dir.path().join("wgpu"));
    for (device, out) in [("cpu", &cpu), (gpu_device, &gpu)] {
        let o = segment(weights, device, out, prompt);
        assert!(o.status.success(), "{what} on {device}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let (jc, jg) = (json(&cpu.join("result.json")), json(&gpu.join("result.json")));
    assert_eq!(jc["device"], "cpu");
    let name = jg["device"].as_str().unwrap();
    assert!(name.starts_with("wgpu ") && name.len() > 10, "{what}: the adapter is named: {name}");
    assert_eq!((&jc["model"], &jc["ruac_head"], &jc["best_mask"]), (&jg["model"], &jg["ruac_head"], &jg["best_mask"]), "{what}");
    let (ic, ig) = (numbers(&jc["iou_predictions"]), numbers(&jg["iou_predictions"]));
    assert!(ic.iter().zip(&ig).all(|(a, b)| (a - b).abs() <= 1e-3), "{what}: IoU {ic:?} vs {ig:?}");
    let read = |d: &Path| Tensor::read_npy(d.join("uncertainty.npy")).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let (uc, ug) = (read(&cpu), read(&gpu));
    let d = max_abs(&uc, &ug);
    assert!(d <= 1e-3, "{what}: uncertainty differs by {d}");
    assert!(uc.iter().cloned().fold(0.0, f32::max) > 1e-2, "{what}: a flat uncertainty map proves little");
    let mask = |d: &Path| image::open(d.join("mask.png")).unwrap().to_luma8().into_raw();
    let (mc, mg) = (mask(&cpu), mask(&gpu));
    let differ = mc.iter().zip(&mg).filter(|(a, b)| a != b).count();
    let inside = mc.iter().filter(|&&v| v > 0).count();
    assert!(inside > 0 && differ * 1000 <= mc.len(), "{what}: {differ} of {} mask pixels differ ({inside} inside)", mc.len());
    eprintln!("{what}: wgpu vs cpu: uncertainty {d:.1e}, {differ} mask pixels differ, adapter {name}");
}

#[test]
fn segment_on_wgpu_matches_the_cpu_for_both_families() {
    segment_agrees(&ruac_sam2(), "wgpu", &["--point", "150,100,1", "--point", "40,30,0", "--multimask"], "RUAC SAM 2.1 micro, clicks");
    segment_agrees(&ruac_sam1(), "wgpu:0", &["--box", "20,4,290,199"], "RUAC LiteMedSAM, box");
}

#[test]
fn eval_on_wgpu_matches_the_cpu_for_both_families() {
    for (weights, what) in [(ruac_sam2(), "SAM 2.1"), (ruac_sam1(), "SAM 1")] {
        let dir = tempfile::tempdir().unwrap();
        make_domain(&dir.path().join("toy"));
        let m = manifest(dir.path());
        let mut res = vec![];
        for device in ["cpu", "wgpu"] {
            let out = dir.path().join(device);
            let o = trainer(&["eval", "--device", device, "--prompts", "click1,click3,box", "--mc-samples", "4", "--manifest"], &[&m, Path::new("--weights"), &weights, Path::new("--out"), &out]);
            assert!(o.status.success(), "{what} eval on {device}: {}", String::from_utf8_lossy(&o.stderr));
            let err = String::from_utf8_lossy(&o.stderr).to_string();
            assert!(err.contains(&format!("device: {device}")), "{what}: the device is reported: {err}");
            res.push(results(&out));
        }
        for p in ["click1", "click3", "box"] {
            for key in ["segmentation.j", "segmentation.f", "segmentation.jf", "whole.calibration.ece"] {
                let (c, g) = (metric(&res[0], p, key).unwrap(), metric(&res[1], p, key).unwrap());
                assert!((c - g).abs() <= 2e-3, "{what} {p} {key}: cpu {c}, wgpu {g}");
            }
        }
    }
}

#[test]
fn missing_devices_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let fails = |device: &str| {
        let o = segment(&ruac_sam2(), device, &out, &["--point", "150,100,1"]);
        assert!(!o.status.success(), "{device} must fail");
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let e = fails("wgpu:99");
    assert!(e.contains("adapter 99 was asked for"), "{e}");
    // `trainer devices` lists what can be named, the adapters in the order wgpu:N counts.
    let o = trainer(&["devices"], &[]);
    assert!(o.status.success());
    let list = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(list.starts_with("cpu\n") && list.contains("wgpu:0: "), "{list}");
    if !cfg!(feature = "cuda") {
        let e = fails("cuda:0");
        assert!(e.contains("needs a build with `--features cuda`"), "{e}");
    }
    let e = fails("tpu");
    assert!(e.contains("unknown device \"tpu\": use cpu, cuda:N or wgpu[:N]"), "{e}");
    assert!(!out.join("result.json").exists(), "nothing written for a missing device");
}
