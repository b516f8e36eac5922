//! RUAC's Bayesian pixel head (the authors' `BayesianMaskDecoder.pixel_bndl`, a BNDL layer,
//! `ruac/adapters/sam2/bayesian_decoder.py`; BNDL: Hu et al., ICLR 2025). It replaces SAM's
//! hypernetwork dot product with a product of two non-negative Weibull factors:
//!
//! * local (per pixel): `a = relu(linear_add(x))`, shape `κ_f = softplus(linear_k(a))`,
//!   scale `λ_f = a / Γ(1 + 1/κ_f)`, so that the Weibull mean is `a`;
//! * global (per mask token): `r = relu(linear_add_w(token))` viewed as `2 x C` (background,
//!   foreground), `κ_w = softplus(linear_kw(r over the class axis))`, `λ_w = r / Γ(1 + 1/κ_w)`;
//! * logit `ℓ_k(x) = Σ_c z_c(x) (w_k,fg,c − w_k,bg,c) + relu(b_fg) − relu(b_bg)`.
//!
//! The BNDL class itself (HongyouZhou/BNDL@545fcb24) was not readable here; the tensor names
//! under `pixel_bndl.` and the fg−bg logit follow the original BNDL layer and every
//! constraint visible in the RUAC code (see ARCHITECTURE.md, "Reference differences").
use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::VarBuilder;

use super::common::{linear, Linear};
use super::ops::{binary_entropy, lgamma, softplus};
use crate::rng::Pcg32;

/// Probability clamp before the entropy (`ruac/core/bndl/uncertainty.py`).
pub const PROB_CLAMP: f64 = 1e-4;

/// Weibull parameters of both factors for one batch of pixels and mask tokens.
#[derive(Debug, Clone)]
pub struct WeibullParams {
    /// Pixel-feature scale `λ_f`, `B, H, W, C`.
    pub lambda_f: Tensor,
    /// `1/κ_f`, `B, H, W, 1` (one shape per pixel, shared by the channels).
    pub inv_k_f: Tensor,
    /// Mask-token weight scale `λ_w`, `B, K, 2, C`.
    pub lambda_w: Tensor,
    /// `1/κ_w`, `B, K, 1, C` (shared by the two classes).
    pub inv_k_w: Tensor,
    /// `relu(b_fg − f_w) − relu(b_bg − f_w)`, a scalar tensor.
    pub bias: Tensor,
}

#[derive(Debug, Clone)]
pub struct BayesianPixelHead {
    linear_add: Linear,
    linear_k: Linear,
    linear_add_w: Linear,
    linear_kw: Linear,
    /// Decision bias of the original BNDL layer, `[bg, fg]`.
    bias: Tensor,
    channels: usize,
}

impl BayesianPixelHead {
    /// `vb` is the mask decoder's builder; the head lives under `pixel_bndl`.
    pub fn new(
        token_dim: usize,
        channels: usize,
        _num_tokens: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let vb = vb.pp("pixel_bndl");
        Ok(Self {
            linear_add: linear(channels, channels, vb.pp("linear_add.0"))?,
            linear_k: linear(channels, 1, vb.pp("linear_k.0"))?,
            linear_add_w: linear(token_dim, 2 * channels, vb.pp("linear_add_w"))?,
            linear_kw: linear(2, 1, vb.pp("linear_kw.0"))?,
            bias: vb.pp("linear").get(2, "bias")?,
            channels,
        })
    }

    /// Weibull parameters with sparsity thresholds `factor_z`, `factor_w` (0 at inference).
    /// `pixel` is the upscaled embedding `B, C, H, W`; `tokens` the mask tokens `B, K, D`.
    pub fn params(
        &self,
        pixel: &Tensor,
        tokens: &Tensor,
        factor_z: f64,
        factor_w: f64,
    ) -> Result<WeibullParams> {
        let x = pixel.permute((0, 2, 3, 1))?;
        let a = (self.linear_add.forward(&x)? - factor_z)?.relu()?;
        let k_f = softplus(&self.linear_k.forward(&a)?)?;
        let inv_k_f = k_f.recip()?;
        let lambda_f = a.broadcast_div(&lgamma(&(&inv_k_f + 1.0)?)?.exp()?)?;

        let (b, k, _) = tokens.dims3()?;
        let c = self.channels;
        let r = self.linear_add_w.forward(tokens)?.reshape((b, k, 2, c))?;
        let r = (r - factor_w)?.relu()?;
        // Shape over the class axis: (B,K,2,C) -> (B,K,C,2) -> Linear(2,1) -> (B,K,1,C).
        // The transposed view is made contiguous: candle 0.11's Linear gave wrong values on
        // it (caught by the parity test).
        let k_w = softplus(&self.linear_kw.forward(&r.transpose(2, 3)?.contiguous()?)?)?
            .transpose(2, 3)?
            .contiguous()?;
        let inv_k_w = k_w.recip()?;
        let lambda_w = r.broadcast_div(&lgamma(&(&inv_k_w + 1.0)?)?.exp()?)?;

        let bias = (&self.bias - factor_w)?.relu()?;
        let bias = (bias.get(1)? - bias.get(0)?)?;
        Ok(WeibullParams {
            lambda_f,
            inv_k_f,
            lambda_w,
            inv_k_w,
            bias,
        })
    }

