//! Stage-by-stage parity of the SAM 2.1 path with the reference PyTorch code (PyPI `sam2`),
//! on a random-weight micro checkpoint written under the official tensor names by
//! `tools/make_sam2_fixtures.py`.
mod common;
use common::*;

use candle_core::{DType, Device, Tensor};
use ruac_core::checkpoint::Checkpoint;
use ruac_core::image_io::{preprocess, RgbImage};
use ruac_core::model::Sam2Config;
use ruac_core::predictor::{PointLabel, Predictor, Prompt, UncertaintyMode};

const TOL: f32 = 1e-4;

fn micro128() -> Sam2Config {
    Sam2Config::micro().with_image_size(128)
}

fn image(io: &std::collections::HashMap<String, Tensor>) -> RgbImage {
    let t = get(io, "image");
    let (h, w, _) = t.dims3().unwrap();
    RgbImage::new(w, h, t.flatten_all().unwrap().to_vec1::<u8>().unwrap()).unwrap()
}

#[test]
fn preprocessing_matches_sam2_transforms() {
    let io = load_io("sam2.1_micro_io.safetensors");
    let ours = Tensor::from_vec(preprocess(&image(&io), 128), (1, 3, 128, 128), &Device::Cpu).unwrap();
    assert_close("input", &ours, get(&io, "input"), TOL);
}

#[test]
fn inferred_config_is_micro() {
    let ck = Checkpoint::load(fixture("sam2.1_micro.pt")).unwrap();
    let cfg = ck.infer_config().unwrap();
    assert_eq!(cfg.with_image_size(128), micro128());
}

fn check_encoder(model: &ruac_core::model::Sam2Model, io: &std::collections::HashMap<String, Tensor>) {
    let tr = model.encode_image_traced(get(io, "input")).unwrap();
    for (i, t) in tr.trunk.iter().enumerate() {
        assert_close(&format!("trunk.{i}"), t, get(io, &format!("trunk.{i}")), TOL);
    }
    assert_eq!(tr.neck.len(), 3);
    for (i, t) in tr.neck.iter().enumerate() {
        assert_close(&format!("neck.{i}"), t, get(io, &format!("neck.{i}")), TOL);
    }
    assert_close("feat_s0", &tr.features.feat_s0, get(io, "feat_s0"), TOL);
    assert_close("feat_s1", &tr.features.feat_s1, get(io, "feat_s1"), TOL);
    assert_close("image_embed", &tr.features.image_embed, get(io, "image_embed"), TOL);
}

#[test]
fn encoder_stages_match_reference_from_pt() {
    let io = load_io("sam2.1_micro_io.safetensors");
    let model = Checkpoint::load(fixture("sam2.1_micro.pt")).unwrap().build_model(Some(micro128()), &Device::Cpu).unwrap();
    check_encoder(&model, &io);
    assert_close("dense_pe", &model.prompt_encoder.get_dense_pe().unwrap(), get(&io, "dense_pe"), TOL);
}

