//! SAM 2.1 prompt encoder (`sam2/modeling/sam/prompt_encoder.py`): random-Fourier
//! positional encoding of points and box corners, learned label embeddings, and a small
//! convolutional encoder for a mask prompt.
use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{conv2d, Conv2d, Conv2dConfig, Embedding, VarBuilder};

use super::common::LayerNorm2d;
use crate::model::gelu::gelu;

/// `PositionEmbeddingRandom`: `[sin, cos](2π (2x-1) G)` for a Gaussian matrix G.
#[derive(Debug, Clone)]
pub struct PositionEmbeddingRandom {
    gaussian: Tensor,
}

impl PositionEmbeddingRandom {
    pub fn new(num_pos_feats: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self { gaussian: vb.get((2, num_pos_feats), "positional_encoding_gaussian_matrix")? })
    }

    /// Encodes `(..., 2)` coordinates normalised to `[0, 1]`.
    fn pe_encoding(&self, coords: &Tensor) -> Result<Tensor> {
        let coords = ((coords * 2.0)? - 1.0)?;
        let coords = coords.broadcast_matmul(&self.gaussian)?;
        let coords = (coords * (2.0 * std::f64::consts::PI))?;
        Tensor::cat(&[coords.sin()?, coords.cos()?], D::Minus1)
    }

    /// Dense encoding of an `h x w` grid of cell centres, `C, h, w`.
    pub fn forward_grid(&self, h: usize, w: usize) -> Result<Tensor> {
        let dev = self.gaussian.device();
        let ys = ((Tensor::arange(0u32, h as u32, dev)?.to_dtype(DType::F32)? + 0.5)? / h as f64)?;
        let xs = ((Tensor::arange(0u32, w as u32, dev)?.to_dtype(DType::F32)? + 0.5)? / w as f64)?;
        let ys = ys.reshape((h, 1, 1))?.broadcast_as((h, w, 1))?;
        let xs = xs.reshape((1, w, 1))?.broadcast_as((h, w, 1))?;
        let grid = Tensor::cat(&[xs, ys], 2)?.to_dtype(self.gaussian.dtype())?;
        self.pe_encoding(&grid)?.permute((2, 0, 1))
    }

    /// Encodes `B, N, 2` pixel coordinates of an `(h, w)` input image.
    pub fn forward_with_coords(&self, coords: &Tensor, image_size: (usize, usize)) -> Result<Tensor> {
        let scale = Tensor::new(&[1.0 / image_size.1 as f32, 1.0 / image_size.0 as f32], coords.device())?
            .to_dtype(coords.dtype())?;
        self.pe_encoding(&coords.broadcast_mul(&scale)?)
    }
}

/// Point labels understood by the prompt encoder (SAM's convention).
pub mod labels {
    pub const PADDING: i64 = -1;
    pub const NEGATIVE: i64 = 0;
    pub const POSITIVE: i64 = 1;
    pub const BOX_TOP_LEFT: i64 = 2;
    pub const BOX_BOTTOM_RIGHT: i64 = 3;
}

#[derive(Debug, Clone)]
pub struct PromptEncoder {
    pub pe_layer: PositionEmbeddingRandom,
    point_embeddings: Vec<Tensor>,
    not_a_point_embed: Tensor,
    mask_downscaling_conv1: Conv2d,
    mask_downscaling_ln1: LayerNorm2d,
    mask_downscaling_conv2: Conv2d,
    mask_downscaling_ln2: LayerNorm2d,
    mask_downscaling_conv3: Conv2d,
    no_mask_embed: Embedding,
    embed_dim: usize,
    image_embedding_size: (usize, usize),
    input_image_size: (usize, usize),
    /// `get_dense_pe`'s result, kept after the first call when nothing records gradients:
    /// it depends only on the Fourier matrix, a buffer that is never trained.
    dense_pe: std::sync::OnceLock<Tensor>,
}

impl PromptEncoder {
    pub fn new(embed_dim: usize, image_embedding_size: (usize, usize), input_image_size: (usize, usize), vb: VarBuilder) -> Result<Self> {
        let mask_in_chans = 16;
        let pe_layer = PositionEmbeddingRandom::new(embed_dim / 2, vb.pp("pe_layer"))?;
        let point_embeddings = (0..4)
            .map(|i| vb.pp(format!("point_embeddings.{i}")).get((1, embed_dim), "weight"))
            .collect::<Result<Vec<_>>>()?;
        let stride2 = Conv2dConfig { stride: 2, ..Default::default() };
        let md = vb.pp("mask_downscaling");
        Ok(Self {
            pe_layer,
            point_embeddings,
            not_a_point_embed: vb.pp("not_a_point_embed").get((1, embed_dim), "weight")?,
            mask_downscaling_conv1: conv2d(1, mask_in_chans / 4, 2, stride2, md.pp("0"))?,
            mask_downscaling_ln1: LayerNorm2d::new(mask_in_chans / 4, md.pp("1"))?,
            mask_downscaling_conv2: conv2d(mask_in_chans / 4, mask_in_chans, 2, stride2, md.pp("3"))?,
            mask_downscaling_ln2: LayerNorm2d::new(mask_in_chans, md.pp("4"))?,
            mask_downscaling_conv3: conv2d(mask_in_chans, embed_dim, 1, Conv2dConfig::default(), md.pp("6"))?,
            no_mask_embed: candle_nn::embedding(1, embed_dim, vb.pp("no_mask_embed"))?,
            embed_dim,
            image_embedding_size,
            input_image_size,
            dense_pe: std::sync::OnceLock::new(),
        })
    }

