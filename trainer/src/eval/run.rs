//! `trainer eval`: the manifest's domains, each evaluated by `ruac_core::eval::domain` and
//! cached as JSON (so a killed run resumes), then the reports; and `trainer compare`.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ruac_core::data::{Dataset, SkipReport};
use ruac_core::eval::domain::{evaluate_domain, DomainSettings};
use ruac_core::eval::protocol::{PredictionSource, Protocol, SavedPredictions};
use ruac_core::eval::results::{DomainResult, EvalResults};
use ruac_core::metrics::object::MetricConfig;
use ruac_core::predictor::UncertaintyMode;

use super::manifest::Manifest;
use super::report::{self, CompareArgs};

#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// TOML manifest of domains (see docs/EVALUATION.md).
    #[arg(long)]
    pub manifest: PathBuf,
    /// Model checkpoint (SAM 2.1 or RUAC); or use --predictions.
    #[arg(long, conflicts_with = "predictions")]
    pub weights: Option<PathBuf>,
    #[arg(long)]
    pub config: Option<String>,
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Folder of saved predictions from another tool (layout in docs/EVALUATION.md).
    #[arg(long)]
    pub predictions: Option<PathBuf>,
    /// Prompt protocols: click1, click3, click5, box.
    #[arg(long, value_delimiter = ',', default_value = "click1,click3,click5,box")]
    pub prompts: Vec<String>,
    /// Monte Carlo samples of the uncertainty (0: analytic).
    #[arg(long, default_value_t = 20)]
    pub mc_samples: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// At most this many images per domain (the first ones, in file order).
    #[arg(long)]
    pub max_images: Option<usize>,
    /// At most this many objects per image (the first ones).
    #[arg(long)]
    pub max_objects: Option<usize>,
    /// PAvPU patch side in pixels.
    #[arg(long, default_value_t = 4)]
    pub pavpu_patch: usize,
    /// PAvPU: a patch is accurate when its pixel accuracy is at least this.
    #[arg(long, default_value_t = 0.5)]
    pub pavpu_accuracy: f64,
    /// PAvPU: a patch is certain when its mean uncertainty is below this (default: half the
    /// uncertainty's range, ln 2 / 2 for Monte Carlo entropy in nats, 0.5 otherwise).
    #[arg(long)]
    pub pavpu_threshold: Option<f64>,
    /// `cpu`, `cuda:N` (a `--features cuda` build), `wgpu` or `wgpu:N` (ruac-gpu natively).
    /// A device that is missing is an error. Results agree across devices up to float
    /// rounding, so cached domains are reused whichever device computed them.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Ignore cached per-domain results.
    #[arg(long)]
    pub fresh: bool,
    #[arg(long)]
    pub out: PathBuf,
}

/// The per-object metric settings of the command line.
fn domain_settings(args: &EvalArgs, unc_max: f64, key: &str) -> DomainSettings {
    let mut cfg = MetricConfig::default();
    cfg.pavpu.patch_size = args.pavpu_patch;
    cfg.pavpu.accuracy_threshold = args.pavpu_accuracy;
    cfg.pavpu.uncertainty_threshold = args.pavpu_threshold.unwrap_or(unc_max / 2.0);
    // The PAvPU curve spans the uncertainty's own range.
    cfg.pavpu.curve_thresholds = (0..=20).map(|i| unc_max * i as f64 / 20.0).collect();
    DomainSettings { metrics: cfg, max_images: args.max_images, max_objects: args.max_objects, unc_max, key: key.to_string() }
}

