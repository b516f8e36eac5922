//! `model.head_init = "hypernetwork"`: starts RUAC's Bayesian pixel head from the base's own
//! hypernetwork instead of from scratch (a deviation from the release, which initialises the
//! head fresh; it matters when only a few hundred steps are affordable, as for LiteMedSAM on
//! a 2-core CPU).
//!
//! SAM's logit is `x · h_k(t_k)`, with `x` the upscaled pixel embedding and `h_k` the k-th
//! hypernetwork MLP of mask token `t_k`. The head's mean logit is
//! `relu(A x + a) · (relu(B t + b)_fg − relu(B t + b)_bg) + bias` (`model::bayes_head`). With
//! `A = I`, `a = 0` (`x` is a GELU output, ≥ −0.17) and `B t + b ≈ [−h(t), h(t)]`, the
//! difference `relu(h) − relu(−h)` is `h`: the head starts at (nearly) the base's masks. `B`,
//! `b` are a ridge regression of `[−h_k(t_k), h_k(t_k)]` on `t_k` over the mask tokens the base
//! produces for box prompts on training samples. The Weibull shapes keep their initial values.
use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use candle_core::{DType, Device, Module, Tensor};
use ruac_core::image_io::Preprocessing;
use ruac_core::method::prompts::{sample_initial, InitialPrompt, PromptConfig};
use ruac_core::model::mask_decoder::PixelHead;
use ruac_core::predictor::BaseModel;

use super::data::Stream;

/// How well the fit reproduces the base.
#[derive(Debug, Clone, Copy)]
pub struct FitReport {
    /// Mask tokens regressed.
    pub tokens: usize,
    /// R² of `B t + b` against the hypernetwork outputs.
    pub r2: f64,
    /// Share of low-resolution pixels (token 0, the single mask) where the fitted head's mean
    /// logit has the base's sign.
    pub sign_agreement: f64,
}

/// Solves `(XᵀX + λ D) W = XᵀY` for a `n x p` design `x` (row-major) and `n x q` targets `y`,
/// with `D` the identity except on the last (intercept) column, by Cholesky in f64.
pub fn ridge(x: &[f64], y: &[f64], n: usize, p: usize, q: usize, lambda: f64) -> Result<Vec<f64>> {
    if x.len() != n * p || y.len() != n * q {
        bail!("ridge: {} design values for {n}x{p}, {} targets for {n}x{q}", x.len(), y.len());
    }
    let mut a = vec![0f64; p * p];
    let mut b = vec![0f64; p * q];
    for r in 0..n {
        let (xr, yr) = (&x[r * p..][..p], &y[r * q..][..q]);
        for i in 0..p {
            for j in 0..p {
                a[i * p + j] += xr[i] * xr[j];
            }
            for j in 0..q {
                b[i * q + j] += xr[i] * yr[j];
            }
        }
    }
    for i in 0..p - 1 {
        a[i * p + i] += lambda;
    }
    // A = L Lᵀ
    let mut l = vec![0f64; p * p];
    for i in 0..p {
        for j in 0..=i {
            let s: f64 = a[i * p + j] - (0..j).map(|k| l[i * p + k] * l[j * p + k]).sum::<f64>();
            if i == j {
                if s <= 0.0 {
                    bail!("ridge: the normal equations are not positive definite (pivot {i}: {s})");
                }
                l[i * p + i] = s.sqrt();
            } else {
                l[i * p + j] = s / l[j * p + j];
            }
        }
    }
    let mut w = vec![0f64; p * q];
    for c in 0..q {
        let mut z = vec![0f64; p];
        for i in 0..p {
            z[i] = (b[i * q + c] - (0..i).map(|k| l[i * p + k] * z[k]).sum::<f64>()) / l[i * p + i];
        }
        for i in (0..p).rev() {
            w[i * q + c] = (z[i] - (i + 1..p).map(|k| l[k * p + i] * w[k * q + c]).sum::<f64>()) / l[i * p + i];
        }
    }
    Ok(w)
}

/// What the head is fitted on: `plain`'s hypernetwork, on `samples` training samples of
/// `stream` (indices far above any step's), prompted by boxes drawn as `prompts` says.
pub struct HeadFit<'a> {
    pub plain: &'a BaseModel,
    pub stream: &'a Stream,
    pub prep: Preprocessing,
    pub prompts: &'a PromptConfig,
    pub samples: usize,
    pub seed: u64,
}

