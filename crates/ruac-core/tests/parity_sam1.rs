//! The SAM 1 encoders and decoder at tiny random configurations against the reference
//! PyTorch code (`tools/make_sam1_fixtures.py`): a whole SAM with the ViT encoder
//! (PyPI `segment-anything`: windowed and global attention, relative positions, window
//! padding) for four prompt kinds, MobileSAM's TinyViT encoder (3x3 stride-2 patch embedding,
//! window padding, stride-2 patch merging) from a bare `.pt` state dict, and the SAM 1
//! decoder with RUAC's Bayesian pixel head in place of the hypernetworks.
mod common;
use common::sam1_head::bayes_head_tensors;
use common::*;

use std::collections::HashMap;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;
use ruac_core::checkpoint::Checkpoint;
use ruac_core::image_io::{resize_pil_bilinear, sam1_preprocess_shape, Preprocessing, RgbImage};
use ruac_core::predictor::{pixel_uncertainty, PointLabel, Predictor, Prompt, UncertaintyMode};
use ruac_core::model::mask_decoder::PixelHead;
use ruac_core::model::sam1::{
    Sam1Config, Sam1DecoderConfig, Sam1EncoderConfig, Sam1ImageEncoder, Sam1Model, TinyVit, TinyVitConfig, VitConfig,
};

const TOL: f32 = 1e-4;

#[track_caller]
fn report(name: &str, ours: &Tensor, reference: &Tensor, tol: f32) {
    let d = max_abs_diff(ours, reference);
    eprintln!("{name}: max abs error {d:.3e}");
    assert!(d <= tol, "{name}: max abs error {d} exceeds {tol}");
}

fn vit_tiny() -> Sam1Config {
    Sam1Config {
        name: "vit_tiny".into(),
        encoder: Sam1EncoderConfig::Vit(VitConfig {
            img_size: 64,
            patch_size: 8,
            embed_dim: 32,
            depth: 3,
            num_heads: 2,
            mlp_ratio: 4,
            window_size: 3,
            global_attn_indexes: vec![1],
            out_chans: 32,
        }),
        decoder: Sam1DecoderConfig {
            transformer_dim: 32,
            transformer_heads: 2,
            transformer_mlp_dim: 64,
            iou_head_hidden_dim: 32,
            ..Default::default()
        },
    }
}

fn tinyvit_tiny() -> TinyVitConfig {
    TinyVitConfig {
        img_size: 128,
        embed_dims: vec![8, 16, 24],
        depths: vec![1, 2, 2],
        num_heads: vec![1, 2, 3],
        window_sizes: vec![7, 5, 8],
        mlp_ratio: 4,
        mbconv_expand_ratio: 4,
        local_conv_size: 3,
        patch_kernel: 3,
        out_chans: 16,
    }
}

