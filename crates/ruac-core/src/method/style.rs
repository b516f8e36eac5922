//! The style attacker ψ_s (paper §3.3; `ruac/core/attackers/style.py`,
//! `ruac/modeling/style_gcn.py`, `ruac/modeling/style_utils.py`; adapted from AdvStyle):
//! per-object colour statistics, a bounded adversarial change proposed from each object's
//! pooled backbone feature, coordinated across objects by a 2-layer GCN over an object graph,
//! applied by mask-aware AdaIN in painter's order.
use candle_core::{Module, Result, Tensor, D};
use candle_nn::VarBuilder;

use super::grl::grad_reverse;
use crate::model::common::{layer_norm_eps, linear, LayerNorm, Linear};

/// Regions smaller than this use the whole image's statistics (`style_utils.py`).
pub const MIN_REGION_PIXELS: usize = 100;
/// Fixed scale of the GCN's residual (`delta + 0.1 · GCN(delta)`).
pub const GCN_RESIDUAL: f64 = 0.1;
/// Floor of the adversarial standard deviation.
pub const MIN_STD: f64 = 0.1;

/// Mean and standard deviation of each channel of `img` (`3, H, W`) inside `mask`
/// (`H, W`, 0/1), as a `6` vector `(μ, σ)`; the whole image when the region is tiny.
pub fn region_stats(img: &Tensor, mask: &Tensor, area: usize) -> Result<Tensor> {
    let (c, h, w) = img.dims3()?;
    let m = if area < MIN_REGION_PIXELS {
        Tensor::ones((h, w), img.dtype(), img.device())?
    } else {
        mask.clone()
    };
    let n = m.sum_all()?.clamp(1.0, f64::INFINITY)?;
    let flat = img.reshape((c, h * w))?;
    let mf = m.reshape((1, h * w))?;
    let mean = flat.broadcast_mul(&mf)?.sum(D::Minus1)?.broadcast_div(&n)?;
    let var = flat
        .broadcast_sub(&mean.unsqueeze(1)?)?
        .sqr()?
        .broadcast_mul(&mf)?
        .sum(D::Minus1)?
        .broadcast_div(&n)?;
    Tensor::cat(&[mean, (var + 1e-6)?.sqrt()?], 0)
}

/// The object graph of the style attacker, built without gradient: nodes are the objects
/// plus a background node (last); weighted, self-looped, normalised by in-degree.
#[derive(Debug, Clone)]
pub struct ObjectGraph {
    /// `N × N` row-normalised adjacency (`a[i][j]`: weight of j's message into i).
    pub adjacency: Vec<Vec<f32>>,
}

/// Graph settings (`style_gcn` in `sam2_ruac_train.yaml`).
#[derive(Debug, Clone, Copy)]
pub struct GraphConfig {
    pub iou_threshold: f32,
    /// τ_d on the boundary distance normalised by the image diagonal.
    pub distance_threshold: f32,
    pub cosine_threshold: f32,
    pub background_weight: f32,
}

impl Default for GraphConfig {
    fn default() -> Self {
        Self {
            iou_threshold: 0.0,
            distance_threshold: 1.0,
            cosine_threshold: 0.5,
            background_weight: 0.5,
        }
    }
}

fn boundary(mask: &[bool], w: usize, h: usize) -> Vec<(f32, f32)> {
    let mut out = vec![];
    for y in 0..h {
        for x in 0..w {
            if mask[y * w + x] {
                continue;
            }
            // In the 3×3 dilation but not the mask: the outer boundary ring.
            let mut near = false;
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (xx, yy) = (x as i64 + dx, y as i64 + dy);
                    if xx >= 0
                        && yy >= 0
                        && (xx as usize) < w
                        && (yy as usize) < h
                        && mask[yy as usize * w + xx as usize]
                    {
                        near = true;
                    }
                }
            }
            if near {
                out.push((x as f32, y as f32));
            }
        }
    }
    out
}

fn centroid(mask: &[bool], w: usize) -> (f32, f32) {
    let (mut sx, mut sy, mut n) = (0f64, 0f64, 0f64);
    for (i, _) in mask.iter().enumerate().filter(|(_, &v)| v) {
        sx += (i % w) as f64;
        sy += (i / w) as f64;
        n += 1.0;
    }
    if n == 0.0 {
        return (0.0, 0.0);
    }
    ((sx / n) as f32, (sy / n) as f32)
}

