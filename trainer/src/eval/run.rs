//! The evaluation loop: domains → samples → objects → prompt protocols → metrics.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ruac_core::data::{Dataset, Sample, Selection, SkipReport};
use ruac_core::eval::clicks::{gt_box, run_click_protocol, CLICK_COUNTS};
use ruac_core::metrics::object::{evaluate_object, near_gt_region, MetricConfig, ObjectInput, ObjectMetrics};
use ruac_core::metrics::pooled::{ObjectMaps, PooledComparison};
use ruac_core::predictor::{Predictor, Prompt, UncertaintyMode};

use super::manifest::{Domain, Manifest};
use super::report::{self, CompareArgs};
use super::results::{DomainResult, EvalResults, ProtocolResult};

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
    /// Ignore cached per-domain results.
    #[arg(long)]
    pub fresh: bool,
    #[arg(long)]
    pub out: PathBuf,
}

/// A prompt protocol of the paper's evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Clicks(usize),
    GtBox,
}

impl Protocol {
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "box" => Ok(Protocol::GtBox),
            c if c.starts_with("click") => {
                let n: usize = c[5..].parse().with_context(|| format!("bad prompt protocol {s:?}"))?;
                if !CLICK_COUNTS.contains(&n) {
                    bail!("click protocols are click1, click3, click5; got {s:?}");
                }
                Ok(Protocol::Clicks(n))
            }
            _ => bail!("unknown prompt protocol {s:?} (click1, click3, click5, box)"),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Protocol::Clicks(n) => format!("click{n}"),
            Protocol::GtBox => "box".into(),
        }
    }
}

/// One object's prediction: foreground probability, uncertainty (image size) and the mask score.
pub struct ObjectPrediction {
    pub prob: Vec<f32>,
    pub uncertainty: Vec<f32>,
    pub iou_score: Option<f32>,
}

/// Where predictions come from.
enum Source {
    Model(Box<Predictor>),
    Saved(PathBuf),
}

