//! Parity of RUAC's Bayesian pixel head with a Python re-implementation of the authors'
//! formulas (`tools/make_ruac_fixtures.py`), and loading of a RUAC-format checkpoint:
//! SAM 2.1 names plus `sam_mask_decoder.pixel_bndl.*`, with attacker tensors skipped.
mod common;
use common::*;

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use ruac_core::checkpoint::Checkpoint;
use ruac_core::image_io::RgbImage;
use ruac_core::model::mask_decoder::PixelHead;
use ruac_core::model::{BayesianPixelHead, Sam2Config, Sam2Model};
use ruac_core::predictor::{PointLabel, Predictor, Prompt, UncertaintyMode};

const TOL: f32 = 1e-4;

/// A RUAC checkpoint as the authors release it: every SAM 2.1 tensor (hypernetwork MLPs
/// and video modules included) plus the head and attacker tensors.
fn ruac_checkpoint() -> Checkpoint {
    let mut ck = Checkpoint::load(fixture("sam2.1_micro.pt")).unwrap();
    let head = Checkpoint::load(fixture("ruac_micro_head.safetensors")).unwrap();
    ck.tensors.extend(head.tensors);
    ck
}

fn write_and_reload(ck: &Checkpoint, name: &str) -> Checkpoint {
    // One folder per call: the tests of this file run in parallel threads of one process,
    // and a shared folder was removed under another test's feet.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("ruac-{name}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    candle_core::safetensors::save(&ck.tensors, &path).unwrap();
    let out = Checkpoint::load(&path).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    out
}

fn model() -> Sam2Model {
    let ck = write_and_reload(&ruac_checkpoint(), "model");
    let cfg = ck.infer_config().unwrap();
    assert!(cfg.bayes_head.is_some(), "a checkpoint with pixel_bndl tensors is a RUAC model");
    ck.build_model(Some(cfg.with_image_size(128)), &Device::Cpu).unwrap()
}

fn head(m: &Sam2Model) -> &BayesianPixelHead {
    match &m.mask_decoder.pixel_head {
        PixelHead::Bayesian(h) => h,
        PixelHead::Hypernetwork(_) => panic!("expected the Bayesian head"),
    }
}

fn io() -> HashMap<String, Tensor> {
    load_io("ruac_micro_io.safetensors")
}

#[test]
fn weibull_parameters_and_mean_logits_match() {
    let (m, io) = (model(), io());
    let h = head(&m);
    let p = h.params(get(&io, "upscaled"), get(&io, "mask_tokens"), 0.0, 0.0).unwrap();
    assert_close("lambda_f", &p.lambda_f, get(&io, "lambda_f"), TOL);
    assert_close("inv_k_f", &p.inv_k_f, get(&io, "inv_k_f"), TOL);
    assert_close("lambda_w", &p.lambda_w, get(&io, "lambda_w"), TOL);
    assert_close("inv_k_w", &p.inv_k_w, get(&io, "inv_k_w"), TOL);
    let logits = h.mean_logits(get(&io, "upscaled"), get(&io, "mask_tokens")).unwrap();
    assert_close("logits", &logits, get(&io, "logits"), TOL);
}

#[test]
fn analytic_uncertainty_matches() {
    let (m, io) = (model(), io());
    let u = head(&m).analytic_uncertainty(get(&io, "upscaled"), get(&io, "mask_tokens"), 0.0, 0.02).unwrap();
    assert_close("analytic", &u, get(&io, "analytic"), TOL);
}

#[test]
fn monte_carlo_uncertainty_matches_for_the_same_draws() {
    let (m, io) = (model(), io());
    let h = head(&m);
    let p = h.params(get(&io, "upscaled"), get(&io, "mask_tokens"), 0.0, 0.0).unwrap();
    let draws: Vec<(Tensor, Tensor)> = (0..3)
        .map(|i| (get(&io, &format!("mc.u_f.{i}")).clone(), get(&io, &format!("mc.u_w.{i}")).clone()))
        .collect();
    let (ent, mean) = h.mc_uncertainty_with(&p, &draws).unwrap();
    assert_close("mc.mean_prob", &mean, get(&io, "mc.mean_prob"), TOL);
    assert_close("mc.entropy", &ent, get(&io, "mc.entropy"), TOL);
}

#[test]
fn kl_closed_form_matches() {
    let io = io();
    let kl_f = BayesianPixelHead::kl_weibull_gamma(get(&io, "lambda_f"), get(&io, "inv_k_f"), 1.0, 3.0).unwrap();
    let kl_w = BayesianPixelHead::kl_weibull_gamma(get(&io, "lambda_w"), get(&io, "inv_k_w"), 1.0, 3.0).unwrap();
    // Sums of 8 terms averaged over pixels: relative tolerance.
    for (name, ours, r) in [("kl_f", kl_f, "kl_f"), ("kl_w", kl_w, "kl_w")] {
        let o = ours.to_scalar::<f32>().unwrap();
        let r = get(&io, r).to_vec1::<f32>().unwrap()[0];
        assert!((o - r).abs() <= 1e-5 * r.abs().max(1.0), "{name}: {o} vs {r}");
    }
}