impl ObjectGraph {
    /// `masks`: the objects (`w × h`); `features`: one pooled descriptor per object plus the
    /// background's (last), for the semantic edges.
    pub fn build(
        masks: &[Vec<bool>],
        features: &[Vec<f32>],
        w: usize,
        h: usize,
        cfg: &GraphConfig,
    ) -> Self {
        let k = masks.len();
        let n = k + 1;
        let mut a = vec![vec![0f32; n]; n];
        let diag = ((w * w + h * h) as f32).sqrt();
        let bounds: Vec<Vec<(f32, f32)>> = masks.iter().map(|m| boundary(m, w, h)).collect();
        for i in 0..k {
            for j in (i + 1)..k {
                let inter = masks[i]
                    .iter()
                    .zip(&masks[j])
                    .filter(|(a, b)| **a && **b)
                    .count();
                let union = masks[i]
                    .iter()
                    .zip(&masks[j])
                    .filter(|(a, b)| **a || **b)
                    .count();
                let iou = if union > 0 {
                    inter as f32 / union as f32
                } else {
                    0.0
                };
                let mut wgt = 0f32;
                if iou > cfg.iou_threshold {
                    wgt += iou;
                }
                let d = if bounds[i].is_empty() || bounds[j].is_empty() {
                    let (a0, b0) = (centroid(&masks[i], w), centroid(&masks[j], w));
                    ((a0.0 - b0.0).powi(2) + (a0.1 - b0.1).powi(2)).sqrt()
                } else {
                    // Boundary rings subsampled every other point: the minimum moves by < 2 px.
                    let mut best = f32::INFINITY;
                    for p in bounds[i].iter().step_by(2) {
                        for q in bounds[j].iter().step_by(2) {
                            best = best.min((p.0 - q.0).powi(2) + (p.1 - q.1).powi(2));
                        }
                    }
                    best.sqrt()
                } / diag;
                if d <= cfg.distance_threshold {
                    wgt += ((cfg.distance_threshold - d) / cfg.distance_threshold).max(1e-6);
                }
                let cos = cosine(&features[i], &features[j]);
                if cos >= cfg.cosine_threshold {
                    wgt += cos;
                }
                a[i][j] += wgt;
                a[j][i] += wgt;
            }
            a[i][k] += cfg.background_weight;
            a[k][i] += cfg.background_weight;
        }
        for (i, row) in a.iter_mut().enumerate() {
            row[i] += 1.0;
            let deg: f32 = row.iter().sum();
            for v in row.iter_mut() {
                *v /= deg;
            }
        }
        Self { adjacency: a }
    }

    pub fn tensor(&self, dev: &candle_core::Device) -> Result<Tensor> {
        let n = self.adjacency.len();
        Tensor::from_vec(
            self.adjacency
                .iter()
                .flatten()
                .copied()
                .collect::<Vec<f32>>(),
            (n, n),
            dev,
        )
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// The two-layer GCN over 12-d nodes (style delta ‖ 6-d visual projection).
#[derive(Debug, Clone)]
pub struct StyleGcn {
    proj1: Linear,
    proj2: Linear,
    layer1: Linear,
    norm1: LayerNorm,
    layer2: Linear,
}

impl StyleGcn {
    /// Under `style_gcn.`.
    pub fn new(feat_dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            proj1: linear(feat_dim, 128, vb.pp("visual_proj.0"))?,
            proj2: linear(128, 6, vb.pp("visual_proj.2"))?,
            layer1: linear(12, 12, vb.pp("layers.0"))?,
            norm1: layer_norm_eps(12, 1e-5, vb.pp("norms.0"))?,
            layer2: linear(12, 6, vb.pp("layers.1"))?,
        })
    }

    /// `delta`: `N × 6`; `feats`: `N × F` (detached); `adj`: `N × N`. Returns `N × 6`.
    pub fn forward(&self, delta: &Tensor, feats: &Tensor, adj: &Tensor) -> Result<Tensor> {
        let v = self.proj2.forward(&self.proj1.forward(feats)?.relu()?)?;
        let x = Tensor::cat(&[delta, &v], 1)?;
        let x = adj.matmul(&self.layer1.forward(&x)?)?;
        let x = self.norm1.forward(&x)?.relu()?;
        adj.matmul(&self.layer2.forward(&x)?)
    }
}

