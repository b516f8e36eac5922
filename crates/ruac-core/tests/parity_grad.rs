//! Gradients of the SAM 2.1 path against PyTorch (`tools/make_grad_fixtures.py`): the micro
//! checkpoint, one click, a loss over the four low-resolution masks and the IoU predictions,
//! every parameter trained. Training relies on candle's autograd through every layer; two
//! defects were found this way (candle's max-pool backward scaling the gradient by 1/4, and a
//! host-side bicubic resize that cut `pos_embed` off the graph), so each parameter's
//! gradient norm is compared, plus whole gradients on those two paths.
mod common;
use common::*;

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor};
use ruac_core::checkpoint::{is_buffer, Checkpoint};
use ruac_core::method::losses::bce_with_logits;
use ruac_core::method::params::ParamStore;
use ruac_core::model::{Sam2Config, Sam2Model};

#[test]
fn gradients_match_pytorch_for_every_parameter() {
    let cfg = Sam2Config::micro().with_image_size(128);
    let ck = Checkpoint::load(fixture("sam2.1_micro.pt")).unwrap();
    let tensors: BTreeMap<String, Tensor> = ck
        .tensors
        .iter()
        .filter(|(k, _)| !Checkpoint::is_ignored(k, &cfg))
        .map(|(k, t)| (k.clone(), t.to_dtype(DType::F32).unwrap()))
        .collect();
    let store = ParamStore::new(tensors, |n| !is_buffer(n)).unwrap();
    let model = Sam2Model::new(&cfg, store.vb("")).unwrap();
    let io = load_io("sam2.1_micro_io.safetensors");
    let want = load_io("sam2.1_micro_grads.safetensors");
    let dev = Device::Cpu;

    // The fixture's loss, spelled out (tools/bench_train.py, `probe_loss`).
    let x = get(&io, "input");
    let feats = model.encode_image(x).unwrap();
    let coords = Tensor::from_vec(vec![60f32, 50.0], (1, 1, 2), &dev).unwrap();
    let labels = Tensor::from_vec(vec![1f32], (1, 1), &dev).unwrap();
    let (sparse, dense) = model.prompt_encoder.forward(Some((&coords, &labels)), None).unwrap();
    let pe = model.prompt_encoder.get_dense_pe().unwrap();
    let out = model.mask_decoder.predict_masks(&feats.image_embed, &pe, &sparse, &dense, (&feats.feat_s0, &feats.feat_s1)).unwrap();
    let low = 32usize;
    let (c, r) = ((low * 2 / 5) as i64, (low / 6) as i64);
    let disc: Vec<f32> = (0..low * low)
        .map(|i| {
            let (y, x) = ((i / low) as i64, (i % low) as i64);
            (((x - c) * (x - c) + (y - c) * (y - c)) <= r * r) as u8 as f32
        })
        .collect();
    let tgt = Tensor::from_vec(disc, (1, 1, low, low), &dev).unwrap();
    let loss = (bce_with_logits(&out.masks, &tgt.broadcast_as(out.masks.shape()).unwrap()).unwrap()
        + (out.iou - 0.5).unwrap().sqr().unwrap().mean_all().unwrap())
    .unwrap();
    let l = loss.to_scalar::<f32>().unwrap();
    let l_ref = get(&want, "loss").flatten_all().unwrap().to_vec1::<f32>().unwrap()[0];
    assert!((l - l_ref).abs() <= 1e-5 * l_ref.abs().max(1.0), "loss {l} vs PyTorch {l_ref}");

    let grads = loss.backward().unwrap();
    let mut checked = 0;
    for (name, var) in store.trained() {
        let g = grads.get(var.as_tensor());
        let key = format!("norm.{name}");
        let Some(norm_ref) = want.get(&key) else {
            // PyTorch gives no gradient to parameters the loss does not reach.
            assert!(g.is_none_or(|g| g.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() == 0.0), "{name}: a gradient PyTorch does not have");
            continue;
        };
        let norm_ref = norm_ref.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0];
        let g = g.unwrap_or_else(|| panic!("{name}: no gradient, PyTorch's norm is {norm_ref}"));
        let norm = g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap().sqrt();
        // Key-projection biases get gradients of ~1e-8 (softmax is invariant to them): only
        // float noise to compare there, hence the absolute floor.
        assert!((norm - norm_ref).abs() <= 1e-3 * norm_ref + 1e-6, "{name}: gradient norm {norm} vs PyTorch {norm_ref}");
        checked += 1;
    }
    let n_ref = want.keys().filter(|k| k.starts_with("norm.")).count();
    assert_eq!(checked, n_ref, "every parameter PyTorch trains has a gradient here");
    for (k, g_ref) in want.iter().filter(|(k, _)| k.starts_with("grad.")) {
        let name = &k["grad.".len()..];
        let var = store.trained().into_iter().find(|(n, _)| *n == name).unwrap().1.clone();
        let g = grads.get(var.as_tensor()).unwrap();
        let scale = g_ref.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert_close(&format!("gradient of {name}"), g, g_ref, 1e-4 * scale.max(1e-3));
    }
    eprintln!("loss {l} (PyTorch {l_ref}); {checked} gradient norms within 1e-3");
}