#[test]
fn predictor_returns_head_logits_and_aligned_uncertainty() {
    let (m, io) = (model(), io());
    let sam_io = load_io("sam2.1_micro_io.safetensors");
    let t = get(&sam_io, "image");
    let (hh, ww, _) = t.dims3().unwrap();
    let img = RgbImage::new(ww, hh, t.flatten_all().unwrap().to_vec1::<u8>().unwrap()).unwrap();
    let mut pred = Predictor::new(m, Device::Cpu);
    pred.mode = UncertaintyMode::Analytic;
    pred.set_image(&img).unwrap();
    let p = Prompt { points: vec![(52.0, 40.0, PointLabel::Positive)], multimask: true, ..Default::default() };
    let out = pred.predict(&p).unwrap();
    assert_eq!(out.tokens, vec![1, 2, 3]);
    assert_close("case0.low_res_masks", &out.low_res_logits, &get(&io, "case0.low_res_masks").squeeze(0).unwrap(), TOL);
    assert_close("case0.iou", &Tensor::new(out.iou.as_slice(), &Device::Cpu).unwrap(), &get(&io, "case0.iou").flatten_all().unwrap(), TOL);
    // Mask j carries the uncertainty of token j + 1 (the release's channel alignment).
    let analytic = get(&io, "analytic").squeeze(0).unwrap().narrow(0, 1, 3).unwrap();
    assert_close("uncertainty alignment", &out.uncertainty_low_res, &analytic, TOL);
    assert_eq!(out.uncertainty.dims(), &[3, hh, ww]);

    // Single-mask output is token 0, without SAM's stability fallback (not used by RUAC).
    let single = pred.predict(&Prompt { multimask: false, ..p.clone() }).unwrap();
    assert_eq!(single.tokens, vec![0]);

    // Monte Carlo: in [0, ln 2], reproducible for a seed, different for another seed.
    pred.mode = UncertaintyMode::MonteCarlo { samples: 20, seed: 7 };
    let a = pred.predict(&p).unwrap().uncertainty_low_res;
    let b = pred.predict(&p).unwrap().uncertainty_low_res;
    assert_eq!(max_abs_diff(&a, &b), 0.0);
    let v = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(v.iter().all(|x| *x >= 0.0 && *x <= std::f32::consts::LN_2 + 1e-6));
    pred.mode = UncertaintyMode::MonteCarlo { samples: 20, seed: 8 };
    let c = pred.predict(&p).unwrap().uncertainty_low_res;
    assert!(max_abs_diff(&a, &c) > 0.0);
}

#[test]
fn monte_carlo_converges_to_the_expected_probability() {
    // With many draws the MC mean probability approaches E[sigmoid(l)], which for this head
    // lies between 0 and 1 and is close to (not equal to) sigmoid of the mean logit.
    let (m, io) = (model(), io());
    let h = head(&m);
    let (_, m1) = h.mc_uncertainty(get(&io, "upscaled"), get(&io, "mask_tokens"), 400, 1).unwrap();
    let (_, m2) = h.mc_uncertainty(get(&io, "upscaled"), get(&io, "mask_tokens"), 400, 2).unwrap();
    // Two independent 400-sample estimates agree to Monte Carlo error (std <= 0.5/sqrt(400)).
    assert!(max_abs_diff(&m1, &m2) < 0.12);
}

#[test]
fn attacker_tensors_are_skipped_but_unknown_tensors_are_errors() {
    let mut ck = ruac_checkpoint();
    let cfg = ck.infer_config().unwrap().with_image_size(128);
    ck.tensors.insert("sam_mask_decoder.pixel_bndl.extra.weight".into(), Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu).unwrap());
    let err = ck.build_model(Some(cfg.clone()), &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("1 unexpected") && err.contains("pixel_bndl.extra.weight"), "{err}");

    let mut ck = ruac_checkpoint();
    ck.tensors.remove("sam_mask_decoder.pixel_bndl.linear_k.0.weight");
    ck.tensors.remove("sam_mask_decoder.pixel_bndl.linear.bias");
    let err = ck.build_model(Some(cfg), &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("2 missing") && err.contains("linear_k.0.weight") && err.contains("linear.bias"), "{err}");
}

#[test]
fn plain_sam_config_rejects_a_ruac_checkpoint_head() {
    // Loading RUAC weights as plain SAM 2.1 leaves the head tensors unexpected: said, not ignored.
    let ck = ruac_checkpoint();
    let err = ck.build_model(Some(Sam2Config::micro().with_image_size(128)), &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("unexpected") && err.contains("pixel_bndl"), "{err}");
}
