//! One optimiser step of RUAC's training (paper §3.5; the train loop of
//! `ruac/core/pipeline.py` with `ruac/configs/sam2_ruac_train.yaml`): for each accumulated
//! sample, the clean branch (+ the KL once the curriculum turns it on), then, on adversarial
//! steps, the attackers and the adversarial branch (+ KL + UAA), the summed loss's backward
//! pass, and one AdamW update with global-norm clipping.
//!
//! Every sample, prompt and Weibull draw of step `t` is a function of `(seed, t)`
//! ([`sample_rng`]), so a run's position is its step count and a resumed run repeats an
//! uninterrupted one exactly. The caller owns data loading (through [`Sample`]), logging and
//! checkpoints.
//!
//! Data parallel (as PyTorch's DDP): with `world` processes ([`GradientSum`]), rank `r`
//! takes samples `r * grad_accum ..` of the step's `world * grad_accum`, and the summed
//! gradients (head, decoder, both attackers) and statistics are those of one process
//! accumulating all of them, up to float summation order.
use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::Tensor;

use super::attack::Attackers;
use super::base::Encoded;
use super::optim::AdamW;
use super::params::ParamStore;
use super::schedule::WeightSchedule;
use super::step::{run_branch, run_branch_encoded, BranchConfig};
use crate::predictor::BaseModel;
use crate::rng::Pcg32;
use crate::Error;

/// The random stream of sample `index` (step × accumulation + micro-step) of a run.
pub fn sample_rng(seed: u64, index: u64) -> Pcg32 {
    Pcg32::new(seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// The processes of a data-parallel run and how their gradients are summed (the trainer's
/// MPI and NCCL backends; [`Solo`] for one process).
pub trait GradientSum {
    /// This process's index, `0..world`.
    fn rank(&self) -> usize;
    /// The number of processes.
    fn world(&self) -> usize;
    /// The element-wise sum of every rank's `flat` (a 1-D f32 tensor on the parameters'
    /// device, the same length on every rank), returned on every rank.
    fn sum(&mut self, flat: Tensor) -> Result<Tensor, Error>;
}

/// A run of one process: nothing to sum.
pub struct Solo;

impl GradientSum for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn world(&self) -> usize {
        1
    }
    fn sum(&mut self, flat: Tensor) -> Result<Tensor, Error> {
        Ok(flat)
    }
}

/// One training sample as the data source hands it over.
pub struct Sample {
    /// The preprocessed image `1, 3, S, S`, on the parameters' device.
    pub image: Tensor,
    /// Its objects, row-major `S × S`.
    pub masks: Vec<Vec<bool>>,
    /// The clean branch's encoding when the caller has it already (a frozen encoder's cached
    /// embedding); `None` encodes the image.
    pub encoded: Option<Encoded>,
    /// Whether `encoded` came from a cache (counted in [`StepStats::cache_hits`]).
    pub cache_hit: bool,
}

/// Where a step's time went (seconds): sampling and preprocessing, the attackers' forward,
/// both branches' forward with their losses, the backward pass (and gradient accumulation),
/// the optimiser.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct StepTimes {
    pub data: f64,
    pub attack: f64,
    pub forward: f64,
    pub backward: f64,
    pub optim: f64,
}

/// A step's losses and diagnostics, averaged over its accumulated samples.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepStats {
    pub loss: f64,
    pub clean_seg: f64,
    pub kl: f64,
    pub adv_seg: f64,
    pub cal: f64,
    pub iou_clean: f64,
    pub iou_adv: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Samples whose clean encoding came from a cache.
    #[serde(default)]
    pub cache_hits: usize,
    #[serde(default)]
    pub time: StepTimes,
}

/// Everything a step reads; the trained parameters live in `store` and change with
/// [`TrainStep::run`]'s update.
pub struct TrainStep<'a> {
    pub model: &'a BaseModel,
    pub attackers: &'a Attackers,
    pub store: &'a ParamStore,
    pub loss: &'a BranchConfig,
    pub schedule: &'a WeightSchedule,
    pub seed: u64,
    /// Samples per optimiser step.
    pub grad_accum: usize,
    /// Global gradient-norm clip (0: none).
    pub clip_grad_norm: f64,
}

fn lap(t: &mut Instant) -> f64 {
    let now = Instant::now();
    let d = (now - *t).as_secs_f64();
    *t = now;
    d
}

