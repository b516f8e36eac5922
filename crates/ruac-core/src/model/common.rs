//! Small layers shared by the SAM 2.1 modules (`sam2/modeling/sam2_utils.py`).
use candle_core::{Module, Result, Tensor, D};
use candle_nn::{layer_norm, linear, LayerNorm, LayerNormConfig, Linear, VarBuilder};

/// Activation between the layers of an [`Mlp`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Relu,
    /// Exact (erf) GELU, PyTorch's `nn.GELU()` default.
    Gelu,
}

impl Activation {
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Relu => x.relu(),
            Activation::Gelu => x.gelu_erf(),
        }
    }
}

/// SAM 2's `MLP`: `num_layers` linears named `layers.{i}`, activation between them,
/// optional sigmoid on the output.
#[derive(Debug, Clone)]
pub struct Mlp {
    layers: Vec<Linear>,
    act: Activation,
    sigmoid_output: bool,
}

impl Mlp {
    pub fn new(
        vb: VarBuilder,
        input_dim: usize,
        hidden_dim: usize,
        output_dim: usize,
        num_layers: usize,
        act: Activation,
        sigmoid_output: bool,
    ) -> Result<Self> {
        let mut layers = Vec::with_capacity(num_layers);
        for i in 0..num_layers {
            let n = if i == 0 { input_dim } else { hidden_dim };
            let k = if i + 1 == num_layers { output_dim } else { hidden_dim };
            layers.push(linear(n, k, vb.pp(format!("layers.{i}")))?);
        }
        Ok(Self { layers, act, sigmoid_output })
    }
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut x = xs.clone();
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x)?;
            if i < last {
                x = self.act.apply(&x)?;
            }
        }
        if self.sigmoid_output {
            x = candle_nn::ops::sigmoid(&x)?;
        }
        Ok(x)
    }
}

/// `nn.LayerNorm(dim, eps)` over the last dimension.
pub fn layer_norm_eps(dim: usize, eps: f64, vb: VarBuilder) -> Result<LayerNorm> {
    layer_norm(dim, LayerNormConfig { eps, ..Default::default() }, vb)
}

/// SAM's `LayerNorm2d`: normalises over the channel dimension of an NCHW tensor (eps 1e-6).
#[derive(Debug, Clone)]
pub struct LayerNorm2d {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm2d {
    pub fn new(channels: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get(channels, "weight")?,
            bias: vb.get(channels, "bias")?,
            eps: 1e-6,
        })
    }
}

impl Module for LayerNorm2d {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let u = xs.mean_keepdim(1)?;
        let xs = xs.broadcast_sub(&u)?;
        let s = xs.sqr()?.mean_keepdim(1)?;
        let xs = xs.broadcast_div(&(s + self.eps)?.sqrt()?)?;
        let c = self.weight.dim(0)?;
        xs.broadcast_mul(&self.weight.reshape((1, c, 1, 1))?)?
            .broadcast_add(&self.bias.reshape((1, c, 1, 1))?)
    }
}

/// Scaled dot-product attention over `(batch, heads, tokens, head_dim)` tensors.
pub fn sdpa(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    let scale = 1.0 / (q.dim(D::Minus1)? as f64).sqrt();
    let attn = (q.contiguous()?.matmul(&k.t()?.contiguous()?)? * scale)?;
    let attn = candle_nn::ops::softmax_last_dim(&attn)?;
    attn.matmul(&v.contiguous()?)
}