/// The style MLP `F → 128 → LayerNorm → ReLU → 6` (weights start at std 0.01, so the attack
/// starts near zero), the GCN, and the budget ε.
#[derive(Debug, Clone)]
pub struct StyleAttacker {
    fc1: Linear,
    norm: LayerNorm,
    fc2: Linear,
    pub gcn: StyleGcn,
    pub eps: f64,
    pub graph: GraphConfig,
}

impl StyleAttacker {
    /// `vb` is the root builder: the MLP lives under `style_attacker.`, the GCN under `style_gcn.`.
    pub fn new(feat_dim: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let s = vb.pp("style_attacker.mlp");
        Ok(Self {
            fc1: linear(feat_dim, 128, s.pp("0"))?,
            norm: layer_norm_eps(128, 1e-5, s.pp("1"))?,
            fc2: linear(128, 6, s.pp("3"))?,
            gcn: StyleGcn::new(feat_dim, vb.pp("style_gcn"))?,
            eps,
            graph: GraphConfig::default(),
        })
    }

    /// Adversarial statistics `N × 6` from the original ones and node descriptors `N × F`
    /// (bounded: mean scale within `1 ± min(0.2, 200ε)`, std scale within
    /// `1 ± min(0.5, 500ε)`, mean shift `ε·tanh`, std ≥ 0.1), refined by the GCN, clipped to
    /// ±ε and passed through the gradient-reversal layer.
    pub fn propose(&self, stats: &Tensor, feats: &Tensor, adj: &Tensor) -> Result<Tensor> {
        let raw = self
            .fc2
            .forward(&self.norm.forward(&self.fc1.forward(feats)?)?.relu()?)?; // N,6
        let scale = candle_nn::ops::sigmoid(&raw.narrow(1, 0, 3)?)?.affine(2.0, -1.0)?; // in (-1, 1)
        let shift = (raw.narrow(1, 3, 3)?.tanh()? * self.eps)?;
        let (rm, rs) = ((200.0 * self.eps).min(0.2), (500.0 * self.eps).min(0.5));
        let mu = stats.narrow(1, 0, 3)?;
        let sd = stats.narrow(1, 3, 3)?;
        let mu_adv = ((&mu * (scale.affine(rm, 1.0))?)? + shift)?;
        let sd_adv = (&sd * scale.affine(rs, 1.0)?)?.clamp(MIN_STD, f64::INFINITY)?;
        let delta = (Tensor::cat(&[mu_adv, sd_adv], 1)? - stats)?;
        let refined = (&delta + (self.gcn.forward(&delta, feats, adj)? * GCN_RESIDUAL)?)?
            .clamp(-self.eps, self.eps)?;
        stats + grad_reverse(&refined)?
    }
}

/// Mask-aware AdaIN in painter's order: each object region is renormalised from its own
/// statistics to the target ones (clamped to ±3); pixels outside every region are kept.
/// `targets` holds one `6` row per object (`μ, σ`), `masks` one `H × W` 0/1 tensor each.
pub fn apply_adain(
    img: &Tensor,
    masks: &[Tensor],
    areas: &[usize],
    targets: &Tensor,
) -> Result<Tensor> {
    let mut out = img.clone();
    for (k, m) in masks.iter().enumerate() {
        let src = region_stats(img, m, areas[k])?;
        let (mu_s, sd_s) = (
            src.narrow(0, 0, 3)?.reshape((3, 1, 1))?,
            src.narrow(0, 3, 3)?.reshape((3, 1, 1))?,
        );
        let t = targets.get(k)?;
        let (mu_t, sd_t) = (
            t.narrow(0, 0, 3)?.reshape((3, 1, 1))?,
            t.narrow(0, 3, 3)?.reshape((3, 1, 1))?,
        );
        let styled = img
            .broadcast_sub(&mu_s)?
            .broadcast_div(&sd_s)?
            .broadcast_mul(&sd_t)?
            .broadcast_add(&mu_t)?
            .clamp(-3.0, 3.0)?;
        let m = m.unsqueeze(0)?;
        out = (out.broadcast_mul(&m.affine(-1.0, 1.0)?)? + styled.broadcast_mul(&m)?)?;
    }
    Ok(out)
}