    /// Logits `B, K, H, W` from pixel features `z` (`B, H, W, C`) and weights `w` (`B, K, 2, C`).
    pub fn logits_from(z: &Tensor, w: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let (b, h, wd, c) = z.dims4()?;
        let k = w.dim(1)?;
        let diff = (w.narrow(2, 1, 1)? - w.narrow(2, 0, 1)?)?.squeeze(2)?; // B, K, C
        let l = z
            .reshape((b, h * wd, c))?
            .matmul(&diff.transpose(1, 2)?.contiguous()?)?; // B, HW, K
        l.broadcast_add(bias)?
            .transpose(1, 2)?
            .reshape((b, k, h, wd))
    }

    /// Weibull means `λ Γ(1 + 1/κ)` of both factors.
    pub fn means(p: &WeibullParams) -> Result<(Tensor, Tensor)> {
        let z = p
            .lambda_f
            .broadcast_mul(&lgamma(&(&p.inv_k_f + 1.0)?)?.exp()?)?;
        let w = p
            .lambda_w
            .broadcast_mul(&lgamma(&(&p.inv_k_w + 1.0)?)?.exp()?)?;
        Ok((z, w))
    }

    /// Segmentation logits from the analytic Weibull means (the released inference mode).
    pub fn mean_logits(&self, pixel: &Tensor, tokens: &Tensor) -> Result<Tensor> {
        let p = self.params(pixel, tokens, 0.0, 0.0)?;
        let (z, w) = Self::means(&p)?;
        Self::logits_from(&z, &w, &p.bias)
    }

    /// Reparameterised Weibull sample `λ (−ln(1 − u))^{1/κ}` for uniforms `u` shaped like `λ`.
    pub fn weibull_sample(lambda: &Tensor, inv_k: &Tensor, u: &Tensor) -> Result<Tensor> {
        // e = −ln(1 − u) is floored too: a draw of exactly u = 0 would give ln e = −∞ and a
        // NaN gradient for 1/κ (0 · ∞) in training.
        let e = u
            .affine(-1.0, 1.0)?
            .clamp(1e-10, 1.0)?
            .log()?
            .neg()?
            .clamp(1e-12, f64::INFINITY)?;
        lambda.mul(&e.log()?.broadcast_mul(inv_k)?.exp()?)
    }

    /// Monte Carlo uncertainty with the given uniform draws, one `(u_f, u_w)` pair per sample
    /// (`u_f` shaped `B,H,W,C`, `u_w` shaped `B,K,2,C`): both factors are redrawn each sample,
    /// probabilities are averaged, and the binary entropy of the mean is returned in nats
    /// (`0..=ln 2`), `B, K, H, W`, with the mean probability.
    pub fn mc_uncertainty_with(
        &self,
        p: &WeibullParams,
        draws: &[(Tensor, Tensor)],
    ) -> Result<(Tensor, Tensor)> {
        if draws.is_empty() {
            candle_core::bail!("Monte Carlo uncertainty needs at least one sample");
        }
        let mut acc: Option<Tensor> = None;
        for (u_f, u_w) in draws {
            let z = Self::weibull_sample(&p.lambda_f, &p.inv_k_f, u_f)?;
            let w = Self::weibull_sample(&p.lambda_w, &p.inv_k_w, u_w)?;
            let prob = candle_nn::ops::sigmoid(&Self::logits_from(&z, &w, &p.bias)?)?;
            acc = Some(match acc {
                None => prob,
                Some(a) => (a + prob)?,
            });
        }
        let mean = (acc.expect("at least one draw") / draws.len() as f64)?;
        Ok((binary_entropy(&mean, PROB_CLAMP)?, mean))
    }

    /// Seeded Monte Carlo uncertainty with `samples` draws (the release uses 20).
    pub fn mc_uncertainty(
        &self,
        pixel: &Tensor,
        tokens: &Tensor,
        samples: usize,
        seed: u64,
    ) -> Result<(Tensor, Tensor)> {
        let p = self.params(pixel, tokens, 0.0, 0.0)?;
        let mut rng = Pcg32::new(seed);
        let dev = pixel.device();
        let mut draws = Vec::with_capacity(samples);
        for _ in 0..samples {
            let sf = p.lambda_f.shape().clone();
            let sw = p.lambda_w.shape().clone();
            let u_f = Tensor::from_vec(rng.uniforms(sf.elem_count()), sf, dev)?
                .to_dtype(p.lambda_f.dtype())?;
            let u_w = Tensor::from_vec(rng.uniforms(sw.elem_count()), sw, dev)?
                .to_dtype(p.lambda_w.dtype())?;
            draws.push((u_f, u_w));
        }
        self.mc_uncertainty_with(&p, &draws)
    }

