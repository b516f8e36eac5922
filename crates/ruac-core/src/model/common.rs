//! Small layers shared by the SAM 2.1 modules (`sam2/modeling/sam2_utils.py`).
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;
use super::rowops;

/// `nn.Linear` applied to the last dimension as one 2-D matrix product over all leading
/// dimensions, for contiguous and strided inputs alike (candle's `Linear` falls back to
/// batched products for some strided 4-D views, and gave wrong values on one, see
/// `bayes_head.rs`).
#[derive(Debug, Clone)]
pub struct Linear {
    weight_t: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    pub fn weight_t(&self) -> &Tensor {
        &self.weight_t
    }
}

/// Loads `weight` (`out, in`) and `bias` (`out`) under `vb`, as `nn.Linear(in, out)`.
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let weight = vb.get((out_dim, in_dim), "weight")?;
    let bias = vb.get(out_dim, "bias")?;
    Ok(Linear {
        weight_t: weight.t()?,
        bias: Some(bias),
    })
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        let in_dim = dims[dims.len() - 1];
        let rows = x.elem_count() / in_dim.max(1);
        let y = x
            .contiguous()?
            .reshape((rows, in_dim))?
            .matmul(&self.weight_t)?;
        let y = match &self.bias {
            Some(b) => rowops::add_bias(y, b)?,
            None => y,
        };
        let mut out = dims.to_vec();
        let last = out.len() - 1;
        out[last] = self.weight_t.dim(1)?;
        y.reshape(out)
    }
}

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
            Activation::Gelu => crate::model::gelu::gelu(x),
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
            let k = if i + 1 == num_layers {
                output_dim
            } else {
                hidden_dim
            };
            layers.push(linear(n, k, vb.pp(format!("layers.{i}")))?);
        }
        Ok(Self {
            layers,
            act,
            sigmoid_output,
        })
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

/// `nn.LayerNorm(dim, eps)` over the last dimension. Inference takes candle's fused kernel;
/// training (a tracked input or weight; that kernel has no backward) [`rowops::layer_norm`].
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.track_op() || self.weight.track_op() || self.bias.track_op() {
            return rowops::layer_norm(x, &self.weight, &self.bias, self.eps);
        }
        candle_nn::ops::layer_norm(&x.contiguous()?, &self.weight, &self.bias, self.eps as f32)
    }
}

pub fn layer_norm_eps(dim: usize, eps: f64, vb: VarBuilder) -> Result<LayerNorm> {
    Ok(LayerNorm {
        weight: vb.get(dim, "weight")?,
        bias: vb.get(dim, "bias")?,
        eps,
    })
}

/// Softmax over the last axis: candle's fused kernel when no gradient is needed (it has no
/// backward), [`rowops::softmax_last_dim`] otherwise.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if x.track_op() {
        rowops::softmax_last_dim(x)
    } else {
        candle_nn::ops::softmax_last_dim(x)
    }
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
///
/// The queries are pre-scaled (one pass over `q` instead of over the score matrix), and
/// long sequences are processed in blocks of query rows so that the score matrix never
/// exceeds [`SDPA_BLOCK_ELEMS`] values: Hiera's global blocks at 1024 px would otherwise
/// materialise 4 x 4096 x 4096 floats (268 MB) twice, the bulk of `set_image`'s peak memory.
///
/// Inference on the CPU takes the fused kernel of [`super::flash`] instead.
pub fn sdpa(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    if super::flash::applies(q, k, v) {
        return super::flash::attention(q, k, v, 1.0 / (q.dim(3)? as f32).sqrt());
    }
    sdpa_blocked(q, k, v, SDPA_BLOCK_ELEMS)
}

fn sdpa_blocked(q: &Tensor, k: &Tensor, v: &Tensor, block_elems: usize) -> Result<Tensor> {
    let (b, h, nq, d) = q.dims4()?;
    let nk = k.dim(2)?;
    let q = (q * (1.0 / (d as f64).sqrt()))?;
    let kt = k.t()?.contiguous()?;
    let v = v.contiguous()?;
    let attend = |q: &Tensor| -> Result<Tensor> {
        let attn = q.contiguous()?.matmul(&kt)?;
        softmax_last_dim(&attn)?.matmul(&v)
    };
    let rows = (block_elems / (b * h * nk).max(1)).max(1);
    if rows >= nq {
        return attend(&q);
    }
    let mut outs = Vec::with_capacity(nq.div_ceil(rows));
    let mut start = 0;
    while start < nq {
        let len = rows.min(nq - start);
        outs.push(attend(&q.narrow(2, start, len)?)?);
        start += len;
    }
    Tensor::cat(&outs, 2)
}

/// Largest attention score block [`sdpa`] materialises (4 Mi values, 16 MB in f32).
pub const SDPA_BLOCK_ELEMS: usize = 4 << 20;

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn blocked_attention_equals_one_block() {
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1.0, (2, 3, 37, 8), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (2, 3, 29, 8), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (2, 3, 29, 8), &dev).unwrap();
        let whole = sdpa_blocked(&q, &k, &v, usize::MAX).unwrap();
        // 2*3*29 = 174 scores per query row: blocks of 5 rows, the last one shorter.
        let blocked = sdpa_blocked(&q, &k, &v, 174 * 5).unwrap();
        let diff = (&whole - blocked)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-6, "{diff}");
        // And both equal softmax(q kᵀ / √d) v computed naively for one row.
        let qs = q
            .get(1)
            .unwrap()
            .get(2)
            .unwrap()
            .get(36)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let ks = k.get(1).unwrap().get(2).unwrap().to_vec2::<f32>().unwrap();
        let vs = v.get(1).unwrap().get(2).unwrap().to_vec2::<f32>().unwrap();
        let sc: Vec<f32> = ks
            .iter()
            .map(|kr| kr.iter().zip(&qs).map(|(a, b)| a * b).sum::<f32>() / (8f32).sqrt())
            .collect();
        let m = sc.iter().cloned().fold(f32::MIN, f32::max);
        let e: Vec<f32> = sc.iter().map(|x| (x - m).exp()).collect();
        let z: f32 = e.iter().sum();
        let want: Vec<f32> = (0..8)
            .map(|c| e.iter().zip(&vs).map(|(w, vr)| w * vr[c]).sum::<f32>() / z)
            .collect();
        let got = whole
            .get(1)
            .unwrap()
            .get(2)
            .unwrap()
            .get(36)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn linear_flattens_leading_dims() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (5, 4), &dev).unwrap();
        let b = Tensor::randn(0f32, 1.0, 5, &dev).unwrap();
        let lin = Linear {
            weight_t: w.t().unwrap(),
            bias: Some(b.clone()),
        };
        let x = Tensor::randn(0f32, 1.0, (2, 3, 6, 4), &dev).unwrap();
        let y = lin.forward(&x).unwrap();
        assert_eq!(y.dims(), &[2, 3, 6, 5]);
        let x0 = x.get(1).unwrap().get(2).unwrap().get(5).unwrap();
        let want = (w
            .matmul(&x0.unsqueeze(1).unwrap())
            .unwrap()
            .squeeze(1)
            .unwrap()
            + b)
            .unwrap();
        let got = y.get(1).unwrap().get(2).unwrap().get(5).unwrap();
        let d = (want - got)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 1e-5);
    }
}
