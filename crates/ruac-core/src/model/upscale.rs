//! The mask decoder's `output_upscaling` transposed convolutions
//! (`sam2/modeling/sam/mask_decoder.py`, `segment_anything/modeling/mask_decoder.py`:
//! `nn.ConvTranspose2d(c_in, c_out, kernel_size=2, stride=2)`).
//!
//! With the kernel as large as the stride, the output pixels do not overlap: output
//! `(2y + i, 2x + j)` is input pixel `(y, x)` times kernel tap `(i, j)`. So the layer is one
//! matrix product of the channels-last input with the weight read as `c_in × (c_out·2·2)`
//! (its own memory order, no copy), then a pixel shuffle. candle's direct transposed
//! convolution loops over every tap instead, about ten times slower at SAM's sizes.
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

#[derive(Debug, Clone)]
pub struct ConvTranspose2x2 {
    /// `(c_in, c_out, 2, 2)`, as PyTorch stores it.
    weight: Tensor,
    bias: Tensor,
}

impl ConvTranspose2x2 {
    /// Loads `weight` and `bias` under `vb`, as `nn.ConvTranspose2d(c_in, c_out, 2, stride=2)`.
    pub fn new(c_in: usize, c_out: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self { weight: vb.get((c_in, c_out, 2, 2), "weight")?, bias: vb.get(c_out, "bias")? })
    }
}

impl Module for ConvTranspose2x2 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c_in, h, w) = x.dims4()?;
        let c_out = self.weight.dim(1)?;
        // Channels-last rows read in place: (b, h·w, c_in) as a transposed view of NCHW, which
        // the GEMM takes by its strides (no copy of the input).
        let rows = x.contiguous()?.reshape((b, c_in, h * w))?.transpose(1, 2)?;
        let taps = rows.broadcast_matmul(&self.weight.reshape((c_in, c_out * 4))?)?.reshape((b * h * w, c_out * 4))?;
        // The bias of channel o goes to its four taps (columns 4o..4o+3), before the shuffle:
        // in place at inference (rowops::add_bias), so no output-sized buffer is added.
        let bias4 = self.bias.unsqueeze(1)?.broadcast_as((c_out, 4))?.flatten_all()?;
        super::rowops::add_bias(taps, &bias4)?
            .reshape((b, h, w, c_out, 2, 2))?
            .permute((0, 3, 1, 4, 2, 5))?
            .contiguous()?
            .reshape((b, c_out, 2 * h, 2 * w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::{conv_transpose2d, ConvTranspose2dConfig, VarMap};

    #[test]
    fn equals_the_direct_transposed_convolution() -> Result<()> {
        let dev = Device::Cpu;
        let map = VarMap::new();
        let vb = VarBuilder::from_varmap(&map, DType::F32, &dev);
        let (c_in, c_out) = (12, 5);
        let direct = conv_transpose2d(c_in, c_out, 2, ConvTranspose2dConfig { stride: 2, ..Default::default() }, vb.pp("up"))?;
        // Same variables (names and values) for both layers; the bias made non-zero.
        let data = map.data().lock().unwrap();
        data["up.bias"].set(&Tensor::randn(0f32, 1.0, c_out, &dev)?)?;
        drop(data);
        let gemm = ConvTranspose2x2::new(c_in, c_out, vb.pp("up"))?;
        let x = Tensor::randn(0f32, 1.0, (2, c_in, 7, 9), &dev)?;
        let (a, g) = (direct.forward(&x)?, gemm.forward(&x)?);
        assert_eq!(g.dims(), &[2, c_out, 14, 18]);
        let diff = (a - g)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "{diff}");
        // A strided (non-contiguous) input gives the same.
        let xt = x.transpose(2, 3)?;
        let diff = (direct.forward(&xt.contiguous()?)? - gemm.forward(&xt)?)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "{diff}");
        Ok(())
    }

    #[test]
    fn one_pixel_by_hand() -> Result<()> {
        // c_in 1, c_out 1: output (2y+i, 2x+j) = x[y, x] * w[i, j] + b.
        let dev = Device::Cpu;
        let layer = ConvTranspose2x2 {
            weight: Tensor::new(&[[[[1f32, 2.], [3., 4.]]]], &dev)?,
            bias: Tensor::new(&[0.5f32], &dev)?,
        };
        let x = Tensor::new(&[[[[1f32, 10.]]]], &dev)?;
        let y = layer.forward(&x)?.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(y, vec![1.5, 2.5, 10.5, 20.5, 3.5, 4.5, 30.5, 40.5]);
        Ok(())
    }
}