    /// Weibull variance `λ² (Γ(1+2/κ) − Γ(1+1/κ)²)`, in the log-space form of the reference
    /// (`ruac/core/bndl/uncertainty.py`): `λ² exp(lgΓ(1+2/κ) + ln(1 − exp(min(2lgΓ(1+1/κ) − lgΓ(1+2/κ), −1e-7))))`.
    pub fn weibull_variance(lambda: &Tensor, inv_k: &Tensor) -> Result<Tensor> {
        let l1 = lgamma(&(inv_k + 1.0)?)?;
        let l2 = lgamma(&((inv_k * 2.0)? + 1.0)?)?;
        let d = ((l1 * 2.0)? - &l2)?.clamp(f64::NEG_INFINITY, -1e-7)?;
        let ld = (l2 + d.exp()?.affine(-1.0, 1.0)?.log()?)?;
        lambda.sqr()?.broadcast_mul(&ld.exp()?)
    }

    /// Analytic uncertainty (`pixel_weibull_to_entropy_uncertainty`): logit variance from the
    /// product of the two Weibull variances, MacKay's probit correction, binary entropy / ln 2.
    /// Returns `B, K, H, W` in `[0, 1]`. The reference evaluates it with its own BNDL call at
    /// `factor_w = 0.02` (the fallback of `default_factor_w`), which is the default here.
    pub fn analytic_uncertainty(
        &self,
        pixel: &Tensor,
        tokens: &Tensor,
        factor_z: f64,
        factor_w: f64,
    ) -> Result<Tensor> {
        let p = self.params(pixel, tokens, factor_z, factor_w)?;
        let (z, w) = Self::means(&p)?;
        let mu = Self::logits_from(&z, &w, &p.bias)?; // B,K,H,W
        let var_z = Self::weibull_variance(&p.lambda_f, &p.inv_k_f)?; // B,H,W,C
        let var_w = Self::weibull_variance(&p.lambda_w, &p.inv_k_w)?
            .mean(2)?
            .clamp(1e-8, f64::INFINITY)?; // B,K,C
        let (b, h, wd, c) = var_z.dims4()?;
        let k = var_w.dim(1)?;
        let v = var_z
            .reshape((b, h * wd, c))?
            .matmul(&var_w.transpose(1, 2)?.contiguous()?)?; // B,HW,K
        let v = v.transpose(1, 2)?.reshape((b, k, h, wd))?;
        let kappa = ((v * (std::f64::consts::PI / 8.0))? + (1.0 + 1e-8))?
            .sqrt()?
            .recip()?;
        let prob = candle_nn::ops::sigmoid(&(kappa * mu)?)?;
        binary_entropy(&prob, PROB_CLAMP)? / std::f64::consts::LN_2
    }

    /// Closed-form `KL(Weibull(κ, λ) ‖ Gamma(α, rate β))` summed over the last axis and
    /// averaged over the rest, as `KL_GamWei` in `ruac/core/losses/bndl.py` (γ = 0.5772, inputs
    /// clamped to `1/κ ∈ [1e-10, 1e3]`, `λ ∈ [1e-10, 1e6]`, result clamped to ±1000).
    pub fn kl_weibull_gamma(
        lambda: &Tensor,
        inv_k: &Tensor,
        alpha: f64,
        beta: f64,
    ) -> Result<Tensor> {
        const EULER: f64 = 0.5772;
        let inv_k = inv_k.clamp(1e-10, 1e3)?.broadcast_as(lambda.shape())?;
        let lam = lambda.clamp(1e-10, 1e6)?;
        let gamma_term = lgamma(&(&inv_k + 1.0)?)?.exp()?;
        let lgamma_alpha = lgamma_f64(alpha);
        // KL = γα/κ − α ln λ + ln κ + βλΓ(1+1/κ) − γ − 1 − α ln β + ln Γ(α), with ln κ = −ln(1/κ).
        let kl = ((((&inv_k * (EULER * alpha))? - (lam.log()? * alpha)?)? - inv_k.log()?)?
            + ((lam * gamma_term)? * beta)?)?;
        let kl = (kl + (-EULER - 1.0 - alpha * beta.ln() + lgamma_alpha))?;
        let per = kl.sum(D::Minus1)?;
        per.mean_all()?.clamp(-1000.0, 1000.0)
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    pub fn dtype(&self) -> DType {
        self.bias.dtype()
    }
}

/// Scalar `ln Γ(x)` (same shifted Stirling series as [`lgamma`]).
pub fn lgamma_f64(x: f64) -> f64 {
    let prod: f64 = (0..6).map(|k| x + k as f64).product();
    let z = x + 6.0;
    let zr = 1.0 / z;
    let zr2 = zr * zr;
    let series = zr * (1.0 / 12.0 - zr2 * (1.0 / 360.0 - zr2 * (1.0 / 1260.0 - zr2 / 1680.0)));
    (z - 0.5) * z.ln() - z + 0.5 * (2.0 * std::f64::consts::PI).ln() + series - prod.ln()
}
