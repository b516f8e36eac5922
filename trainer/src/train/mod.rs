//! `trainer train`: RUAC's style–deformation adversarial training (paper §3; reference
//! trainer `ruac/core/pipeline.py` with `ruac/configs/sam2_ruac_train.yaml`) on the CPU.
//!
//! Every sample, prompt and Weibull draw of step `t` is a function of `(seed, t)`, so a run's
//! position is its step count: a checkpoint holds the parameters, the optimiser moments and
//! that count, and `--resume` continues with exactly the losses of an uninterrupted run.
pub mod base;
pub mod ckpt;
pub mod config;
pub mod data;
pub mod dist;
pub mod embed_cache;
pub mod head_init;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Tensor};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ruac_core::checkpoint::{
    Checkpoint, ATTACKER_PREFIXES, VIDEO_ONLY_PREFIXES,
};
use ruac_core::method::attack::{Attackers, AttackersConfig};
use ruac_core::method::params::ParamStore;
use ruac_core::method::train::{Sample, StepStats, TrainStep};
use ruac_core::rng::Pcg32;

use base::BaseConfig;

use config::TrainConfig;
use ruac_core::method::optim::{AdamW, Group};
use ruac_core::method::schedule::{self, ParamRole};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training configuration (TOML), e.g. configs/ruac-micro.toml.
    #[arg(long)]
    pub config: PathBuf,
    /// Run folder: checkpoints/, log.jsonl, config.toml.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue from the newest checkpoint in `--out`.
    #[arg(long)]
    pub resume: bool,
    /// Stop after this many optimiser steps in this invocation (the schedule still spans
    /// the configured total); for tests and time-boxed sessions.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// `cpu` or `cuda:N` (needs the `cuda` feature); a device that is missing is an error.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// What sums the gradients of several processes (mpirun, srun, torchrun): `auto` is
    /// NCCL on CUDA in a `--features nccl` build and MPI otherwise.
    #[arg(long, value_enum, default_value = "auto")]
    pub dist_backend: dist::Backend,
    /// Hide the progress bar (logs still go to log.jsonl).
    #[arg(long)]
    pub quiet: bool,
    /// Override a config value, e.g. `--set train.steps=8 --set model.init=x.safetensors`
    /// (repeatable; saved into the run's config.toml, so `--resume` needs the same ones).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// The model configuration of a run.
/// Starting tensors: the init checkpoint's where names and shapes match, fresh ones for the
/// rest (the Bayesian head on a plain SAM 2.1 or SAM 1 base; everything when training from
/// scratch).
fn initial_tensors(
    cfg: &TrainConfig,
    mcfg: &BaseConfig,
    attackers: &AttackersConfig,
) -> Result<(BTreeMap<String, Tensor>, Vec<String>)> {
    let mut fresh = mcfg.fresh_params(cfg.train.seed)?;
    fresh.extend(Attackers::init_params(
        mcfg.geometry(),
        attackers,
        cfg.train.seed ^ 0xa77a,
    )?);
    let mut reused = vec![];
    if let Some(path) = &cfg.model.init {
        let ck = Checkpoint::load(path)
            .with_context(|| format!("loading init weights {}", path.display()))?;
        for (name, t) in fresh.iter_mut() {
            if let Some(src) = ck.tensors.get(name) {
                if src.dims() != t.dims() {
                    bail!(
                        "init weights {}: {name} has shape {:?}, the {} model needs {:?}",
                        path.display(),
                        src.dims(),
                        mcfg.name(),
                        t.dims()
                    );
                }
                let v = src.to_dtype(DType::F32)?;
                if v.flatten_all()?
                    .to_vec1::<f32>()?
                    .iter()
                    .any(|x| !x.is_finite())
                {
                    bail!(
                        "init weights {}: {name} has NaN or infinite values",
                        path.display()
                    );
                }
                *t = v;
                reused.push(name.clone());
            }
        }
        if reused.is_empty() {
            bail!(
                "init weights {} share no tensor with the {} model",
                path.display(),
                mcfg.name()
            );
        }
    }
    Ok((fresh, reused))
}

