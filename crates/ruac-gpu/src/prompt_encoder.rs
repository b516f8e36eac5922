//! SAM's prompt encoder on the GPU, as ruac-core's `model/prompt_encoder.rs`
//! (`sam/prompt_encoder.py`): random-Fourier point embeddings plus label embeddings, the
//! dense grid encoding, and the mask prompt's downscaling convolutions.
use crate::error::Result;
use crate::gpu::{GBuf, Gpu};
use crate::kernels::conv::{conv2d, Conv2d};
use crate::kernels::eltwise::add_bcast;
use crate::kernels::matmul::Act;
use crate::kernels::prompt::{self, PointEncoder};
use crate::layers::{Lin, Norm};
use crate::loader::Weights;

/// A 2x2 stride-2 convolution of the mask downscaling path.
struct Conv2x2 {
    w: wgpu::Buffer,
    b: wgpu::Buffer,
    cin: usize,
    cout: usize,
}

impl Conv2x2 {
    fn new(w: &Weights, cin: usize, cout: usize) -> Result<Self> {
        Ok(Self { w: w.buf("weight")?, b: w.buf("bias")?, cin, cout })
    }

    fn forward(&self, gpu: &Gpu, x: &wgpu::Buffer, side: usize) -> Result<(GBuf, usize, usize)> {
        let c = Conv2d { w: &self.w, b: &self.b, cin: self.cin, cout: self.cout, k: 2, stride: 2, pad: 0 };
        conv2d(gpu, x, side, side, &c, Act::None)
    }
}

/// `PromptEncoder` (`sam_prompt_encoder` / `prompt_encoder`).
pub struct PromptEncoder {
    gauss: wgpu::Buffer,
    /// `point_embeddings` 0..4, then `not_a_point_embed`.
    point_embeddings: wgpu::Buffer,
    mask_conv1: Conv2x2,
    mask_norm1: Norm,
    mask_conv2: Conv2x2,
    mask_norm2: Norm,
    mask_conv3: Lin,
    no_mask_embed: wgpu::Buffer,
    /// `get_dense_pe` as `e*e x d`, computed once.
    pub dense_pe: GBuf,
    d: usize,
    /// Side of the image embedding.
    embedding_size: usize,
    image_size: usize,
}

impl PromptEncoder {
    pub fn new(w: &Weights, d: usize, embedding_size: usize, image_size: usize) -> Result<Self> {
        let gpu = w.gpu();
        let mut point_embeddings = Vec::with_capacity(5 * d);
        for i in 0..4 {
            point_embeddings.extend(w.pp(format!("point_embeddings.{i}")).host("weight")?.0);
        }
        point_embeddings.extend(w.pp("not_a_point_embed").host("weight")?.0);
        let gauss = w.pp("pe_layer").buf("positional_encoding_gaussian_matrix")?;
        let dense_pe = prompt::grid(gpu, &gauss, embedding_size, embedding_size, d)?;
        let down = w.pp("mask_downscaling");
        Ok(Self {
            gauss,
            point_embeddings: gpu.upload("point_embeddings", &point_embeddings),
            mask_conv1: Conv2x2::new(&down.pp("0"), 1, 4)?,
            mask_norm1: down.norm("1", 1e-6)?,
            mask_conv2: Conv2x2::new(&down.pp("3"), 4, 16)?,
            mask_norm2: down.norm("4", 1e-6)?,
            mask_conv3: down.lin("6")?,
            no_mask_embed: w.pp("no_mask_embed").buf("weight")?,
            dense_pe,
            d,
            embedding_size,
            image_size,
        })
    }

    /// Sparse embeddings `n x d` of `points` as `PlacedPrompt::encoder_points` gives them
    /// (`None` without points).
    pub fn sparse(&self, gpu: &Gpu, points: &[(f32, f32, f32)]) -> Result<Option<GBuf>> {
        if points.is_empty() {
            return Ok(None);
        }
        let coords: Vec<f32> = points.iter().flat_map(|p| [p.0, p.1]).collect();
        let labels: Vec<f32> = points.iter().map(|p| p.2).collect();
        let (coords, labels) = (gpu.upload("coords", &coords), gpu.upload("labels", &labels));
        let enc = PointEncoder { gauss: &self.gauss, emb: &self.point_embeddings, d: self.d, image_size: self.image_size };
        Ok(Some(prompt::points(gpu, &enc, &coords, &labels, points.len())?))
    }

    /// The image embedding plus the dense prompt (the downscaled `4e x 4e` mask, or
    /// `no_mask_embed`), in a new `e*e x d` buffer.
    pub fn with_dense(&self, gpu: &Gpu, image_embed: &wgpu::Buffer, mask_input: Option<&[f32]>) -> Result<GBuf> {
        let n = self.embedding_size * self.embedding_size * self.d;
        let src = gpu.alloc(n)?;
        gpu.copy(image_embed, 0, &src, 0, n);
        match mask_input {
            Some(m) => {
                let m = gpu.upload("mask_input", m);
                let (x, h1, w1) = self.mask_conv1.forward(gpu, &m, 4 * self.embedding_size)?;
                let x = self.mask_norm1.forward(gpu, &x, h1 * w1, Act::Gelu)?;
                let (x, h2, w2) = self.mask_conv2.forward(gpu, &x, h1)?;
                let x = self.mask_norm2.forward(gpu, &x, h2 * w2, Act::Gelu)?;
                let dense = self.mask_conv3.forward(gpu, &x, h2 * w2, Act::None)?;
                add_bcast(gpu, &src, 0, n, &dense, 0, n)?;
            }
            None => add_bcast(gpu, &src, 0, n, &self.no_mask_embed, 0, self.d)?,
        }
        Ok(src)
    }
}
