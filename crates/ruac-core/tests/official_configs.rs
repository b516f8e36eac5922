//! The four official SAM 2.1 configurations load checkpoints with exactly the official
//! tensor names and shapes (listed by the reference code in `sam2.1_shapes.json`), and the
//! configuration is inferred from the shapes alone.
mod common;
use common::*;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use ruac_core::checkpoint::Checkpoint;
use ruac_core::model::Sam2Config;

fn shapes() -> HashMap<String, HashMap<String, Vec<usize>>> {
    serde_json::from_str(&std::fs::read_to_string(fixture("sam2.1_shapes.json")).unwrap()).unwrap()
}

#[test]
fn official_checkpoint_layouts_load_and_are_recognised() {
    for (name, layout) in shapes() {
        // Zero-filled stand-ins of the official tensors (weights cannot be downloaded here).
        let tensors: HashMap<String, Tensor> = layout
            .iter()
            .map(|(k, s)| {
                (
                    k.clone(),
                    Tensor::zeros(s.as_slice(), DType::F32, &Device::Cpu).unwrap(),
                )
            })
            .collect();
        let ck = Checkpoint {
            tensors,
            source: name.clone(),
            metadata: Default::default(),
        };
        let cfg = ck.infer_config().unwrap();
        assert_eq!(cfg, Sam2Config::by_name(&name).unwrap(), "{name}");
        // Building at 1024 px checks every name and shape; a smaller input keeps it quick.
        let model = ck.build_model(Some(cfg.with_image_size(256)), &Device::Cpu);
        assert!(model.is_ok(), "{name}: {}", model.err().unwrap());
    }
}