#[test]
fn encoder_stages_match_reference_from_safetensors_conversion() {
    // A safetensors conversion of the official .pt (same names, f32) loads the same model.
    let io = load_io("sam2.1_micro_io.safetensors");
    let ck = Checkpoint::load(fixture("sam2.1_micro.pt")).unwrap();
    let dir = std::env::temp_dir().join(format!("ruac-st-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sam2.1_micro.safetensors");
    candle_core::safetensors::save(&ck.tensors, &path).unwrap();
    let model = Checkpoint::load(&path).unwrap().build_model(Some(micro128()), &Device::Cpu).unwrap();
    check_encoder(&model, &io);
    std::fs::remove_dir_all(&dir).ok();
}

fn prompt_for(io: &std::collections::HashMap<String, Tensor>, case: usize) -> Prompt {
    let key = |k: &str| format!("case{case}.{k}");
    let mut p = Prompt { multimask: get(io, &key("multimask")).to_scalar::<f32>().unwrap() > 0.5, ..Default::default() };
    if let Some(c) = io.get(&key("point_coords")) {
        let c = c.to_vec2::<f32>().unwrap();
        let l = get(io, &key("point_labels")).to_vec1::<f32>().unwrap();
        p.points = c
            .iter()
            .zip(&l)
            .map(|(xy, &lab)| (xy[0], xy[1], if lab > 0.5 { PointLabel::Positive } else { PointLabel::Negative }))
            .collect();
    }
    if let Some(b) = io.get(&key("box")) {
        let b = b.to_vec1::<f32>().unwrap();
        p.bbox = Some([b[0], b[1], b[2], b[3]]);
    }
    p.mask_input = io.get(&key("mask_input")).cloned();
    p
}

#[test]
fn predictions_match_reference_for_every_prompt_kind() {
    let io = load_io("sam2.1_micro_io.safetensors");
    let model = Checkpoint::load(fixture("sam2.1_micro.pt")).unwrap().build_model(Some(micro128()), &Device::Cpu).unwrap();
    let mut pred = Predictor::new(model, Device::Cpu);
    pred.mode = UncertaintyMode::Analytic;
    pred.set_image(&image(&io)).unwrap();
    let mut n = 0;
    for case in 0..16 {
        if !io.contains_key(&format!("case{case}.multimask")) {
            continue;
        }
        n += 1;
        let key = |k: &str| format!("case{case}.{k}");
        let p = prompt_for(&io, case);
        let out = pred.predict(&p).unwrap();
        let ref_low = get(&io, &key("low_res_masks")).squeeze(0).unwrap().clamp(-32f32, 32f32).unwrap();
        assert_close(&key("low_res_masks"), &out.low_res_logits, &ref_low, TOL);
        let ref_iou = get(&io, &key("iou")).flatten_all().unwrap();
        assert_close(&key("iou"), &Tensor::new(out.iou.as_slice(), &Device::Cpu).unwrap(), &ref_iou, TOL);
        let ref_obj = get(&io, &key("obj_score")).flatten_all().unwrap().to_vec1::<f32>().unwrap()[0];
        assert!((out.obj_score - ref_obj).abs() <= TOL, "{}: {} vs {}", key("obj_score"), out.obj_score, ref_obj);
        if let Some(m) = io.get(&key("masks")) {
            assert_close(&key("masks"), &out.masks, m, TOL);
        }
        // Uncertainty of plain SAM 2.1: entropy of its own probability, in [0, 1] here.
        let u = out.uncertainty.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(u.iter().all(|v| (0.0..=1.0).contains(v)));
    }
    assert!(n >= 6, "expected at least 6 prompt cases, found {n}");
}

#[test]
fn prompt_embeddings_match_reference() {
    let io = load_io("sam2.1_micro_io.safetensors");
    let model = Checkpoint::load(fixture("sam2.1_micro.pt")).unwrap().build_model(Some(micro128()), &Device::Cpu).unwrap();
    let (h, w) = (96f32, 150f32);
    for case in 0..6 {
        let key = |k: &str| format!("case{case}.{k}");
        let p = prompt_for(&io, case);
        let mut coords = vec![];
        let mut labels = vec![];
        if let Some([x0, y0, x1, y1]) = p.bbox {
            coords.extend([x0 / w * 128.0, y0 / h * 128.0, x1 / w * 128.0, y1 / h * 128.0]);
            labels.extend([2f32, 3.0]);
        }
        for (x, y, l) in &p.points {
            coords.extend([x / w * 128.0, y / h * 128.0]);
            labels.push(if *l == PointLabel::Positive { 1.0 } else { 0.0 });
        }
        let n = labels.len();
        let c = Tensor::from_vec(coords, (1, n, 2), &Device::Cpu).unwrap();
        let l = Tensor::from_vec(labels, (1, n), &Device::Cpu).unwrap();
        let (sparse, dense) = model.prompt_encoder.forward(Some((&c, &l)), p.mask_input.as_ref()).unwrap();
        assert_close(&key("sparse"), &sparse, get(&io, &key("sparse")), TOL);
        assert_close(&key("dense"), &dense.to_dtype(DType::F32).unwrap(), get(&io, &key("dense")), TOL);
    }
}
