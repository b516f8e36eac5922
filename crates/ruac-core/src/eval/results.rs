//! An evaluation's results: per domain and protocol, the metrics averaged over images and the
//! pooled curves (what `trainer eval` writes to `results.json` and caches per domain, and what
//! its report and `trainer compare` read back).
use std::collections::BTreeMap;

use crate::data::SkipReport;
use serde::{Deserialize, Serialize};

/// Per-domain, per-protocol aggregate (cached as JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProtocolResult {
    pub n_images: usize,
    pub n_objects: usize,
    /// Flattened metric name → mean over images of the per-image mean over objects.
    pub metrics: BTreeMap<String, f64>,
    /// Reliability diagram (whole image), pooled: per bin (count, Σ confidence, Σ correct).
    pub reliability: Vec<(u64, f64, f64)>,
    /// Risk-coverage curve from a pixel subsample: (coverage, risk).
    pub risk_coverage: Vec<(f64, f64)>,
    /// PAvPU against the uncertainty threshold (whole image, patch counts pooled over objects).
    #[serde(default)]
    pub pavpu_curve: Vec<(f64, f64)>,
    /// 20 x 20 histogram of (uncertainty / max, |p − gt|) over the pixel subsample.
    pub unc_vs_error: Vec<Vec<u64>>,
    pub unc_max: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DomainResult {
    pub name: String,
    pub protocols: BTreeMap<String, ProtocolResult>,
    pub skipped: SkipReport,
    /// Key of the settings the cache was computed with.
    pub settings: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalResults {
    pub model: String,
    pub settings: String,
    pub domains: Vec<DomainResult>,
}