fn group_of(name: &str, cfg: &TrainConfig, dims: usize) -> Group {
    let wd = if dims <= 1 { 0.0 } else { cfg.train.weight_decay };
    let lr = &cfg.lr;
    match ParamRole::of(name) {
        ParamRole::Attacker => lr.group(lr.attackers, wd),
        ParamRole::BayesHead => lr.group(lr.head, wd),
        ParamRole::ImageEncoder => lr.group(lr.vision, wd),
        ParamRole::Base => lr.group(lr.base, wd),
    }
}

/// One step's logged values: the method's [`StepStats`] (losses, diagnostics, where the
/// time went; `tools/bench_train.py` summarises the times) with the learning rates and the
/// step's wall time.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct StepLog {
    pub step: usize,
    #[serde(flatten)]
    pub stats: StepStats,
    pub lr_head: f64,
    pub lr_base: f64,
    pub seconds: f64,
}

pub fn run(args: TrainArgs) -> Result<()> {
    let cfg = TrainConfig::load(&args.config, &args.overrides)?;
    // Every tensor of a step is created on the device of the image or the parameters, so
    // the same code trains on the CPU or on CUDA (`--features cuda`); sampling, prompts and
    // Weibull uniforms are drawn on the host and uploaded, keeping runs identical across
    // devices up to float rounding.
    // Several processes (mpirun, srun): rank 0 writes; gradients are summed every step.
    let launch = dist::Launch::from_env()?;
    let main = launch.is_main();
    // `cuda` alone: this process's GPU, cuda:<local rank>.
    let spec = if args.device.trim() == "cuda" { format!("cuda:{}", launch.local_rank) } else { args.device.clone() };
    let dev = crate::device::candle_device(&spec)?;
    let mut replicas = dist::gradient_sum(&launch, args.dist_backend, &dev)?;
    if launch.world > 1 {
        // One write, so that the launcher's forwarding keeps the line whole.
        let line = format!("rank {}/{} ({}, pid {}) on {spec}\n", launch.rank, launch.world, launch.launcher, std::process::id());
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
    let mcfg = BaseConfig::from_train(&cfg)?;
    let acfg = AttackersConfig {
        style: cfg.attack.style,
        deform: cfg.attack.deform,
        eps_style: cfg.attack.eps_style,
        eps_deform: cfg.attack.eps_deform,
    };
    let ck_dir = args.out.join("checkpoints");
    std::fs::create_dir_all(&ck_dir).with_context(|| format!("creating {}", ck_dir.display()))?;
    let cfg_text = cfg.to_toml()?;

    let (mut tensors, reused) = initial_tensors(&cfg, &mcfg, &acfg)?;
    let source = data::Source::open(&cfg, mcfg.image_size())?;
    let prep = mcfg.preprocessing();
    if cfg.model.head_init == "hypernetwork" && !args.resume {
        let path = cfg.model.init.as_ref().ok_or_else(|| anyhow!("model.head_init needs model.init"))?;
        let plain = mcfg.build_plain(&Checkpoint::load(path)?).with_context(|| {
            format!("model.head_init = \"hypernetwork\": {} as a plain SAM model", path.display())
        })?;
        let fit = head_init::HeadFit {
            plain: &plain,
            stream: &source,
            prep,
            prompts: &cfg.loss.prompts,
            samples: cfg.model.head_init_samples,
            seed: cfg.train.seed,
        };
        let r = head_init::fit(&fit, &mut tensors)?;
        eprintln!(
            "Bayesian head fitted to the hypernetwork on {} mask tokens: R² {:.3}, sign agreement {:.3}",
            r.tokens, r.r2, r.sign_agreement
        );
    }
    let reused_set: std::collections::HashSet<&str> = reused.iter().map(|s| s.as_str()).collect();
    let store = ParamStore::new_on(tensors, |n| schedule::is_trained(n, cfg.model.freeze_image_encoder, reused_set.contains(n)), &dev)?;
    let model = mcfg.build(&store)?;
    let attackers = Attackers::new(mcfg.geometry(), &acfg, &store)?;
    let cache = embed_cache::EmbedCache::open(&cfg, &model)?;
    let mut opt = AdamW::new(
        store
            .trained()
            .into_iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    v.clone(),
                    group_of(n, &cfg, v.as_tensor().rank()),
                )
            })
            .collect(),
    )?;

    let mut start = 0usize;
    if args.resume {
        let (path, l) = ckpt::load_latest(&ck_dir, |m| eprintln!("{m}"))?;
        if l.meta.config != cfg_text {
            bail!("--resume: {} was written with a different configuration; use the run's config.toml", path.display());
        }
        store.assign(&l.params)?;
        for s in &mut opt.slots {
            s.m =
                l.m.get(&s.name)
                    .ok_or_else(|| anyhow!("checkpoint lacks optimiser state for {}", s.name))?
                    .to_device(&dev)?;
            s.v =
                l.v.get(&s.name)
                    .ok_or_else(|| anyhow!("checkpoint lacks optimiser state for {}", s.name))?
                    .to_device(&dev)?;
        }
        opt.t = l.meta.step;
        start = l.meta.step;
        eprintln!("resuming {} at step {start}", path.display());
    } else if !ckpt::list(&ck_dir).is_empty() {
        bail!(
            "{} already has checkpoints: pass --resume to continue, or choose another --out",
            ck_dir.display()
        );
    } else if !reused.is_empty() {
        eprintln!(
            "initialised {} tensors from {}",
            reused.len(),
            cfg.model
                .init
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    if main {
        ckpt::write_atomic(&args.out.join("config.toml"), cfg_text.as_bytes())?;
    }

    let total = cfg.train.steps;
    let end = args
        .max_steps
        .map(|m| (start + m).min(total))
        .unwrap_or(total);
    let log_path = args.out.join("log.jsonl");
    let mut log = if main {
        truncate_log(&log_path, start)?;
        Some(std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?)
    } else {
        None
    };

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // A second handler registration fails inside one process (tests); that is harmless.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let pb = if args.quiet || !main {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total as u64)
    };
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}<{eta_precise}] {bar:30} {pos}/{len} {msg}",
        )
        .map_err(|e| anyhow!("{e}"))?,
    );
    pb.set_position(start as u64);

    let save = |step: usize, opt: &AdamW| -> Result<()> {
        let meta = ckpt::Meta {
            step,
            seed: cfg.train.seed,
            samples_seen: (step * cfg.train.grad_accum * launch.world) as u64,
            config: cfg_text.clone(),
            crc32: None,
        };
        let moments: Vec<(String, Tensor, Tensor)> = opt
            .slots
            .iter()
            .map(|s| (s.name.clone(), s.m.clone(), s.v.clone()))
            .collect();
        ckpt::save(
            &ck_dir.join(format!("step_{step:07}.safetensors")),
            &meta,
            &store.values(),
            &moments,
        )?;
        ckpt::prune(&ck_dir, cfg.train.keep_checkpoints)
    };

    let stepper = TrainStep {
        model: &model,
        attackers: &attackers,
        store: &store,
        loss: &cfg.loss,
        schedule: &cfg.weights,
        seed: cfg.train.seed,
        grad_accum: cfg.train.grad_accum,
        clip_grad_norm: cfg.train.clip_grad_norm,
    };
    let s = mcfg.image_size();
    let mut sample = |index: u64, rng: &mut Pcg32| -> Result<Sample> {
        let (img, masks, key) = source.sample(index, rng)?;
        let image = Tensor::from_vec(prep.apply(&img, s), (1, 3, s, s), &dev)?;
        let (encoded, cache_hit) = match (&cache, key) {
            (Some(c), Some(key)) => {
                let (enc, hit) = c.encode(&model, key, &image)?;
                (Some(enc), hit)
            }
            _ => (None, false),
        };
        Ok(Sample { image, masks, encoded, cache_hit })
    };
    for step in start..end {
        let t0 = Instant::now();
        let stats = stepper.run(step, total, &mut opt, &mut sample, replicas.as_mut())?;
        let rec = StepLog {
            step,
            stats,
            lr_head: cfg.lr.group(cfg.lr.head, 0.0).lr(step, total),
            lr_base: cfg.lr.group(cfg.lr.base, 0.0).lr(step, total),
            seconds: t0.elapsed().as_secs_f64(),
        };
        if let Some(log) = &mut log {
            writeln!(log, "{}", serde_json::to_string(&rec)?)?;
        }
        pb.set_message(format!(
            "loss {:.3} seg {:.3} adv {:.3} cal {:.3} iou {:.2}",
            rec.stats.loss, rec.stats.clean_seg, rec.stats.adv_seg, rec.stats.cal, rec.stats.iou_clean
        ));
        pb.inc(1);
        let done = step + 1;
        let mut interrupted = stop.load(Ordering::SeqCst);
        if launch.world > 1 {
            // Every rank stops after the same step when any was interrupted.
            let flag = Tensor::new(&[interrupted as u8 as f32], &dev)?;
            interrupted = replicas.sum(flag)?.to_vec1::<f32>()?[0] > 0.0;
        }
        if main && (done % cfg.train.checkpoint_every == 0 || done == end || interrupted) {
            save(done, &opt)?;
        }
        if interrupted {
            pb.abandon_with_message(format!("interrupted: checkpoint saved at step {done}"));
            std::process::exit(130);
        }
    }
    pb.finish();
    Ok(())
}

