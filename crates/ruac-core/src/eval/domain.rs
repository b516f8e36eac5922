//! One domain of the evaluation (paper §4, docs/EVALUATION.md): every object of every image
//! through each prompt protocol, scored by `metrics::object`, averaged per image then over
//! images, with the pooled curves (reliability, risk-coverage, PAvPU, uncertainty against
//! error) and the domain-level comparisons of `metrics::pooled`. The caller chooses the
//! domains, caches their results and shows progress.
use std::collections::BTreeMap;

use super::protocol::{ObjectPrediction, PredictionSource, Protocol};
use super::results::{DomainResult, ProtocolResult};
use crate::data::{Dataset, Selection, SkipReason, SkipReport};
use crate::metrics::object::{evaluate_object, near_gt_region, MetricConfig, ObjectInput, ObjectMetrics};
use crate::metrics::pooled::{ObjectMaps, PooledComparison};
use crate::Result;

/// How a domain is evaluated.
#[derive(Debug, Clone)]
pub struct DomainSettings {
    /// The per-object metrics' settings (PAvPU patch and thresholds, near-GT radius).
    pub metrics: MetricConfig,
    /// At most this many images (the first ones, in file order).
    pub max_images: Option<usize>,
    /// At most this many objects per image (the first ones).
    pub max_objects: Option<usize>,
    /// The uncertainty's largest possible value (the histogram's and curves' range).
    pub unc_max: f64,
    /// Key of these settings, stored with the result so that a cache can be checked.
    pub key: String,
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
        if let Some(r) = crate::metrics::correlation::pearson(&u, &e) {
            metrics.insert("per_image.pearson".into(), r);
        }
        if let Some(r) = crate::metrics::correlation::spearman(&u, &e) {
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


/// Evaluates the domain `name` (already opened as `ds`, `skipped` holding what opening it
/// skipped) with predictions from `source`; `progress(done, total)` after each image.
pub fn evaluate_domain(
    name: &str,
    ds: &Dataset,
    mut skipped: SkipReport,
    source: &mut dyn PredictionSource,
    protocols: &[Protocol],
    settings: &DomainSettings,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<DomainResult> {
    let n = settings.max_images.map_or(ds.len(), |m| m.min(ds.len()));
    let cfg = &settings.metrics;
    cfg.validate().map_err(|e| crate::Error::Invalid(format!("PAvPU settings: {e}")))?;
    let mut pools: BTreeMap<Protocol, Pool> = protocols.iter().map(|p| (*p, Pool::default())).collect();
    for i in 0..n {
        progress(i + 1, n);
        let mut sel = match settings.max_objects {
            Some(k) => Selection::First(k),
            None => Selection::All,
        };
        let Some(sample) = ds.load(i, &mut sel, &mut skipped) else { continue };
        if sample.objects.is_empty() {
            continue;
        }
        if source.needs_image() {
            match sample.load_image() {
                Ok(img) => source.set_image(&img)?,
                Err(e) => {
                    skipped.record(SkipReason::UnreadableImage, format!("{}: {e}", sample.name));
                    continue;
                }
            }
        }
        let mut per_obj: BTreeMap<Protocol, Vec<BTreeMap<String, f64>>> = BTreeMap::new();
        for (oi, obj) in sample.objects.iter().enumerate() {
            let preds = match source.predict_object(name, &sample, oi, protocols) {
                Ok(p) => p,
                Err(e) => {
                    // A missing or malformed saved prediction skips the object, not the run.
                    skipped.record(SkipReason::Malformed, format!("{} object {}: {e}", sample.name, obj.id));
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
                let m = evaluate_object(&input, cfg)
                    .map_err(|e| crate::Error::Invalid(format!("{} object {}: {e}", sample.name, obj.id)))?;
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
        name: name.to_string(),
        protocols: pools
            .into_iter()
            .map(|(p, pool)| Ok((p.name(), pool.finish(settings.unc_max)?)))
            .collect::<Result<_>>()?,
        skipped,
        settings: settings.key.clone(),
    })
}