/// Fits the RUAC head found in `tensors` (under `mask_decoder.` or `sam_mask_decoder.`) to
/// the hypernetwork of `f.plain` and writes the head's tensors into `tensors`.
pub fn fit(f: &HeadFit<'_>, tensors: &mut BTreeMap<String, Tensor>) -> Result<FitReport> {
    let HeadFit { plain, stream, prep, prompts, samples, seed } = *f;
    let PixelHead::Hypernetwork(mlps) = plain.pixel_head() else {
        bail!("model.head_init = \"hypernetwork\" needs a base with SAM's hypernetwork MLPs");
    };
    let key = tensors
        .keys()
        .find(|k| k.ends_with("pixel_bndl.linear_add_w.weight"))
        .cloned()
        .ok_or_else(|| anyhow!("model.head_init = \"hypernetwork\" needs model.bayes_head = true"))?;
    let prefix = key.trim_end_matches("linear_add_w.weight").to_string();
    let s = plain.image_size();
    let mut box_only = *prompts;
    box_only.prob_point = 0.0;
    box_only.prob_box_given_not_point = 1.0;
    box_only.box_noise = 0.0;
    let (mut xs, mut ys, mut cases) = (vec![], vec![], vec![]);
    let (mut d, mut c) = (0, 0);
    for i in 0..samples {
        let index = (1u64 << 40) + i as u64;
        let mut rng = ruac_core::method::train::sample_rng(seed, index);
        let (img, masks, _) = stream.sample(index, &mut rng)?;
        let x = Tensor::from_vec(prep.apply(&img, s), (1, 3, s, s), &Device::Cpu)?;
        let enc = plain.encode(&x)?;
        for m in &masks {
            let Some(InitialPrompt::Box([x0, y0, x1, y1])) = sample_initial(m, s, s, &box_only, &mut rng) else {
                continue;
            };
            let out = plain.decode(&enc, &[(x0, y0, 2.0), (x1, y1, 3.0)], None)?;
            let tokens = out.mask_tokens.squeeze(0)?; // K, D
            d = tokens.dim(1)?;
            for (k, mlp) in mlps.iter().enumerate() {
                let t = tokens.narrow(0, k, 1)?;
                let h = mlp.forward(&t)?.flatten_all()?.to_vec1::<f32>()?;
                c = h.len();
                xs.extend(t.flatten_all()?.to_vec1::<f32>()?.iter().map(|&v| v as f64));
                xs.push(1.0);
                ys.extend(h.iter().map(|&v| -v as f64));
                ys.extend(h.iter().map(|&v| v as f64));
            }
            cases.push((out.upscaled, out.mask_tokens, out.masks));
        }
    }
    let n = xs.len() / (d + 1).max(1);
    if n == 0 {
        bail!("model.head_init: no object in {samples} samples to fit the head on");
    }
    let (p, q) = (d + 1, 2 * c);
    // λ relative to the tokens' scale, so that the regression is well posed with fewer tokens
    // than dimensions.
    let trace: f64 = (0..n).map(|r| (0..d).map(|i| xs[r * p + i] * xs[r * p + i]).sum::<f64>()).sum();
    let w = ridge(&xs, &ys, n, p, q, 1e-3 * trace / d as f64)?;
    let mean: Vec<f64> = (0..q).map(|j| (0..n).map(|r| ys[r * q + j]).sum::<f64>() / n as f64).collect();
    let (mut ss_res, mut ss_tot) = (0f64, 0f64);
    for r in 0..n {
        for j in 0..q {
            let pred: f64 = (0..p).map(|i| xs[r * p + i] * w[i * q + j]).sum();
            ss_res += (ys[r * q + j] - pred).powi(2);
            ss_tot += (ys[r * q + j] - mean[j]).powi(2);
        }
    }
    // linear_add_w: weight `q x d` (out x in), bias `q`.
    let wt: Vec<f32> = (0..q).flat_map(|j| (0..d).map(move |i| (i, j))).map(|(i, j)| w[i * q + j] as f32).collect();
    let bias: Vec<f32> = (0..q).map(|j| w[d * q + j] as f32).collect();
    tensors.insert(format!("{prefix}linear_add_w.weight"), Tensor::from_vec(wt, (q, d), &Device::Cpu)?);
    tensors.insert(format!("{prefix}linear_add_w.bias"), Tensor::from_vec(bias, q, &Device::Cpu)?);
    tensors.insert(format!("{prefix}linear_add.0.weight"), Tensor::eye(c, DType::F32, &Device::Cpu)?);
    tensors.insert(format!("{prefix}linear_add.0.bias"), Tensor::zeros(c, DType::F32, &Device::Cpu)?);
    tensors.insert(format!("{prefix}linear.bias"), Tensor::zeros(2, DType::F32, &Device::Cpu)?);

    // The fitted head's mean logits against the base's, on the same decodes.
    let sub: BTreeMap<String, Tensor> = tensors
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|r| (format!("pixel_bndl.{r}"), v.clone())))
        .collect();
    let head = ruac_core::model::bayes_head::BayesianPixelHead::new(
        d,
        c,
        mlps.len(),
        candle_nn::VarBuilder::from_tensors(sub.into_iter().collect(), DType::F32, &Device::Cpu),
    )?;
    let (mut agree, mut total) = (0usize, 0usize);
    for (up, tok, base) in &cases {
        let ours = head.mean_logits(up, tok)?.narrow(1, 0, 1)?.flatten_all()?.to_vec1::<f32>()?;
        let theirs = base.narrow(1, 0, 1)?.flatten_all()?.to_vec1::<f32>()?;
        agree += ours.iter().zip(&theirs).filter(|(a, b)| (**a > 0.0) == (**b > 0.0)).count();
        total += ours.len();
    }
    Ok(FitReport { tokens: n, r2: 1.0 - ss_res / ss_tot.max(1e-12), sign_agreement: agree as f64 / total.max(1) as f64 })
}

#[cfg(test)]
mod tests {
    use super::ridge;

    /// A hand-worked case: y = 2 x + 1 exactly, no penalty, recovers slope and intercept; and
    /// with a penalty λ the slope is shrunk to Σxy'/(Σx'² + λ) for centred data.
    #[test]
    fn ridge_recovers_a_line_and_shrinks_with_lambda() {
        let xs = [-1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 2.0, 1.0];
        let ys: Vec<f64> = [-1.0, 0.0, 1.0, 2.0].iter().map(|x| 2.0 * x + 1.0).collect();
        let w = ridge(&xs, &ys, 4, 2, 1, 0.0).unwrap();
        assert!((w[0] - 2.0).abs() < 1e-12 && (w[1] - 1.0).abs() < 1e-12, "{w:?}");
        // x = -1..2 has mean 0.5: with an unpenalised intercept the slope is
        // Σ(x-x̄)(y-ȳ) / (Σ(x-x̄)² + λ) = 2·5 / (5 + 5) = 1.
        let w = ridge(&xs, &ys, 4, 2, 1, 5.0).unwrap();
        assert!((w[0] - 1.0).abs() < 1e-12, "{w:?}");
    }
}