/// Drops log lines of steps at or after `start` (they are recomputed on resume).
fn truncate_log(path: &Path, start: usize) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<StepLog>(l)
                .map(|r| r.step < start)
                .unwrap_or(false)
        })
        .collect();
    let mut out = kept.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    // Atomic: a kill while rewriting must not lose the lines of earlier steps.
    ckpt::write_atomic(path, out.as_bytes())
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A training checkpoint (checkpoints/step_*.safetensors) or a run folder (its newest).
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
    /// f32 or f16.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
}

/// Writes inference weights: the model's tensors under their checkpoint names, without the
/// attackers and the frozen memory-encoder copies, loadable by ruac-core and the web demo.
pub fn export(args: ExportArgs) -> Result<()> {
    let path = if args.checkpoint.is_dir() {
        ckpt::list(&args.checkpoint.join("checkpoints"))
            .pop()
            .map(|(_, p)| p)
            .ok_or_else(|| anyhow!("no checkpoint under {}", args.checkpoint.display()))?
    } else {
        args.checkpoint.clone()
    };
    let dtype = match args.dtype.as_str() {
        "f32" => DType::F32,
        "f16" => DType::F16,
        other => bail!("--dtype {other}: use f32 or f16"),
    };
    let l = ckpt::load(&path)?;
    let cfg: TrainConfig =
        toml::from_str(&l.meta.config).context("the checkpoint's configuration")?;
    let mcfg = BaseConfig::from_train(&cfg)?;
    let mut out = BTreeMap::new();
    for (k, t) in &l.params {
        if ATTACKER_PREFIXES
            .iter()
            .chain(VIDEO_ONLY_PREFIXES)
            .any(|p| k.starts_with(p))
        {
            continue;
        }
        out.insert(k.clone(), t.to_dtype(dtype)?);
    }
    let mut md = mcfg.export_metadata()?;
    md.insert("ruac_trained_steps".to_string(), l.meta.step.to_string());
    ckpt::write_safetensors_atomic(&args.out, &out, md)?;
    // Prove the file loads as an inference model before reporting success.
    let ck = Checkpoint::load(&args.out)?;
    mcfg.check_loads(&ck)
        .with_context(|| format!("the exported {} does not load", args.out.display()))?;
    eprintln!(
        "wrote {} ({} tensors, {}, {} model, image size {})",
        args.out.display(),
        out.len(),
        args.dtype,
        mcfg.name(),
        mcfg.image_size()
    );
    Ok(())
}