fn vit_model(bayes: Option<HashMap<String, Tensor>>) -> Sam1Model {
    let mut ck = Checkpoint::load(fixture("sam1_tiny_vit.safetensors")).unwrap();
    let cfg = vit_tiny().with_bayes_head(bayes.is_some());
    if let Some(extra) = bayes {
        ck.tensors.extend(extra);
    }
    ck.build_sam1(Some(cfg), &Device::Cpu).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn vit_encoder_matches_reference() {
    let io = load_io("sam1_tiny_io.safetensors");
    let m = vit_model(None);
    let Sam1ImageEncoder::Vit(enc) = &m.image_encoder else { panic!("expected the ViT encoder") };
    let (blocks, emb) = enc.forward_traced(get(&io, "vit.input")).unwrap();
    for (i, b) in blocks.iter().enumerate() {
        report(&format!("vit.block{i}"), b, get(&io, &format!("vit.block{i}")), TOL);
    }
    report("vit.embedding", &emb, get(&io, "vit.embedding"), TOL);
}

#[test]
fn sam1_prompts_and_decoder_match_reference() {
    let io = load_io("sam1_tiny_io.safetensors");
    let m = vit_model(None);
    let emb = get(&io, "vit.embedding");
    let mut n = 0;
    for case in 0..8 {
        let key = |k: &str| format!("vit.case{case}.{k}");
        if !io.contains_key(&key("masks")) {
            continue;
        }
        n += 1;
        let points = io.get(&key("points")).map(|p| (p, get(&io, &key("labels"))));
        let (sparse, dense) = m.embed_prompts(points, io.get(&key("box")), io.get(&key("mask"))).unwrap();
        report(&key("sparse"), &sparse, get(&io, &key("sparse")), TOL);
        report(&key("dense"), &dense, get(&io, &key("dense")), TOL);
        let out = m.predict_masks(emb, &sparse, &dense).unwrap();
        report(&key("masks"), &out.masks, get(&io, &key("masks")), TOL);
        report(&key("iou"), &out.iou, get(&io, &key("iou")), TOL);
        let (single, iou1) = m.mask_decoder.select(&out, false).unwrap();
        assert_eq!((single.dims(), iou1.dims()), (&[1, 1, 32, 32][..], &[1, 1][..]));
        let (multi, _) = m.mask_decoder.select(&out, true).unwrap();
        assert_eq!(multi.dim(1).unwrap(), 3);
    }
    assert_eq!(n, 4);
}

#[test]
fn tinyvit_encoder_matches_reference_from_bare_pt() {
    let io = load_io("sam1_tiny_io.safetensors");
    // A bare state dict with batch-norm counters (int64), like mobile_sam.pt.
    let ck = Checkpoint::load(fixture("sam1_tiny_tinyvit.pt")).unwrap();
    assert!(ck.tensors.keys().any(|k| k.ends_with("num_batches_tracked")));
    let vb = VarBuilder::from_tensors(ck.tensors, DType::F32, &Device::Cpu);
    let enc = TinyVit::new(&tinyvit_tiny(), vb.pp("image_encoder")).unwrap();
    let (stages, emb) = enc.forward_traced(get(&io, "tinyvit.input")).unwrap();
    for (i, s) in stages.iter().enumerate() {
        // The reference's stages return tokens `B, HW, C`.
        let tokens = s.flatten_from(2).unwrap().transpose(1, 2).unwrap();
        report(&format!("tinyvit.stage{i}"), &tokens, get(&io, &format!("tinyvit.stage{i}")), TOL);
    }
    report("tinyvit.embedding", &emb, get(&io, "tinyvit.embedding"), TOL);
    assert_eq!(enc.forward(get(&io, "tinyvit.input")).unwrap().dims(), &[1, 16, 8, 8]);
}

#[test]
fn bayesian_head_on_sam1_decoder_gives_the_weibull_mean_logits() {
    let io = load_io("sam1_tiny_io.safetensors");
    let (c, d) = (4usize, 32usize);
    let p = "mask_decoder.pixel_bndl.";
    let head = bayes_head_tensors(c, d);
    let m = vit_model(Some(head.clone()));
    assert!(matches!(m.mask_decoder.pixel_head, PixelHead::Bayesian(_)));
    // The hypernetwork MLPs of the base checkpoint are then known and unused.
    let (sparse, dense) = m.embed_prompts(None, Some(get(&io, "vit.case0.box")), None).unwrap();
    let out = m.predict_masks(get(&io, "vit.embedding"), &sparse, &dense).unwrap();
    // Everything before the pixel head is SAM 1's.
    report("upscaled", &out.upscaled, get(&io, "vit.case0.upscaled"), TOL);
    report("mask_tokens", &out.mask_tokens, get(&io, "vit.case0.mask_tokens"), TOL);
    report("iou", &out.iou, get(&io, "vit.case0.iou"), TOL);

    // Hand-worked Weibull means from the reference's pixel embedding and mask tokens:
    // E z = a = relu(W_a x + b_a), E w = r = relu(W_t t + b_t) as [bg | fg] x C,
    // logit = Σ_c a_c (r_fg,c − r_bg,c) + relu(b_fg) − relu(b_bg).
    let v = |k: &str| head[&format!("{p}{k}")].flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let (wa, ba, wt, bt, bias) = (
        v("linear_add.0.weight"),
        v("linear_add.0.bias"),
        v("linear_add_w.weight"),
        v("linear_add_w.bias"),
        v("linear.bias"),
    );
    let up = get(&io, "vit.case0.upscaled").get(0).unwrap().to_vec3::<f32>().unwrap(); // C, H, W
    let tok = get(&io, "vit.case0.mask_tokens").get(0).unwrap().to_vec2::<f32>().unwrap(); // K, D
    let (hh, ww) = (up[0].len(), up[0][0].len());
    let mut want = vec![0f32; 4 * hh * ww];
    for (k, t) in tok.iter().enumerate() {
        let r: Vec<f32> =
            (0..2 * c).map(|j| (bt[j] + (0..d).map(|i| wt[j * d + i] * t[i]).sum::<f32>()).max(0.0)).collect();
        for y in 0..hh {
            for x in 0..ww {
                let mut l = bias[1].max(0.0) - bias[0].max(0.0);
                for o in 0..c {
                    let a = (ba[o] + (0..c).map(|i| wa[o * c + i] * up[i][y][x]).sum::<f32>()).max(0.0);
                    l += a * (r[c + o] - r[o]);
                }
                want[(k * hh + y) * ww + x] = l;
            }
        }
    }
    let want = Tensor::from_vec(want, (1, 4, hh, ww), &Device::Cpu).unwrap();
    let d_max = max_abs_diff(&out.masks, &want);
    eprintln!("bayes mean logits: max abs error {d_max:.3e}");
    assert!(d_max <= TOL, "Bayesian mean logits off by {d_max}");
}

/// `t[:, ::2, ::2]` of a `K, H, W` tensor (odd sides keep their last row / column).
fn every2(t: &Tensor) -> Tensor {
    let (k, h, w) = t.dims3().unwrap();
    let t = t.pad_with_zeros(1, 0, h % 2).unwrap().pad_with_zeros(2, 0, w % 2).unwrap();
    let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
    t.reshape((k, h2, 2, w2, 2)).unwrap().narrow(2, 0, 1).unwrap().narrow(4, 0, 1).unwrap().reshape((k, h2, w2)).unwrap()
}

fn rgb_of(io: &HashMap<String, Tensor>, key: &str) -> RgbImage {
    let t = get(io, key).to_dtype(DType::U8).unwrap();
    let (h, w, _) = t.dims3().unwrap();
    RgbImage::new(w, h, t.flatten_all().unwrap().to_vec1::<u8>().unwrap()).unwrap()
}

/// `Predictor` with a SAM 1 ViT model end to end against segment_anything's `SamPredictor`
/// on a 130 x 90 image: Pillow's resize to the longest side, normalisation and padding,
/// prompts through `apply_coords`, and `postprocess_masks` (to the input square, crop, to
/// the image).
#[test]
fn sam1_predictor_matches_sam_predictor_on_a_non_square_image() {
    let io = load_io("sam1_predictor_io.safetensors");
    let img = rgb_of(&io, "vitp.image");
    let (h, w) = (img.height, img.width);
    let resized = rgb_of(&io, "vitp.input_image");
    assert_eq!(sam1_preprocess_shape((h, w), 64), (resized.height, resized.width));
    let ours = resize_pil_bilinear(&img, resized.width, resized.height);
    let off = ours.data.iter().zip(&resized.data).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
    assert_eq!(off, 0, "Pillow resize differs by {off} levels");

    let mut pred = Predictor::new(vit_model(None), Device::Cpu);
    assert_eq!(pred.model.preprocessing(), Preprocessing::Sam1);
    pred.set_image(&img).unwrap();
    for case in 0..2 {
        let key = |k: &str| format!("vitp.case{case}.{k}");
        let pts = get(&io, &key("points")).to_vec2::<f32>().unwrap();
        let labels = get(&io, &key("labels")).to_vec1::<f32>().unwrap();
        let points = pts
            .iter()
            .zip(&labels)
            .map(|(p, &l)| (p[0], p[1], if l == 1.0 { PointLabel::Positive } else { PointLabel::Negative }))
            .collect();
        let bbox = io.get(&key("box")).map(|b| {
            let b = b.to_vec1::<f32>().unwrap();
            [b[0], b[1], b[2], b[3]]
        });
        let out = pred.predict(&Prompt { points, bbox, mask_input: None, multimask: case == 0 }).unwrap();
        let k = if case == 0 { 3 } else { 1 };
        assert_eq!(out.masks.dims(), &[k, h, w]);
        report(&key("iou"), &Tensor::new(out.iou.as_slice(), &Device::Cpu).unwrap(), get(&io, &key("iou")), TOL);
        report(&key("low_res"), &out.low_res_logits, &get(&io, &key("low_res")).clamp(-32f32, 32f32).unwrap(), TOL);
        report(&key("final_logits"), &every2(&out.masks), get(&io, &key("masks_sub")), TOL);
    }
}

/// The Bayesian head on a SAM 1 model gives the SAM 2 predictor's uncertainty maps: the
/// same function of the decoder's outputs, resized as the logits are.
#[test]
fn sam1_predictor_uncertainty_with_bayesian_head() {
    let io = load_io("sam1_predictor_io.safetensors");
    let head = bayes_head_tensors(4, 32);
    let img = rgb_of(&io, "vitp.image");
    let mut pred = Predictor::new(vit_model(Some(head)), Device::Cpu);
    assert!(pred.model.has_bayes_head());
    pred.set_image(&img).unwrap();
    let prompt = Prompt { bbox: Some([20.0, 10.0, 120.0, 80.0]), multimask: true, ..Default::default() };
    let m = pred.model.sam1().unwrap().clone();
    let emb = pred.sam1_embedding().unwrap().clone();
    // The box as the predictor places it (x * 64/130, y * 44/90).
    let (sx, sy) = (64.0 / 130.0, 44.0 / 90.0);
    let b = [20.0 * sx, 10.0 * sy, 120.0 * sx, 80.0 * sy].map(|v: f64| v as f32);
    let (sparse, dense) = m.embed_prompts(None, Some(&Tensor::new(&[b], &Device::Cpu).unwrap()), None).unwrap();
    let dec = m.predict_masks(&emb, &sparse, &dense).unwrap();
    for mode in [UncertaintyMode::MonteCarlo { samples: 5, seed: 3 }, UncertaintyMode::Analytic] {
        pred.mode = mode;
        let out = pred.predict(&prompt).unwrap();
        let want = pixel_uncertainty(&m.mask_decoder.pixel_head, &dec.masks, &dec.upscaled, &dec.mask_tokens, mode)
            .unwrap()
            .narrow(1, 1, 3)
            .unwrap();
        report("uncertainty_low_res", &out.uncertainty_low_res.unsqueeze(0).unwrap(), &want, 1e-6);
        assert_eq!(out.uncertainty.dims(), &[3, img.height, img.width]);
        let v = out.uncertainty.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let max = mode.max_value() + 1e-5;
        assert!(v.iter().all(|x| (0.0..=max).contains(x)), "uncertainty outside 0..{max}");
        assert!(v.iter().any(|&x| x > 1e-3), "uncertainty map is flat zero");
    }
}

/// A configuration that shapes cannot tell travels as JSON in the safetensors metadata.
#[test]
fn sam1_config_from_safetensors_metadata() {
    let ck = Checkpoint::load(fixture("sam1_tiny_vit.safetensors")).unwrap();
    assert_eq!(ck.infer_sam1_config().unwrap(), vit_tiny());
    assert!(ck.is_sam1());
    let m = ck.build_base(None, None, &Device::Cpu).unwrap();
    assert_eq!(m.name(), "vit_tiny");
}

/// `.pt`/`.pth` from bytes (the browser's path) gives the tensors of the file reader.
#[test]
fn pth_from_bytes_equals_pth_from_file() {
    let path = fixture("sam1_tiny_tinyvit.pt");
    let from_file = Checkpoint::load(&path).unwrap();
    let from_bytes = Checkpoint::from_pth_bytes(&std::fs::read(&path).unwrap(), "sam1_tiny_tinyvit.pt").unwrap();
    assert_eq!(from_file.tensors.len(), from_bytes.tensors.len());
    for (k, t) in &from_file.tensors {
        let u = &from_bytes.tensors[k];
        assert_eq!((t.dims(), t.dtype()), (u.dims(), u.dtype()), "{k}");
        if t.dtype().is_float() {
            assert_eq!(max_abs_diff(&t.to_dtype(DType::F32).unwrap(), &u.to_dtype(DType::F32).unwrap()), 0.0, "{k}");
        }
    }
    assert!(Checkpoint::from_pth_bytes(b"PK\x03\x04 not a zip", "x.pth").is_err());
}
