//! Fresh parameters for a configuration, by the checkpoint's own names, for training from
//! scratch (issue #3's base SAM 2.1-micro) and for the heads a base checkpoint lacks.
//!
//! The rules follow PyTorch's defaults for the module types SAM 2.1 uses (`nn.Linear`,
//! `nn.Conv2d`, `nn.ConvTranspose2d`: uniform `±1/√fan_in`; norms: ones and zeros;
//! `nn.Embedding` and the prompt encoder's Gaussian matrix: standard normal), except the
//! position embeddings and `no_mem_embed`, which SAM 2 starts near zero.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

use super::config::Sam2Config;
use super::Sam2Model;
use crate::rng::Pcg32;
use crate::Result;

/// Records every tensor a model asks for, answering with zeros.
struct ShapeRecorder(Arc<Mutex<BTreeMap<String, Vec<usize>>>>);

impl SimpleBackend for ShapeRecorder {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        if let Ok(mut m) = self.0.lock() {
            m.insert(name.to_string(), s.dims().to_vec());
        }
        Tensor::zeros(s, dtype, dev)
    }
    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        candle_core::bail!("tensor {name}: shape needed")
    }
    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}

/// Every tensor a module built by `build` asks its builder for, with its shape.
pub fn shapes_of(build: impl Fn(VarBuilder) -> candle_core::Result<()>) -> Result<BTreeMap<String, Vec<usize>>> {
    let rec = Arc::new(Mutex::new(BTreeMap::new()));
    let vb = VarBuilder::from_backend(Box::new(ShapeRecorder(rec.clone())), DType::F32, Device::Cpu);
    build(vb)?;
    let m = rec.lock().map_err(|_| crate::Error::Invalid("shape recorder poisoned".into()))?;
    Ok(m.clone())
}

/// Every parameter name of the model for `cfg`, with its shape.
pub fn parameter_shapes(cfg: &Sam2Config) -> Result<BTreeMap<String, Vec<usize>>> {
    shapes_of(|vb| Sam2Model::new(cfg, vb).map(|_| ()))
}

fn normal(rng: &mut Pcg32) -> f32 {
    // Box-Muller; 1 - u keeps the log finite.
    let (u1, u2) = (1.0 - rng.uniform(), rng.uniform());
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// The initial value of one named parameter.
pub fn init_tensor(name: &str, dims: &[usize], rng: &mut Pcg32) -> Result<Tensor> {
    let n: usize = dims.iter().product();
    let leaf = name.rsplit('.').next().unwrap_or(name);
    let values: Vec<f32> = if name.ends_with("pixel_bndl.linear_k.0.bias") || name.ends_with("pixel_bndl.linear_kw.0.bias") {
        // Weibull shapes start at κ = softplus(10) ≈ 10 (coefficient of variation ≈ 0.12): a
        // fresh head on a trained base first learns its mean, then how uncertain to be. At
        // PyTorch's default init κ ≈ 0.7, the samples were so noisy that a short run
        // collapsed to "no object".
        vec![10.0; n]
    } else if name.ends_with("pos_embed")
        || name.ends_with("pos_embed_window")
        || name == "no_mem_embed"
    {
        (0..n).map(|_| 0.02 * normal(rng)).collect()
    } else if name.contains("positional_encoding_gaussian_matrix") || is_embedding(name, dims) {
        (0..n).map(|_| normal(rng)).collect()
    } else if dims.len() == 1 {
        // Norm weights are ones; every bias starts at zero.
        vec![if leaf == "weight" { 1.0 } else { 0.0 }; n]
    } else {
        // nn.Linear (out, in); nn.Conv2d (out, in, kh, kw); nn.ConvTranspose2d (in, out, kh, kw):
        // PyTorch's fan_in is dims[1] * receptive field in all three cases.
        let fan_in = dims[1..].iter().product::<usize>().max(1) as f32;
        let bound = 1.0 / fan_in.sqrt();
        (0..n)
            .map(|_| bound * (2.0 * rng.uniform() - 1.0))
            .collect()
    };
    Ok(Tensor::from_vec(values, dims, &Device::Cpu)?)
}

/// `nn.Embedding` weights and learned tokens of the prompt encoder and mask decoder.
fn is_embedding(name: &str, dims: &[usize]) -> bool {
    dims.len() == 2
        && (name.contains("point_embeddings")
            || name.contains("not_a_point_embed")
            || name.contains("no_mask_embed")
            || name.contains("iou_token")
            || name.contains("mask_tokens")
            || name.contains("obj_score_token"))
}

/// Fresh parameters for every tensor of `cfg`'s model, seeded.
pub fn init_params(cfg: &Sam2Config, seed: u64) -> Result<BTreeMap<String, Tensor>> {
    let mut rng = Pcg32::new(seed);
    parameter_shapes(cfg)?
        .into_iter()
        .map(|(name, dims)| {
            let t = init_tensor(&name, &dims, &mut rng)?;
            Ok((name, t))
        })
        .collect()
}

/// [`init_params`] plus the tensors of `official` (an official checkpoint's names and
/// shapes, e.g. the video-memory modules the single-image model ignores) that the model does
/// not ask for, so that a file has the official layout and size: seeded random stand-ins
/// for released weights in benchmarks and memory checks. A name the model asks for with
/// another shape than `official` lists is an error.
pub fn init_official_layout(
    cfg: &Sam2Config,
    official: &BTreeMap<String, Vec<usize>>,
    seed: u64,
) -> Result<BTreeMap<String, Tensor>> {
    let mut params = init_params(cfg, seed)?;
    let mut rng = Pcg32::new(seed ^ 0x5EED);
    for (name, dims) in official {
        match params.get(name) {
            Some(t) if t.dims() != dims.as_slice() => {
                return Err(crate::Error::Invalid(format!(
                    "{name}: the model has shape {:?}, the official layout {dims:?}",
                    t.dims()
                )))
            }
            Some(_) => {}
            None => {
                params.insert(name.clone(), init_tensor(name, dims, &mut rng)?);
            }
        }
    }
    Ok(params)
}
