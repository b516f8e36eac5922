//! The official SAM 1 family checkpoints' tensor names and shapes (listed by the reference
//! constructors in `sam1_shapes.json`: `sam_vit_{b,l,h}`, MobileSAM's `mobile_sam.pt`,
//! `lite_medsam.pth`) are exactly what `model::sam1` asks for, the configuration is inferred
//! from them, and the loader accepts them. No weights are allocated: the stand-in tensors
//! are broadcast zeros.
mod common;
use common::*;

use std::collections::{BTreeMap, HashMap};

use candle_core::{DType, Device, Tensor};
use ruac_core::checkpoint::{sam1_is_ignored, Checkpoint};
use ruac_core::model::sam1::{parameter_shapes, Sam1Config};

fn shapes() -> BTreeMap<String, BTreeMap<String, Vec<usize>>> {
    serde_json::from_str(&std::fs::read_to_string(fixture("sam1_shapes.json")).unwrap()).unwrap()
}

#[test]
fn official_sam1_layouts_are_exactly_our_parameters() {
    let all = shapes();
    assert_eq!(all.keys().cloned().collect::<Vec<_>>(), ["lite_medsam", "mobile_sam", "vit_b", "vit_h", "vit_l"]);
    for (name, layout) in &all {
        let cfg = Sam1Config::by_name(name).unwrap();
        let ours = parameter_shapes(&cfg).unwrap();
        let official: BTreeMap<String, Vec<usize>> =
            layout.iter().filter(|(k, _)| !sam1_is_ignored(k, &cfg)).map(|(k, v)| (k.clone(), v.clone())).collect();
        let missing: Vec<_> = official.keys().filter(|k| !ours.contains_key(*k)).collect();
        let extra: Vec<_> = ours.keys().filter(|k| !official.contains_key(*k)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{name}: not asked for {missing:?}; not in the checkpoint {extra:?}"
        );
        for (k, s) in &official {
            assert_eq!(&ours[k], s, "{name}: {k}");
        }
    }
}

#[test]
fn official_sam1_layouts_load_and_are_recognised() {
    for (name, layout) in shapes() {
        let tensors: HashMap<String, Tensor> = layout
            .iter()
            .map(|(k, s)| {
                (k.clone(), Tensor::zeros((), DType::F32, &Device::Cpu).unwrap().broadcast_as(s.as_slice()).unwrap())
            })
            .collect();
        let ck = Checkpoint { tensors, source: name.clone(), metadata: Default::default() };
        let cfg = ck.infer_sam1_config().unwrap();
        assert_eq!(cfg, Sam1Config::by_name(&name).unwrap(), "{name}");
        let model = ck.build_sam1(Some(cfg), &Device::Cpu);
        assert!(model.is_ok(), "{name}: {}", model.err().unwrap());
    }
}

#[test]
fn a_missing_or_misshaped_tensor_is_named() {
    let layout = &shapes()["lite_medsam"];
    let mut tensors: HashMap<String, Tensor> = layout
        .iter()
        .map(|(k, s)| (k.clone(), Tensor::zeros(s.as_slice(), DType::F32, &Device::Cpu).unwrap()))
        .collect();
    tensors.remove("mask_decoder.iou_token.weight");
    tensors.insert(
        "image_encoder.neck.0.weight".into(),
        Tensor::zeros((256, 320, 3, 3), DType::F32, &Device::Cpu).unwrap(),
    );
    tensors.insert("mask_decoder.surprise".into(), Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap());
    let ck = Checkpoint { tensors, source: "edited".into(), metadata: Default::default() };
    let err = ck.build_sam1(None, &Device::Cpu).expect_err("must fail").to_string();
    for part in ["mask_decoder.iou_token.weight", "image_encoder.neck.0.weight", "mask_decoder.surprise"] {
        assert!(err.contains(part), "{err}");
    }
}