/// Flattens the numeric leaves of the metrics (lists such as bins and curves excluded).
pub fn flatten(m: &ObjectMetrics) -> BTreeMap<String, f64> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, f64>) {
        match v {
            serde_json::Value::Number(n) => {
                if let Some(x) = n.as_f64() {
                    out.insert(prefix.to_string(), x);
                }
            }
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&key, v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(v) = serde_json::to_value(m) {
        walk("", &v, &mut out);
    }
    out
}

fn mean_maps(maps: &[BTreeMap<String, f64>]) -> BTreeMap<String, f64> {
    let mut sum: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for m in maps {
        for (k, v) in m {
            if v.is_finite() {
                let e = sum.entry(k.clone()).or_default();
                e.0 += v;
                e.1 += 1;
            }
        }
    }
    sum.into_iter().map(|(k, (s, n))| (k, s / n as f64)).collect()
}

/// Accumulates the pooled plots' data of one protocol in one domain.
#[derive(Default)]
struct Pool {
    reliability: Vec<(u64, f64, f64)>,
    pixels: Vec<(f32, f32, bool)>, // (uncertainty, |p - gt|, wrong)
    per_image: Vec<BTreeMap<String, f64>>,
    n_objects: usize,
    /// Per threshold: (threshold, n_ac, n_au, n_ic, n_iu), summed over objects.
    pavpu: Vec<(f64, [u64; 4])>,
    /// Per-pixel uncertainty against one score per mask, across the domain's objects.
    pooled: PooledComparison,
}

const PIXELS_PER_OBJECT: usize = 2000;

impl Pool {
    fn add_object(&mut self, m: &ObjectMetrics, pred: &ObjectPrediction, gt: &[bool], near_gt: &[bool]) -> Result<()> {
        let maps = ObjectMaps { prob: &pred.prob, uncertainty: &pred.uncertainty, gt, near_gt };
        self.pooled.add(maps, pred.iou_score, m.segmentation.j)?;
        let bins = &m.whole.calibration.bins;
        if self.reliability.len() < bins.len() {
            self.reliability.resize(bins.len(), (0, 0.0, 0.0));
        }
        for (acc, b) in self.reliability.iter_mut().zip(bins) {
            acc.0 += b.count;
            acc.1 += b.mean_confidence.unwrap_or(0.0) * b.count as f64;
            acc.2 += b.accuracy.unwrap_or(0.0) * b.count as f64;
        }
        let curve = &m.whole.uncertainty.pavpu_curve;
        if self.pavpu.len() < curve.len() {
            self.pavpu.resize(curve.len(), (0.0, [0; 4]));
        }
        for (acc, c) in self.pavpu.iter_mut().zip(curve) {
            acc.0 = c.uncertainty_threshold;
            for (a, v) in acc.1.iter_mut().zip([c.n_ac, c.n_au, c.n_ic, c.n_iu]) {
                *a += v;
            }
        }
        let stride = (gt.len() / PIXELS_PER_OBJECT).max(1);
        for i in (0..gt.len()).step_by(stride) {
            let p = pred.prob[i];
            let g = gt[i] as u8 as f32;
            self.pixels.push((pred.uncertainty[i], (p - g).abs(), (p >= 0.5) != gt[i]));
        }
        self.n_objects += 1;
        Ok(())
    }

    fn finish(mut self, unc_max: f64) -> Result<ProtocolResult> {
        // Risk-coverage: keep the most certain pixels first.
        self.pixels.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n = self.pixels.len();
        let mut risk_coverage = vec![];
        if n > 0 {
            let mut wrong = 0usize;
            let mut next = 1;
            for (i, px) in self.pixels.iter().enumerate() {
                wrong += px.2 as usize;
                if (i + 1) * 50 >= next * n {
                    risk_coverage.push(((i + 1) as f64 / n as f64, wrong as f64 / (i + 1) as f64));
                    next += 1;
                }
            }
        }
        let mut hist = vec![vec![0u64; 20]; 20];
        for (u, e, _) in &self.pixels {
            let xi = ((*u as f64 / unc_max.max(1e-12)) * 20.0).clamp(0.0, 19.0) as usize;
            let yi = ((*e as f64) * 20.0).clamp(0.0, 19.0) as usize;
            hist[xi][yi] += 1;
        }
        let mut metrics = mean_maps(&self.per_image);
        let pooled = self.pooled.finish()?;
        for (k, v) in [
            ("pooled.auroc_pixel", pooled.auroc_pixel),
            ("pooled.auroc_mask_score", pooled.auroc_mask_score),
            ("object.pearson_uncertainty_error", pooled.pearson_uncertainty_error),
            ("object.spearman_uncertainty_error", pooled.spearman_uncertainty_error),
            ("object.pearson_score_error", pooled.pearson_score_error),
            ("object.spearman_score_error", pooled.spearman_score_error),
        ] {
            if let Some(v) = v {
                metrics.insert(k.into(), v);
            }
        }
        // Per-image correlation between mean uncertainty and error rate, across the domain.
        let pairs: Vec<(f64, f64)> = self
            .per_image
            .iter()
            .filter_map(|m| Some((*m.get("whole.uncertainty.mean_uncertainty")?, *m.get("whole.error_rate")?)))
            .collect();
        let (u, e): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
        if let Some(r) = ruac_core::metrics::correlation::pearson(&u, &e) {
            metrics.insert("per_image.pearson".into(), r);
        }
        if let Some(r) = ruac_core::metrics::correlation::spearman(&u, &e) {
            metrics.insert("per_image.spearman".into(), r);
        }
        let pavpu_curve = self
            .pavpu
            .iter()
            .filter_map(|(t, [ac, au, ic, iu])| {
                let n = ac + au + ic + iu;
                (n > 0).then(|| (*t, (ac + iu) as f64 / n as f64))
            })
            .collect();
        Ok(ProtocolResult {
            n_images: self.per_image.len(),
            n_objects: self.n_objects,
            metrics,
            pavpu_curve,
            reliability: self.reliability,
            risk_coverage,
            unc_vs_error: hist,
            unc_max,
        })
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Source {
    /// Predictions of every requested protocol for one object (protocol name → prediction).
    fn predict_object(
        &mut self,
        domain: &str,
        sample: &Sample,
        obj_idx: usize,
        protocols: &[Protocol],
    ) -> Result<Vec<(Protocol, ObjectPrediction)>> {
        let (w, h) = (sample.width, sample.height);
        let obj = &sample.objects[obj_idx];
        match self {
            Source::Saved(dir) => {
                let base = dir.join(domain).join(&sample.name).join(obj.id.to_string());
                protocols.iter().map(|p| Ok((*p, load_saved(&base, &p.name(), w, h)?))).collect()
            }
            Source::Model(pred) => {
                let mut out = vec![];
                let max_clicks = protocols.iter().filter_map(|p| if let Protocol::Clicks(n) = p { Some(*n) } else { None }).max();
                if let Some(max_clicks) = max_clicks {
                    let mut outputs: Vec<ObjectPrediction> = vec![];
                    let mut last_low: Option<candle_core::Tensor> = None;
                    let run = run_click_protocol(&obj.mask, w, h, max_clicks, |clicks| {
                        // One click is ambiguous: three candidates, the best by predicted IoU.
                        // Later clicks refine it: one mask, fed the previous low-res logits.
                        let prompt = Prompt {
                            points: clicks.iter().map(|c| c.as_point()).collect(),
                            bbox: None,
                            mask_input: if clicks.len() > 1 { last_low.clone().map(|t| t.unsqueeze(0)).transpose()? } else { None },
                            multimask: clicks.len() == 1,
                        };
                        let r = pred.predict(&prompt)?;
                        let best = r.best();
                        last_low = Some(r.low_res_logits.narrow(0, best, 1)?);
                        let o = to_object_prediction(&r, best, w, h)?;
                        let mask = o.prob.iter().map(|p| *p >= 0.5).collect();
                        outputs.push(o);
                        Ok(mask)
                    })?;
                    for p in protocols {
                        if let Protocol::Clicks(k) = p {
                            if run.after(*k).is_some() {
                                let i = (k - 1).min(outputs.len() - 1);
                                let o = &outputs[i];
                                out.push((*p, ObjectPrediction { prob: o.prob.clone(), uncertainty: o.uncertainty.clone(), iou_score: o.iou_score }));
                            }
                        }
                    }
                }
                if protocols.contains(&Protocol::GtBox) {
                    if let Some(b) = gt_box(&obj.mask, w, h) {
                        let r = pred.predict(&Prompt { bbox: Some(b), multimask: false, ..Default::default() })?;
                        out.push((Protocol::GtBox, to_object_prediction(&r, 0, w, h)?));
                    }
                }
                Ok(out)
            }
        }
    }
}

fn to_object_prediction(r: &ruac_core::predictor::Prediction, k: usize, w: usize, h: usize) -> ruac_core::Result<ObjectPrediction> {
    let logits = r.masks.get(k)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let unc = r.uncertainty.get(k)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    debug_assert_eq!(logits.len(), w * h);
    Ok(ObjectPrediction { prob: logits.iter().map(|l| sigmoid(*l)).collect(), uncertainty: unc, iou_score: r.iou.get(k).copied() })
}

/// Reads `<base>/<protocol>.prob.npy`, `.unc.npy` (float32 or float64, `H x W`) and the
/// optional `<protocol>.json` with `{"iou_score": x}`.
fn load_saved(base: &Path, protocol: &str, w: usize, h: usize) -> Result<ObjectPrediction> {
    let read = |suffix: &str| -> Result<Vec<f32>> {
        let p = base.join(format!("{protocol}.{suffix}.npy"));
        let a = ruac_core::npy::read_npy(&p)?;
        if a.shape != [h, w] {
            bail!("{}: shape {:?}, expected [{h}, {w}]", p.display(), a.shape);
        }
        Ok(a.data)
    };
    let prob = read("prob")?;
    if prob.iter().any(|p| !(0.0..=1.0).contains(p)) {
        bail!("{}: probabilities must lie in [0, 1]", base.join(format!("{protocol}.prob.npy")).display());
    }
    let uncertainty = read("unc")?;
    let js = base.join(format!("{protocol}.json"));
    let iou_score = if js.exists() {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&js)?).with_context(|| format!("parsing {}", js.display()))?;
        v.get("iou_score").and_then(|x| x.as_f64()).map(|x| x as f32)
    } else {
        None
    };
    Ok(ObjectPrediction { prob, uncertainty, iou_score })
}

fn eval_domain(
    domain: &Domain,
    source: &mut Source,
    protocols: &[Protocol],
    args: &EvalArgs,
    unc_max: f64,
    settings: &str,
    bar: &ProgressBar,
) -> Result<DomainResult> {
    let mut skipped = SkipReport::new();
    let ds = Dataset::open(&domain.spec()?, &mut skipped).with_context(|| format!("opening domain {}", domain.name))?;
    let n = args.max_images.map_or(ds.len(), |m| m.min(ds.len()));
    bar.set_length(n as u64);
    bar.set_position(0);
    bar.set_message(domain.name.clone());
    let mut cfg = MetricConfig::default();
    cfg.pavpu.patch_size = args.pavpu_patch;
    cfg.pavpu.accuracy_threshold = args.pavpu_accuracy;
    cfg.pavpu.uncertainty_threshold = args.pavpu_threshold.unwrap_or(unc_max / 2.0);
    // The PAvPU curve spans the uncertainty's own range.
    cfg.pavpu.curve_thresholds = (0..=20).map(|i| unc_max * i as f64 / 20.0).collect();
    cfg.validate().map_err(|e| anyhow::anyhow!("PAvPU settings: {e}"))?;
    let mut pools: BTreeMap<Protocol, Pool> = protocols.iter().map(|p| (*p, Pool::default())).collect();
    for i in 0..n {
        bar.inc(1);
        let mut sel = match args.max_objects {
            Some(k) => Selection::First(k),
            None => Selection::All,
        };
        let Some(sample) = ds.load(i, &mut sel, &mut skipped) else { continue };
        if sample.objects.is_empty() {
            continue;
        }
        if let Source::Model(pred) = source {
            match sample.load_image() {
                Ok(img) => pred.set_image(&img)?,
                Err(e) => {
                    skipped.record(ruac_core::data::SkipReason::UnreadableImage, format!("{}: {e}", sample.name));
                    continue;
                }
            }
        }
        let mut per_obj: BTreeMap<Protocol, Vec<BTreeMap<String, f64>>> = BTreeMap::new();
        for (oi, obj) in sample.objects.iter().enumerate() {
            let preds = match source.predict_object(&domain.name, &sample, oi, protocols) {
                Ok(p) => p,
                Err(e) => {
                    // A missing or malformed saved prediction skips the object, not the run.
                    skipped.record(ruac_core::data::SkipReason::Malformed, format!("{} object {}: {e:#}", sample.name, obj.id));
                    continue;
                }
            };
            for (p, pred) in preds {
                let input = ObjectInput {
                    width: sample.width,
                    height: sample.height,
                    prob: &pred.prob,
                    uncertainty: &pred.uncertainty,
                    gt: &obj.mask,
                    iou_score: pred.iou_score,
                };
                let m = evaluate_object(&input, &cfg).with_context(|| format!("{} object {}", sample.name, obj.id))?;
                if let Some(pool) = pools.get_mut(&p) {
                    let near = near_gt_region(&obj.mask, sample.width, sample.height, cfg.near_gt_radius)?;
                    pool.add_object(&m, &pred, &obj.mask, &near)?;
                }
                per_obj.entry(p).or_default().push(flatten(&m));
            }
        }
        for (p, objs) in per_obj {
            if let Some(pool) = pools.get_mut(&p) {
                pool.per_image.push(mean_maps(&objs));
            }
        }
    }
    Ok(DomainResult {
        name: domain.name.clone(),
        protocols: pools
            .into_iter()
            .map(|(p, pool)| Ok((p.name(), pool.finish(unc_max)?)))
            .collect::<Result<_>>()?,
        skipped,
        settings: settings.to_string(),
    })
}

pub fn run_eval(args: EvalArgs) -> Result<()> {
    let manifest = Manifest::load(&args.manifest)?;
    let protocols: Vec<Protocol> = args.prompts.iter().map(|s| Protocol::parse(s)).collect::<Result<_>>()?;
    let (mut source, model_name, unc_max) = match (&args.weights, &args.predictions) {
        (Some(w), None) => {
            let ck = ruac_core::checkpoint::Checkpoint::load(w)?;
            let model = ck.build_base(args.config.as_deref(), args.image_size, &Device::Cpu)?;
            let mut pred = Predictor::new(model, Device::Cpu);
            pred.mode = if args.mc_samples == 0 {
                UncertaintyMode::Analytic
            } else {
                UncertaintyMode::MonteCarlo { samples: args.mc_samples, seed: args.seed }
            };
            let vmax = pred.mode.max_value() as f64;
            (Source::Model(Box::new(pred)), w.display().to_string(), vmax)
        }
        (None, Some(p)) => {
            if !p.is_dir() {
                bail!("--predictions {} is not a folder", p.display());
            }
            (Source::Saved(p.clone()), p.display().to_string(), 1.0)
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
        let r = eval_domain(d, &mut source, &protocols, &args, unc_max, &settings, &bar)?;
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
