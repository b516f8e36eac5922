//! The per-pixel head on the GPU, as ruac-core's `model/bayes_head.rs` and
//! `mask_decoder.rs` `PixelHead` (`ruac/adapters/sam2/bayesian_decoder.py`,
//! `ruac/core/bndl/uncertainty.py`): SAM's hypernetwork product, or RUAC's Bayesian head
//! with its mean logits and Monte Carlo or analytic uncertainty. For a plain head the
//! "uncertainty" is the entropy of its own probability, as `pixel_uncertainty` computes it.
use ruac_core::predictor::UncertaintyMode;

use crate::error::Result;
use crate::gpu::{GBuf, Gpu};
use crate::kernels::bayes::{self, HeadShape};
use crate::kernels::matmul::{matmul, Act, Bias, Matmul, View};
use crate::layers::{Lin, Out};
use crate::loader::Weights;

/// RUAC's `pixel_bndl`.
pub struct BayesianPixelHead {
    linear_add: Lin,
    linear_add_w: Lin,
    /// The small tensors packed as `[w_k (c), b_k, w_kw0, w_kw1, b_kw, b_bg, b_fg]` (see
    /// `bayes.wgsl`): `linear_k.0`, `linear_kw.0`, `linear.bias`.
    small: wgpu::Buffer,
    /// PCG32 jump-ahead table for the Monte Carlo draws.
    jump: wgpu::Buffer,
}

impl BayesianPixelHead {
    fn new(w: &Weights) -> Result<Self> {
        let (k, kw) = (w.pp("linear_k.0"), w.pp("linear_kw.0"));
        let mut small = k.host("weight")?.0;
        small.extend(k.host("bias")?.0);
        small.extend(kw.host("weight")?.0);
        small.extend(kw.host("bias")?.0);
        small.extend(w.pp("linear").host("bias")?.0);
        let gpu = w.gpu();
        Ok(Self {
            linear_add: w.lin("linear_add.0")?,
            linear_add_w: w.lin("linear_add_w")?,
            small: gpu.upload("bayes_small", &small),
            jump: gpu.upload("pcg_jump", &bayes::pcg_jump_table()),
        })
    }
}

/// The per-pixel step of the mask decoder.
pub enum PixelHead {
    /// `output_hypernetworks_mlps`: one 3-layer MLP per mask token.
    Hypernetwork(Vec<[Lin; 3]>),
    Bayesian(Box<BayesianPixelHead>),
}

/// What the head reads: the upscaled embedding (`lr*lr x c`) and the mask tokens (rows
/// `first..first + k` of the `d`-wide decoder tokens).
pub struct PixelInputs<'a> {
    pub upscaled: &'a wgpu::Buffer,
    pub tokens: &'a wgpu::Buffer,
    pub first: usize,
    pub d: usize,
    pub shape: HeadShape,
}

impl PixelHead {
    /// In the mask decoder's scope: `pixel_bndl` when `bayes`, else the `n_tokens`
    /// hypernetworks.
    pub fn new(w: &Weights, bayes: bool, n_tokens: usize) -> Result<Self> {
        if bayes {
            return Ok(PixelHead::Bayesian(Box::new(BayesianPixelHead::new(&w.pp("pixel_bndl"))?)));
        }
        let mlps = (0..n_tokens)
            .map(|i| {
                let l = w.pp(format!("output_hypernetworks_mlps.{i}.layers"));
                Ok([l.lin("0")?, l.lin("1")?, l.lin("2")?])
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(PixelHead::Hypernetwork(mlps))
    }

    /// Mask logits and uncertainty, each `k x lr*lr`.
    pub fn forward(&self, gpu: &Gpu, x: &PixelInputs, mode: UncertaintyMode) -> Result<(GBuf, GBuf)> {
        let HeadShape { hw, c, k } = x.shape;
        let masks = gpu.alloc(k * hw)?;
        let pixels_t = |buf| View::transposed(buf, 0, c);
        let uncertainty = match self {
            PixelHead::Hypernetwork(mlps) => {
                let hyper = gpu.alloc(k * c)?;
                for (i, [l0, l1, l2]) in mlps.iter().enumerate() {
                    let h = l0.forward_at(gpu, (x.tokens, (x.first + i) * x.d), 1, Act::Relu)?;
                    let h = l1.forward(gpu, &h, 1, Act::Relu)?;
                    l2.forward_into(gpu, (&h, 0), 1, Act::None, Out { buf: &hyper, off: i * c, add: false })?;
                }
                matmul(gpu, &Matmul::new(k, hw, c, View::rows(&hyper, 0, c), pixels_t(x.upscaled), View::rows(&masks, 0, hw)))?;
                // Plain SAM: the entropy of its own probability (nats, or / ln 2).
                bayes::entropy(gpu, &masks, k * hw, mode.entropy_divisor())?
            }
            PixelHead::Bayesian(b) => {
                let a = b.linear_add.forward(gpu, x.upscaled, hw, Act::Relu)?;
                let local = bayes::local(gpu, &a, &b.small, hw, c)?;
                drop(a);
                let token_params = b.linear_add_w.forward_at(gpu, (x.tokens, x.first * x.d), k, Act::None)?;
                let global = bayes::global(gpu, &token_params, &b.small, k, c, 0.0)?;
                let mut mm = Matmul::new(k, hw, c, View::rows(&global.diff, 0, c), pixels_t(&local.mean), View::rows(&masks, 0, hw));
                mm.bias = Bias::Rows(&global.bias, 0);
                matmul(gpu, &mm)?;
                match mode {
                    UncertaintyMode::MonteCarlo { samples, seed } => bayes::mc_uncertainty(gpu, &local, &global, &b.jump, x.shape, samples.max(1), seed)?,
                    UncertaintyMode::Analytic => {
                        // The reference evaluates it at factor_w = 0.02 (bayes_head.rs).
                        let g2 = bayes::global(gpu, &token_params, &b.small, k, c, 0.02)?;
                        let mean = gpu.alloc(k * hw)?;
                        let mut mm = Matmul::new(k, hw, c, View::rows(&g2.diff, 0, c), pixels_t(&local.mean), View::rows(&mean, 0, hw));
                        mm.bias = Bias::Rows(&g2.bias, 0);
                        matmul(gpu, &mm)?;
                        let var = gpu.alloc(k * hw)?;
                        matmul(gpu, &Matmul::new(k, hw, c, View::rows(&g2.var, 0, c), pixels_t(&local.var), View::rows(&var, 0, hw)))?;
                        bayes::analytic(gpu, &mean, &var, k * hw)?
                    }
                }
            }
        };
        Ok((masks, uncertainty))
    }
}
