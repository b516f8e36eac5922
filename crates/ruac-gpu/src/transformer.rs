//! The two-way transformer on the GPU, as ruac-core's `model/transformer.rs`
//! (`sam/transformer.py`): tokens attend to the image, the image attends to the tokens.
use crate::error::{GpuError, Result};
use crate::gpu::{GBuf, Gpu};
use crate::kernels::attention::{attention, AttnShape, Heads, Qkvo, MAX_HEAD_DIM};
use crate::kernels::matmul::Act;
use crate::layers::{add_new, Lin, Norm, Out};
use crate::loader::Weights;

/// `Attention`: projections, multi-head attention, output projection.
struct Attention {
    q_proj: Lin,
    k_proj: Lin,
    v_proj: Lin,
    out_proj: Lin,
    heads: usize,
}

impl Attention {
    fn new(w: &Weights, heads: usize) -> Result<Self> {
        let a = Self { q_proj: w.lin("q_proj")?, k_proj: w.lin("k_proj")?, v_proj: w.lin("v_proj")?, out_proj: w.lin("out_proj")?, heads };
        if a.q_proj.dout / heads > MAX_HEAD_DIM {
            return Err(GpuError::Unsupported(format!("decoder head dimension {}", a.q_proj.dout / heads)));
        }
        Ok(a)
    }

    /// `out_proj(attention(q_proj q, k_proj k, v_proj v))` for `nq` queries over `nk` keys,
    /// written to (or added to) `y`.
    fn forward(&self, gpu: &Gpu, (q, nq): (&wgpu::Buffer, usize), (k, v, nk): (&wgpu::Buffer, &wgpu::Buffer, usize), y: Out) -> Result<()> {
        let qp = self.q_proj.forward(gpu, q, nq, Act::None)?;
        let kp = self.k_proj.forward(gpu, k, nk, Act::None)?;
        let vp = self.v_proj.forward(gpu, v, nk, Act::None)?;
        let inner = self.q_proj.dout;
        let head_dim = inner / self.heads;
        let o = gpu.alloc(nq * inner)?;
        let heads = |buf| Heads { buf, off: 0, bs: 0, hs: head_dim, ns: inner };
        let shape = AttnShape { batch: 1, heads: self.heads, nq, nk, hd: head_dim };
        attention(gpu, shape, Qkvo { q: heads(&qp), k: heads(&kp), v: heads(&vp), o: heads(&o) })?;
        self.out_proj.forward_into(gpu, (&o, 0), nq, Act::None, y)
    }
}

/// `TwoWayAttentionBlock`.
struct TwoWayBlock {
    self_attn: Attention,
    norm1: Norm,
    cross_attn_token_to_image: Attention,
    norm2: Norm,
    mlp_in: Lin,
    mlp_out: Lin,
    norm3: Norm,
    norm4: Norm,
    cross_attn_image_to_token: Attention,
    skip_first_layer_pe: bool,
}

/// `TwoWayTransformer`.
pub struct TwoWayTransformer {
    layers: Vec<TwoWayBlock>,
    final_attn_token_to_image: Attention,
    norm_final_attn: Norm,
    d: usize,
}

impl TwoWayTransformer {
    /// `mlp`: the names of the MLP's two linear layers (SAM 2.1 `mlp.layers.0/1`, SAM 1
    /// `mlp.lin1/2`).
    pub fn new(w: &Weights, depth: usize, heads: usize, mlp: [&str; 2]) -> Result<Self> {
        let layers = (0..depth)
            .map(|i| {
                let l = w.pp(format!("layers.{i}"));
                Ok(TwoWayBlock {
                    self_attn: Attention::new(&l.pp("self_attn"), heads)?,
                    norm1: l.norm("norm1", 1e-5)?,
                    cross_attn_token_to_image: Attention::new(&l.pp("cross_attn_token_to_image"), heads)?,
                    norm2: l.norm("norm2", 1e-5)?,
                    mlp_in: l.lin(mlp[0])?,
                    mlp_out: l.lin(mlp[1])?,
                    norm3: l.norm("norm3", 1e-5)?,
                    norm4: l.norm("norm4", 1e-5)?,
                    cross_attn_image_to_token: Attention::new(&l.pp("cross_attn_image_to_token"), heads)?,
                    skip_first_layer_pe: i == 0,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let norm_final_attn = w.norm("norm_final_attn", 1e-5)?;
        Ok(Self {
            layers,
            final_attn_token_to_image: Attention::new(&w.pp("final_attn_token_to_image"), heads)?,
            d: norm_final_attn.c,
            norm_final_attn,
        })
    }

    /// `tokens` (`nt x d`, also the query positional encoding) and the image (`hw x d`,
    /// consumed) with its positional encoding `image_pe`; returns the final tokens and image.
    pub fn forward(&self, gpu: &Gpu, (tokens, nt): (&wgpu::Buffer, usize), (image, hw): (GBuf, usize), image_pe: &wgpu::Buffer) -> Result<(GBuf, GBuf)> {
        let d = self.d;
        let mut queries = gpu.alloc(nt * d)?;
        gpu.copy(tokens, 0, &queries, 0, nt * d);
        let mut keys = image;
        for l in &self.layers {
            if l.skip_first_layer_pe {
                let next = gpu.alloc(nt * d)?;
                l.self_attn.forward(gpu, (&queries, nt), (&queries, &queries, nt), Out::to(&next))?;
                queries = next;
            } else {
                let q = add_new(gpu, &queries, tokens, nt * d)?;
                l.self_attn.forward(gpu, (&q, nt), (&q, &queries, nt), Out::add_to(&queries))?;
            }
            queries = l.norm1.forward(gpu, &queries, nt, Act::None)?;
            let q = add_new(gpu, &queries, tokens, nt * d)?;
            let k = add_new(gpu, &keys, image_pe, hw * d)?;
            l.cross_attn_token_to_image.forward(gpu, (&q, nt), (&k, &keys, hw), Out::add_to(&queries))?;
            queries = l.norm2.forward(gpu, &queries, nt, Act::None)?;
            let hidden = l.mlp_in.forward(gpu, &queries, nt, Act::Relu)?;
            l.mlp_out.forward_into(gpu, (&hidden, 0), nt, Act::None, Out::add_to(&queries))?;
            queries = l.norm3.forward(gpu, &queries, nt, Act::None)?;
            let q = add_new(gpu, &queries, tokens, nt * d)?;
            l.cross_attn_image_to_token.forward(gpu, (&k, hw), (&q, &queries, nt), Out::add_to(&keys))?;
            keys = l.norm4.forward(gpu, &keys, hw, Act::None)?;
        }
        let q = add_new(gpu, &queries, tokens, nt * d)?;
        let k = add_new(gpu, &keys, image_pe, hw * d)?;
        self.final_attn_token_to_image.forward(gpu, (&q, nt), (&k, &keys, hw), Out::add_to(&queries))?;
        let out = self.norm_final_attn.forward(gpu, &queries, nt, Act::None)?;
        Ok((out, keys))
    }
}
