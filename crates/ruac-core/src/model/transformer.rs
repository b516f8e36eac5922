//! SAM's two-way transformer (`sam2/modeling/sam/transformer.py`): prompt tokens and image
//! tokens attend to each other in both directions.
use super::common::LayerNorm;
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::common::{layer_norm_eps, linear, sdpa, Activation, Linear, Mlp};

/// `Attention` with an optional internal down-projection (`downsample_rate`).
#[derive(Debug, Clone)]
pub struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    num_heads: usize,
}

impl Attention {
    pub fn new(
        embedding_dim: usize,
        num_heads: usize,
        downsample_rate: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let internal = embedding_dim / downsample_rate;
        if internal % num_heads != 0 {
            candle_core::bail!(
                "attention: {num_heads} heads do not divide the internal width {internal}"
            );
        }
        Ok(Self {
            q_proj: linear(embedding_dim, internal, vb.pp("q_proj"))?,
            k_proj: linear(embedding_dim, internal, vb.pp("k_proj"))?,
            v_proj: linear(embedding_dim, internal, vb.pp("v_proj"))?,
            out_proj: linear(internal, embedding_dim, vb.pp("out_proj"))?,
            num_heads,
        })
    }

    fn separate_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, n, c) = x.dims3()?;
        x.reshape((b, n, self.num_heads, c / self.num_heads))?
            .transpose(1, 2)
    }

    pub fn forward(&self, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
        let q = self.separate_heads(&self.q_proj.forward(q)?)?;
        let k = self.separate_heads(&self.k_proj.forward(k)?)?;
        let v = self.separate_heads(&self.v_proj.forward(v)?)?;
        let out = sdpa(&q, &k, &v)?;
        let (b, h, n, c) = out.dims4()?;
        let out = out.transpose(1, 2)?.reshape((b, n, h * c))?;
        self.out_proj.forward(&out)
    }
}

/// `TwoWayAttentionBlock`: token self-attention, token→image cross-attention, MLP on the
/// tokens, image→token cross-attention; post-norm after each.
#[derive(Debug, Clone)]
pub struct TwoWayAttentionBlock {
    self_attn: Attention,
    norm1: LayerNorm,
    cross_attn_token_to_image: Attention,
    norm2: LayerNorm,
    mlp: Mlp,
    norm3: LayerNorm,
    norm4: LayerNorm,
    cross_attn_image_to_token: Attention,
    skip_first_layer_pe: bool,
}

impl TwoWayAttentionBlock {
    pub fn new(
        dim: usize,
        num_heads: usize,
        mlp_dim: usize,
        downsample: usize,
        skip_first_layer_pe: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            self_attn: Attention::new(dim, num_heads, 1, vb.pp("self_attn"))?,
            norm1: layer_norm_eps(dim, 1e-5, vb.pp("norm1"))?,
            cross_attn_token_to_image: Attention::new(
                dim,
                num_heads,
                downsample,
                vb.pp("cross_attn_token_to_image"),
            )?,
            norm2: layer_norm_eps(dim, 1e-5, vb.pp("norm2"))?,
            mlp: Mlp::new(vb.pp("mlp"), dim, mlp_dim, dim, 2, Activation::Relu, false)?,
            norm3: layer_norm_eps(dim, 1e-5, vb.pp("norm3"))?,
            norm4: layer_norm_eps(dim, 1e-5, vb.pp("norm4"))?,
            cross_attn_image_to_token: Attention::new(
                dim,
                num_heads,
                downsample,
                vb.pp("cross_attn_image_to_token"),
            )?,
            skip_first_layer_pe,
        })
    }

    pub fn forward(
        &self,
        queries: &Tensor,
        keys: &Tensor,
        query_pe: &Tensor,
        key_pe: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let queries = if self.skip_first_layer_pe {
            self.self_attn.forward(queries, queries, queries)?
        } else {
            let q = (queries + query_pe)?;
            (queries + self.self_attn.forward(&q, &q, queries)?)?
        };
        let queries = self.norm1.forward(&queries)?;
        let q = (&queries + query_pe)?;
        let k = keys.broadcast_add(key_pe)?;
        let queries = (&queries + self.cross_attn_token_to_image.forward(&q, &k, keys)?)?;
        let queries = self.norm2.forward(&queries)?;
        let queries = (&queries + self.mlp.forward(&queries)?)?;
        let queries = self.norm3.forward(&queries)?;
        let q = (&queries + query_pe)?;
        let keys = (keys + self.cross_attn_image_to_token.forward(&k, &q, &queries)?)?;
        let keys = self.norm4.forward(&keys)?;
        Ok((queries, keys))
    }
}

#[derive(Debug, Clone)]
pub struct TwoWayTransformer {
    layers: Vec<TwoWayAttentionBlock>,
    final_attn_token_to_image: Attention,
    norm_final_attn: LayerNorm,
}

impl TwoWayTransformer {
    pub fn new(
        depth: usize,
        dim: usize,
        num_heads: usize,
        mlp_dim: usize,
        downsample: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let layers = (0..depth)
            .map(|i| {
                TwoWayAttentionBlock::new(
                    dim,
                    num_heads,
                    mlp_dim,
                    downsample,
                    i == 0,
                    vb.pp(format!("layers.{i}")),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            layers,
            final_attn_token_to_image: Attention::new(
                dim,
                num_heads,
                downsample,
                vb.pp("final_attn_token_to_image"),
            )?,
            norm_final_attn: layer_norm_eps(dim, 1e-5, vb.pp("norm_final_attn"))?,
        })
    }

    /// `image_embedding`, `image_pe`: `B, C, h, w`; `point_embedding`: `B, N, C`.
    /// Returns the processed tokens `B, N, C` and image tokens `B, hw, C`.
    pub fn forward(
        &self,
        image_embedding: &Tensor,
        image_pe: &Tensor,
        point_embedding: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let image_embedding = image_embedding
            .flatten_from(2)?
            .transpose(1, 2)?
            .contiguous()?;
        let image_pe = image_pe.flatten_from(2)?.transpose(1, 2)?.contiguous()?;
        let mut queries = point_embedding.clone();
        let mut keys = image_embedding;
        for layer in &self.layers {
            (queries, keys) = layer.forward(&queries, &keys, point_embedding, &image_pe)?;
        }
        let q = (&queries + point_embedding)?;
        let k = keys.broadcast_add(&image_pe)?;
        let queries = (&queries + self.final_attn_token_to_image.forward(&q, &k, &keys)?)?;
        Ok((self.norm_final_attn.forward(&queries)?, keys))
    }
}
