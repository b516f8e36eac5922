//! AdamW with parameter groups and cosine schedules (`torch.optim.AdamW` + SAM 2's
//! `CosineParamScheduler`), with its state exposed so checkpoints resume exactly.
use std::collections::BTreeMap;

use candle_core::{Tensor, Var};

use crate::{Error, Result};

/// One learning-rate group: cosine from `lr_start` to `lr_end` over the run, after an
/// optional linear warm-up.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Group {
    pub lr_start: f64,
    pub lr_end: f64,
    pub weight_decay: f64,
    /// Steps of linear warm-up (the rate is scaled by `(step + 1) / warmup`).
    pub warmup: usize,
}

impl Group {
    /// Learning rate at `step` (0-based) of `total`.
    pub fn lr(&self, step: usize, total: usize) -> f64 {
        let t = step as f64 / total.max(1) as f64;
        let cos = self.lr_end + 0.5 * (self.lr_start - self.lr_end) * (1.0 + (std::f64::consts::PI * t).cos());
        if step < self.warmup {
            cos * (step + 1) as f64 / self.warmup as f64
        } else {
            cos
        }
    }
}

pub struct Slot {
    pub name: String,
    pub var: Var,
    pub group: Group,
    pub m: Tensor,
    pub v: Tensor,
}

pub struct AdamW {
    pub slots: Vec<Slot>,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Optimiser steps taken.
    pub t: usize,
}

impl AdamW {
    pub fn new(params: Vec<(String, Var, Group)>) -> Result<Self> {
        let slots = params
            .into_iter()
            .map(|(name, var, group)| {
                let z = var.as_tensor().zeros_like()?;
                Ok(Slot {
                    name,
                    var,
                    group,
                    m: z.clone(),
                    v: z,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            slots,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            t: 0,
        })
    }

    /// One update with the given gradients (by parameter name), after clipping their global
    /// L2 norm to `clip` (if positive). `total` is the run's step count for the schedules.
    /// Returns the gradient norm before clipping.
    pub fn step(
        &mut self,
        grads: &BTreeMap<String, Tensor>,
        clip: f64,
        total: usize,
    ) -> Result<f64> {
        let mut sq = 0f64;
        for g in grads.values() {
            sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
        let norm = sq.sqrt();
        if !norm.is_finite() {
            return Err(Error::Diverged(format!("the gradient norm is {norm} (lower the learning rates)")));
        }
        let scale = if clip > 0.0 && norm > clip {
            clip / (norm + 1e-6)
        } else {
            1.0
        };
        let step = self.t;
        self.t += 1;
        let t = self.t as i32;
        let (b1, b2) = (self.beta1, self.beta2);
        for s in &mut self.slots {
            let Some(g) = grads.get(&s.name) else {
                continue;
            };
            let g = (g.detach() * scale)?;
            let lr = s.group.lr(step, total);
            s.m = ((&s.m * b1)? + (&g * (1.0 - b1))?)?;
            s.v = ((&s.v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let mhat = (&s.m / (1.0 - b1.powi(t)))?;
            let vhat = (&s.v / (1.0 - b2.powi(t)))?;
            let upd = (mhat / (vhat.sqrt()? + self.eps)?)?;
            let p = s.var.as_tensor();
            let decayed = (p * (1.0 - lr * s.group.weight_decay))?;
            s.var.set(&(decayed - (upd * lr)?)?.detach())?;
            s.m = s.m.detach();
            s.v = s.v.detach();
        }
        Ok(norm)
    }
}

#[cfg(test)]
mod tests {
    use super::Group;

    #[test]
    fn cosine_schedule_with_warmup_by_hand() {
        let g = Group { lr_start: 1.0, lr_end: 0.0, weight_decay: 0.0, warmup: 4 };
        // Cosine alone: 1 at the start, 0.5 half-way, cos(π/4) mapped at a quarter.
        let c = |t: f64| 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
        let want = [c(0.0) * 0.25, c(0.01) * 0.5, c(0.02) * 0.75, c(0.03), c(0.04)];
        for (step, w) in want.iter().enumerate() {
            assert!((g.lr(step, 100) - w).abs() < 1e-12, "step {step}: {} vs {w}", g.lr(step, 100));
        }
        assert!((g.lr(50, 100) - 0.5).abs() < 1e-12);
        let flat = Group { warmup: 0, ..g };
        assert_eq!(flat.lr(0, 100), 1.0);
    }
}