impl TrainStep<'_> {
    /// Runs step `step` of `total`: `sample(index, rng)` gives sample `index` (drawing from
    /// `rng` where it needs randomness), `replicas` sums the gradients across processes
    /// ([`Solo`]: one), and `opt` takes the update. The error type is the caller's (its data
    /// loading fails in its own terms).
    pub fn run<E>(
        &self,
        step: usize,
        total: usize,
        opt: &mut AdamW,
        sample: &mut dyn FnMut(u64, &mut Pcg32) -> std::result::Result<Sample, E>,
        replicas: &mut dyn GradientSum,
    ) -> std::result::Result<StepStats, E>
    where
        E: From<Error> + From<candle_core::Error>,
    {
        let plan = self.schedule.plan(step, total, self.attackers.any());
        let w = self.schedule;
        let accum = self.grad_accum;
        let (rank, world) = (replicas.rank(), replicas.world());
        // The step's samples over all processes: every average is over these.
        let global = accum * world;
        let mut grads: BTreeMap<String, Tensor> = BTreeMap::new();
        let mut rec = StepStats::default();
        let mut tm = StepTimes::default();
        for micro in 0..accum {
            let mut t = Instant::now();
            let index = (step * global + rank * accum + micro) as u64;
            let mut rng = sample_rng(self.seed, index);
            let s = sample(index, &mut rng)?;
            tm.data += lap(&mut t);
            rec.cache_hits += s.cache_hit as usize;
            let clean = match &s.encoded {
                Some(enc) => run_branch_encoded(self.model, enc, &s.masks, self.loss, false, &mut rng)?,
                None => run_branch(self.model, &s.image, &s.masks, self.loss, false, &mut rng)?,
            };
            let mut loss = (&clean.seg * plan.clean_weight)?;
            rec.clean_seg += clean.seg.to_scalar::<f32>()? as f64 / global as f64;
            rec.iou_clean += clean.iou_first as f64 / global as f64;
            if let (true, Some(kl)) = (plan.kl_on, &clean.kl) {
                loss = (loss + (kl * w.kl)?)?;
                rec.kl += kl.to_scalar::<f32>()? as f64 / global as f64;
            }
            tm.forward += lap(&mut t);
            if plan.adv_on {
                let adv = self.attackers.attack(&clean.image_embed, &s.image, &s.masks, &mut rng)?;
                tm.attack += lap(&mut t);
                let b = run_branch(self.model, &adv.image, &adv.masks, self.loss, true, &mut rng)?;
                let mut a = b.seg.clone();
                if let Some(kl) = &b.kl {
                    a = (a + (kl * w.kl)?)?;
                }
                if let Some(cal) = &b.cal {
                    a = (a + (cal * w.cal)?)?;
                    rec.cal += cal.to_scalar::<f32>()? as f64 / global as f64;
                }
                rec.adv_seg += b.seg.to_scalar::<f32>()? as f64 / global as f64;
                rec.iou_adv += b.iou_first as f64 / global as f64;
                loss = (loss + (a * w.adv)?)?;
                tm.forward += lap(&mut t);
            }
            rec.loss += loss.to_scalar::<f32>()? as f64 / global as f64;
            let g = (loss / global as f64)?.backward()?;
            for (name, var) in self.store.trained() {
                if let Some(gv) = g.get(var.as_tensor()) {
                    // Detached: a gradient keeps the step's whole graph alive otherwise, and
                    // the optimiser's moments would chain every step's graph together.
                    let gv = gv.detach();
                    let e = match grads.remove(name) {
                        Some(e) => (&e + &gv)?,
                        None => (gv.zeros_like()? + &gv)?,
                    };
                    grads.insert(name.to_string(), e);
                }
            }
            tm.backward += lap(&mut t);
        }
        if world > 1 {
            sum_across(self.store, &mut grads, &mut rec, replicas)?;
        }
        if !rec.loss.is_finite() {
            return Err(Error::Diverged(format!(
                "step {step}: the loss is {} (lower the learning rates)",
                rec.loss
            ))
            .into());
        }
        let t_opt = Instant::now();
        rec.grad_norm = opt.step(&grads, self.clip_grad_norm, total)?;
        tm.optim = t_opt.elapsed().as_secs_f64();
        rec.time = tm;
        Ok(rec)
    }
}

/// The statistics summed across processes with the gradients (each already divided by the
/// step's global sample count), in this order.
fn stat_fields(rec: &mut StepStats) -> [&mut f64; 7] {
    [&mut rec.loss, &mut rec.clean_seg, &mut rec.kl, &mut rec.adv_seg, &mut rec.cal, &mut rec.iou_clean, &mut rec.iou_adv]
}

/// Sums `grads` and `rec` across the processes in one flat tensor: every trained parameter
/// in the store's order (zeros where this rank has no gradient), one presence flag per
/// parameter (a parameter with a gradient on no rank stays without one, as in one process),
/// then the statistics and the cache hits.
fn sum_across(store: &ParamStore, grads: &mut BTreeMap<String, Tensor>, rec: &mut StepStats, replicas: &mut dyn GradientSum) -> Result<(), Error> {
    let trained = store.trained();
    let mut parts = Vec::with_capacity(trained.len() + 2);
    let mut present = Vec::with_capacity(trained.len());
    for (name, var) in &trained {
        let t = var.as_tensor();
        present.push(grads.contains_key(*name) as u8 as f32);
        parts.push(match grads.get(*name) {
            Some(g) => g.flatten_all()?,
            None => t.zeros_like()?.flatten_all()?,
        });
    }
    let device = trained.first().map(|(_, v)| v.as_tensor().device().clone()).unwrap_or(candle_core::Device::Cpu);
    let mut tail: Vec<f32> = present;
    tail.extend(stat_fields(rec).iter().map(|v| **v as f32));
    tail.push(rec.cache_hits as f32);
    parts.push(Tensor::from_vec(tail, trained.len() + 8, &device)?);
    let flat = replicas.sum(Tensor::cat(&parts, 0)?)?;
    let mut off = 0;
    grads.clear();
    let n_params: usize = trained.iter().map(|(_, v)| v.as_tensor().elem_count()).sum();
    let tail = flat.narrow(0, n_params, trained.len() + 8)?.to_vec1::<f32>()?;
    for (i, (name, var)) in trained.iter().enumerate() {
        let t = var.as_tensor();
        let n = t.elem_count();
        if tail[i] > 0.0 {
            grads.insert(name.to_string(), flat.narrow(0, off, n)?.reshape(t.shape())?);
        }
        off += n;
    }
    let stats = &tail[trained.len()..];
    for (field, v) in stat_fields(rec).into_iter().zip(stats) {
        *field = *v as f64;
    }
    rec.cache_hits = stats[7].round() as usize;
    Ok(())
}
