//! Both attackers together (paper §3.3, `ruac/core/pipeline.py`): "parallel predict,
//! sequential apply" — each predicts its parameters from the same detached clean features,
//! then the style change is applied, then the deformation. Their outputs pass through
//! gradient-reversal layers, so the training loss they help build is one they are trained to
//! raise. Training-only: none of these tensors is exported.
use std::collections::BTreeMap;

use candle_core::{Device, Tensor};

use super::base::AttackGeometry;
use super::deform::{warp_objects, DeformAttacker};
use super::params::ParamStore;
use super::style::{apply_adain, region_stats, ObjectGraph, StyleAttacker};
use crate::model::init::{init_tensor, shapes_of};
use crate::rng::Pcg32;
use crate::Result;

/// Which attackers run and their budgets (ε_style 0.3, ε_deform 0.15 in the release).
#[derive(Debug, Clone)]
pub struct AttackersConfig {
    pub style: bool,
    pub deform: bool,
    pub eps_style: f64,
    pub eps_deform: f64,
}

/// An adversarial sample: the attacked image (tracked: gradients reach the attackers) and
/// the object masks warped with it.
pub struct Attacked {
    pub image: Tensor,
    pub masks: Vec<Vec<bool>>,
}

pub struct Attackers {
    pub style: Option<StyleAttacker>,
    pub deform: Option<DeformAttacker>,
    image_size: usize,
}

impl Attackers {
    /// Fresh parameters: the attackers' output layers at std 0.01 (the attack starts near
    /// zero), the rest by the model's rules; memory-encoder copies are overwritten by the
    /// checkpoint's when it has them (SAM 2.1; a SAM 1 base has no memory encoder).
    pub fn init_params(
        geom: AttackGeometry,
        a: &AttackersConfig,
        seed: u64,
    ) -> Result<BTreeMap<String, Tensor>> {
        let d = geom.dim;
        let stride = geom.stride();
        let mut shapes = BTreeMap::new();
        if a.style {
            shapes.extend(shapes_of(|vb| {
                StyleAttacker::new(d, a.eps_style, vb).map(|_| ())
            })?);
        }
        if a.deform {
            shapes.extend(shapes_of(|vb| {
                DeformAttacker::new(d, stride, a.eps_deform, vb).map(|_| ())
            })?);
        }
        let mut rng = Pcg32::new(seed);
        let mut out = BTreeMap::new();
        for (name, dims) in shapes {
            let t = if (name.starts_with("style_attacker.") || name.starts_with("deform_attacker."))
                && dims.len() > 1
            {
                let n: usize = dims.iter().product();
                let v: Vec<f32> = (0..n)
                    .map(|_| {
                        let (u1, u2) = (1.0 - rng.uniform(), rng.uniform());
                        0.01 * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
                    })
                    .collect();
                Tensor::from_vec(v, dims.as_slice(), &Device::Cpu)?
            } else if name.ends_with(".gamma") {
                // SAM 2's CXBlock layer scale starts at 1e-6.
                Tensor::full(1e-6f32, dims.as_slice(), &Device::Cpu)?
            } else {
                init_tensor(&name, &dims, &mut rng)?
            };
            out.insert(name, t);
        }
        Ok(out)
    }

    pub fn new(geom: AttackGeometry, a: &AttackersConfig, store: &ParamStore) -> Result<Self> {
        let vb = store.vb("");
        let d = geom.dim;
        Ok(Self {
            style: if a.style {
                Some(StyleAttacker::new(d, a.eps_style, vb.clone())?)
            } else {
                None
            },
            deform: if a.deform {
                Some(DeformAttacker::new(d, geom.stride(), a.eps_deform, vb)?)
            } else {
                None
            },
            image_size: geom.image_size,
        })
    }

    pub fn any(&self) -> bool {
        self.style.is_some() || self.deform.is_some()
    }

    /// Attacks a preprocessed `1, 3, S, S` image with object masks `S × S`; `clean_embed` is
    /// its image embedding `1, D, g, g` (`BranchLosses::image_embed` of the clean branch).
    pub fn attack(
        &self,
        clean_embed: &Tensor,
        image: &Tensor,
        masks: &[Vec<bool>],
        _rng: &mut Pcg32,
    ) -> Result<Attacked> {
        let s = self.image_size;
        let dev = image.device().clone();
        let feat = clean_embed.detach();
        let (_, d, g, _) = feat.dims4()?;
        let mts: Vec<Tensor> = masks
            .iter()
            .map(|m| {
                Tensor::from_vec(
                    m.iter().map(|&v| v as u8 as f32).collect::<Vec<f32>>(),
                    (s, s),
                    &dev,
                )
            })
            .collect::<candle_core::Result<_>>()?;
        let areas: Vec<usize> = masks
            .iter()
            .map(|m| m.iter().filter(|&&v| v).count())
            .collect();
        let mut img = image.squeeze(0)?;

        if let Some(style) = &self.style {
            // Nodes: the objects, then the background (one minus their union).
            let bg: Vec<bool> = (0..s * s).map(|i| !masks.iter().any(|m| m[i])).collect();
            let bg_t = Tensor::from_vec(
                bg.iter().map(|&v| v as u8 as f32).collect::<Vec<f32>>(),
                (s, s),
                &dev,
            )?;
            let mut node_masks = mts.clone();
            node_masks.push(bg_t);
            let mut node_areas = areas.clone();
            node_areas.push(bg.iter().filter(|&&v| v).count());
            // Masked average pooling of the frozen features on the feature grid.
            let mut feats = vec![];
            for m in &node_masks {
                let mg = super::warp::resize_bilinear(m, g, g)?; // g,g
                let n = mg.sum_all()?.clamp(1e-6, f64::INFINITY)?;
                let pooled = feat
                    .squeeze(0)?
                    .reshape((d, g * g))?
                    .broadcast_mul(&mg.reshape((1, g * g))?)?
                    .sum(1)?
                    .broadcast_div(&n)?;
                feats.push(pooled);
            }
            let feats = Tensor::stack(&feats, 0)?; // N, D
            let fv: Vec<Vec<f32>> = feats.to_vec2::<f32>()?;
            let graph = ObjectGraph::build(masks, &fv, s, s, &style.graph);
            let stats = Tensor::stack(
                &node_masks
                    .iter()
                    .zip(&node_areas)
                    .map(|(m, &a)| region_stats(&img.detach(), m, a))
                    .collect::<candle_core::Result<Vec<_>>>()?,
                0,
            )?;
            let adv = style.propose(&stats, &feats, &graph.tensor(&dev)?)?;
            // The background node informs the objects through the graph but is not restyled.
            img = apply_adain(&img, &mts, &areas, &adv.narrow(0, 0, masks.len())?)?;
        }

        let mut out_masks = masks.to_vec();
        if let Some(deform) = &self.deform {
            let mk = Tensor::stack(&mts, 0)?.unsqueeze(1)?; // K,1,S,S
            let off = deform.offsets(&feat, &mk)?;
            let pix = deform.pixel_offsets(&off, s)?;
            let (warped, soft) = warp_objects(&img, &mk, &pix)?;
            img = warped;
            let soft = soft.detach().flatten_from(1)?.to_vec2::<f32>()?;
            out_masks = soft
                .iter()
                .map(|m| m.iter().map(|&v| v >= 0.5).collect())
                .collect();
        }
        Ok(Attacked {
            image: img.unsqueeze(0)?,
            masks: out_masks,
        })
    }
}