    /// `get_dense_pe`: `1, C, h, w` encoding of the image-embedding grid.
    pub fn get_dense_pe(&self) -> Result<Tensor> {
        if let Some(pe) = self.dense_pe.get() {
            return Ok(pe.clone());
        }
        let (h, w) = self.image_embedding_size;
        let pe = self.pe_layer.forward_grid(h, w)?.unsqueeze(0)?;
        // In training the matrix is a variable whose value may still be set after the model
        // is built: computed afresh then.
        if !self.pe_layer.gaussian.track_op() {
            let _ = self.dense_pe.set(pe.clone());
        }
        Ok(pe)
    }

    /// `_embed_points`: `points` is `B, N, 2` in input-image pixels, `labels` is `B, N`
    /// (f32 holding the integer labels). Appends the padding point when `pad`.
    pub fn embed_points(&self, points: &Tensor, labels: &Tensor, pad: bool) -> Result<Tensor> {
        let points = (points + 0.5)?;
        let (points, labels) = if pad {
            let b = points.dim(0)?;
            let pp = Tensor::zeros((b, 1, 2), points.dtype(), points.device())?;
            let pl = (Tensor::ones((b, 1), labels.dtype(), labels.device())? * -1.0)?;
            (Tensor::cat(&[&points, &pp], 1)?, Tensor::cat(&[labels, &pl], 1)?)
        } else {
            (points, labels.clone())
        };
        let pe = self.pe_layer.forward_with_coords(&points, self.input_image_size)?;
        let labels = labels.unsqueeze(D::Minus1)?;
        let is = |v: i64| -> Result<Tensor> { labels.eq(v as f64)?.to_dtype(pe.dtype())?.broadcast_as(pe.shape()) };
        // Padding points: the positional part is replaced by `not_a_point_embed`.
        let pad_mask = is(labels::PADDING)?;
        let mut out = ((&pe * pad_mask.affine(-1.0, 1.0)?)? + pad_mask.broadcast_mul(&self.not_a_point_embed)?)?;
        for (i, emb) in self.point_embeddings.iter().enumerate() {
            out = (out + is(i as i64)?.broadcast_mul(emb)?)?;
        }
        Ok(out)
    }

    /// `_embed_masks`: `B, 1, 4h, 4w` mask logits to `B, C, h, w`.
    pub fn embed_masks(&self, masks: &Tensor) -> Result<Tensor> {
        let x = self.mask_downscaling_conv1.forward(masks)?;
        let x = gelu(&self.mask_downscaling_ln1.forward(&x)?)?;
        let x = self.mask_downscaling_conv2.forward(&x)?;
        let x = gelu(&self.mask_downscaling_ln2.forward(&x)?)?;
        self.mask_downscaling_conv3.forward(&x)
    }

    /// Sparse and dense prompt embeddings. Boxes are given to SAM 2.1 as two corner points
    /// with labels 2 and 3 (the predictor does that), so there is no separate box input:
    /// the padding point is always appended, as `forward(points, boxes=None, ...)` does.
    pub fn forward(&self, points: Option<(&Tensor, &Tensor)>, masks: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
        let bs = match (points, masks) {
            (Some((p, _)), _) => p.dim(0)?,
            (None, Some(m)) => m.dim(0)?,
            _ => 1,
        };
        let dev = self.not_a_point_embed.device();
        let sparse = match points {
            Some((p, l)) => self.embed_points(p, l, true)?,
            None => Tensor::zeros((bs, 0, self.embed_dim), self.not_a_point_embed.dtype(), dev)?,
        };
        let dense = match masks {
            Some(m) => self.embed_masks(m)?,
            None => {
                let (h, w) = self.image_embedding_size;
                self.no_mask_embed.embeddings().reshape((1, self.embed_dim, 1, 1))?.broadcast_as((bs, self.embed_dim, h, w))?.contiguous()?
            }
        };
        Ok((sparse, dense))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::VarMap;

    #[test]
    fn dense_pe_is_kept_at_inference_and_recomputed_for_variables() -> Result<()> {
        let dev = Device::Cpu;
        // Plain tensors (inference): a zero Fourier matrix gives sin 0 = 0 in the first half
        // of the channels and cos 0 = 1 in the second, and the second call is the same tensor.
        let enc = PromptEncoder::new(8, (4, 4), (64, 64), VarBuilder::zeros(DType::F32, &dev))?;
        let a = enc.get_dense_pe()?;
        assert_eq!(a.dims(), &[1, 8, 4, 4]);
        let v = a.flatten_all()?.to_vec1::<f32>()?;
        assert!(v[..64].iter().all(|&x| x == 0.0) && v[64..].iter().all(|&x| x == 1.0));
        assert_eq!(enc.get_dense_pe()?.id(), a.id());
        // Variables (training): a value set after the first call is seen by the next.
        let map = VarMap::new();
        let enc = PromptEncoder::new(8, (4, 4), (64, 64), VarBuilder::from_varmap(&map, DType::F32, &dev))?;
        let first = enc.get_dense_pe()?;
        map.data().lock().unwrap()["pe_layer.positional_encoding_gaussian_matrix"].set(&Tensor::zeros((2, 4), DType::F32, &dev)?)?;
        let second = enc.get_dense_pe()?;
        assert_ne!(first.id(), second.id());
        assert_eq!(second.flatten_all()?.to_vec1::<f32>()?, v);
        Ok(())
    }
}