pub fn run_eval(args: EvalArgs) -> Result<()> {
    let manifest = Manifest::load(&args.manifest)?;
    let protocols: Vec<Protocol> = args.prompts.iter().map(|s| Protocol::parse(s)).collect::<ruac_core::Result<_>>()?;
    let (mut source, model_name, unc_max): (Box<dyn PredictionSource>, String, f64) = match (&args.weights, &args.predictions) {
        (Some(w), None) => {
            let ck = ruac_core::checkpoint::Checkpoint::load(w)?;
            let mode = if args.mc_samples == 0 {
                UncertaintyMode::Analytic
            } else {
                UncertaintyMode::MonteCarlo { samples: args.mc_samples, seed: args.seed }
            };
            let m = crate::device::load_model(&ck, args.config.as_deref(), args.image_size, mode, &args.device)?;
            eprintln!("device: {}", m.device);
            let vmax = mode.max_value() as f64;
            (Box::new(ModelSource(m.model)) as Box<dyn PredictionSource>, w.display().to_string(), vmax)
        }
        (None, Some(p)) => {
            if !p.is_dir() {
                bail!("--predictions {} is not a folder", p.display());
            }
            (Box::new(SavedPredictions(p.clone())), p.display().to_string(), 1.0)
        }
        _ => bail!("give exactly one of --weights or --predictions"),
    };
    let settings = format!(
        "v2;model={model_name};prompts={};mc={};seed={};max_images={:?};max_objects={:?};pavpu={},{},{:?}",
        protocols.iter().map(|p| p.name()).collect::<Vec<_>>().join(","),
        args.mc_samples,
        args.seed,
        args.max_images,
        args.max_objects,
        args.pavpu_patch,
        args.pavpu_accuracy,
        args.pavpu_threshold
    );
    let cache = args.out.join("cache");
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>16} [{bar:40}] {pos}/{len} images, {elapsed} elapsed, ETA {eta}")
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .progress_chars("=> "),
    );
    let mut domains = vec![];
    for (di, d) in manifest.domains.iter().enumerate() {
        let path = cache.join(format!("{}.json", d.name));
        if !args.fresh && path.exists() {
            if let Ok(r) = serde_json::from_str::<DomainResult>(&std::fs::read_to_string(&path)?) {
                if r.settings == settings {
                    bar.suspend(|| eprintln!("[{}/{}] {}: cached", di + 1, manifest.domains.len(), d.name));
                    domains.push(r);
                    continue;
                }
            }
        }
        let mut skipped = SkipReport::new();
        let ds = Dataset::open(&d.spec()?, &mut skipped).with_context(|| format!("opening domain {}", d.name))?;
        bar.set_position(0);
        bar.set_message(d.name.clone());
        let mut progress = |done: usize, total: usize| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        };
        let r = evaluate_domain(&d.name, &ds, skipped, source.as_mut(), &protocols, &domain_settings(&args, unc_max, &settings), &mut progress)
            .with_context(|| format!("domain {}", d.name))?;
        bar.suspend(|| eprintln!(
            "[{}/{}] {}: {} images, {} skipped",
            di + 1,
            manifest.domains.len(),
            d.name,
            r.protocols.values().map(|p| p.n_images).max().unwrap_or(0),
            r.skipped.total()
        ));
        // Atomic: a killed run never leaves a half-written cache entry.
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string(&r)?)?;
        std::fs::rename(&tmp, &path)?;
        domains.push(r);
    }
    bar.finish_and_clear();
    let results = EvalResults { model: model_name, settings, domains };
    report::write_eval_report(&results, &args.out)?;
    println!("wrote {}", args.out.display());
    Ok(())
}

pub fn run_compare(args: CompareArgs) -> Result<()> {
    let load = |p: &Path| -> Result<EvalResults> {
        serde_json::from_str(&std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
            .with_context(|| format!("{} is not a results.json of trainer eval", p.display()))
    };
    let (a, b) = (load(&args.a)?, load(&args.b)?);
    report::write_compare_report(&a, &b, &args)?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// A boxed model as an evaluation source (the blanket impl needs a sized type).
struct ModelSource(Box<dyn ruac_core::predictor::PromptModel>);

impl ruac_core::predictor::PromptModel for ModelSource {
    fn set_image(&mut self, image: &ruac_core::image_io::RgbImage) -> ruac_core::Result<()> {
        self.0.set_image(image)
    }

    fn predict(&mut self, prompt: &ruac_core::predictor::Prompt) -> ruac_core::Result<ruac_core::predictor::Prediction> {
        self.0.predict(prompt)
    }
}
