//! `ruac.metrics`: ruac-core's evaluation metrics (the code `trainer eval` and
//! `trainer compare` score with) on numpy arrays. Maps are any shape unless a function needs
//! the 2-D layout (J&F, PAvPU, `evaluate_object`); booleans may be given as any dtype
//! (nonzero is true). The work runs without the GIL.
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::wrap_pyfunction;
use ruac_core::metrics::calibration::calibration as calibration_of;
use ruac_core::metrics::correlation;
use ruac_core::metrics::object::{evaluate_object as evaluate, MetricConfig, ObjectInput};
use ruac_core::metrics::pavpu::PatchStats;
use ruac_core::metrics::ranking::ErrorRanking;
use ruac_core::metrics::segmentation::{self, DAVIS_BOUND_TH};
use ruac_core::metrics::stats::{self, BootstrapConfig};
use serde_json::Value;

use crate::convert::{array, from_python, map2d, serialize, Array};
use crate::errors::to_py;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(evaluate_object, m)?)?;
    m.add_function(wrap_pyfunction!(default_metric_config, m)?)?;
    m.add_function(wrap_pyfunction!(iou, m)?)?;
    m.add_function(wrap_pyfunction!(boundary_f_measure, m)?)?;
    m.add_function(wrap_pyfunction!(j_and_f, m)?)?;
    m.add_function(wrap_pyfunction!(auroc, m)?)?;
    m.add_function(wrap_pyfunction!(aupr, m)?)?;
    m.add_function(wrap_pyfunction!(aurc, m)?)?;
    m.add_function(wrap_pyfunction!(eaurc, m)?)?;
    m.add_function(wrap_pyfunction!(calibration, m)?)?;
    m.add_function(wrap_pyfunction!(ece, m)?)?;
    m.add_function(wrap_pyfunction!(pavpu, m)?)?;
    m.add_function(wrap_pyfunction!(pearson, m)?)?;
    m.add_function(wrap_pyfunction!(spearman, m)?)?;
    m.add_function(wrap_pyfunction!(wilcoxon, m)?)?;
    m.add_function(wrap_pyfunction!(bootstrap_mean_ci, m)?)?;
    m.add_function(wrap_pyfunction!(compare_paired, m)?)?;
    Ok(())
}

fn same_shape<A, B>(a: &Array<A>, an: &str, b: &Array<B>, bn: &str) -> PyResult<()> {
    if a.shape == b.shape {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!("{an} has shape {} but {bn} has shape {}", a.describe_shape(), b.describe_shape())))
    }
}

/// The protocol's settings with `config`'s keys replaced; unknown keys are errors.
fn metric_config(config: Option<&Bound<'_, PyAny>>) -> PyResult<MetricConfig> {
    let Some(config) = config.filter(|c| !c.is_none()) else {
        return Ok(MetricConfig::default());
    };
    let value = from_python(config, "config")?;
    let reference = serde_json::to_value(MetricConfig::default()).map_err(|e| PyValueError::new_err(e.to_string()))?;
    check_keys(&value, &reference, "config")?;
    serde_json::from_value(value).map_err(|e| PyValueError::new_err(format!("config: {e}")))
}

fn check_keys(value: &Value, reference: &Value, path: &str) -> PyResult<()> {
    let (Value::Object(given), Value::Object(known)) = (value, reference) else {
        return Err(PyValueError::new_err(format!("{path} must be a dict")));
    };
    for (k, v) in given {
        match known.get(k) {
            None => {
                let names: Vec<&str> = known.keys().map(String::as_str).collect();
                return Err(PyValueError::new_err(format!("{path}: unknown key {k:?} (known: {})", names.join(", "))));
            }
            Some(r @ Value::Object(_)) => check_keys(v, r, &format!("{path}.{k}"))?,
            Some(_) => {}
        }
    }
    Ok(())
}

/// Every metric of the evaluation protocol for one predicted object, as ``trainer eval``
/// computes it: J, F, J&F; over the whole image and near the ground truth, calibration
/// (ECE with its reliability bins, Brier, NLL), the uncertainty's AUROC, AUPR, AURC,
/// E-AURC, PAvPU (one threshold and a curve) and correlations; with ``iou_score``, the
/// one-score-per-mask baseline. Returns nested dicts (the keys of ``results.json``);
/// ``None`` marks an undefined value.
///
/// ``prob``: ``(H, W)`` foreground probability in [0, 1]; ``uncertainty``: ``(H, W)``, any
/// finite scale; ``gt``: ``(H, W)`` ground-truth mask; ``config``: a dict overriding keys
/// of ``default_metric_config()``.
#[pyfunction]
#[pyo3(signature = (prob, uncertainty, gt, iou_score=None, config=None))]
fn evaluate_object<'py>(
    py: Python<'py>,
    prob: &Bound<'py, PyAny>,
    uncertainty: &Bound<'py, PyAny>,
    gt: &Bound<'py, PyAny>,
    iou_score: Option<f32>,
    config: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let (p, u, g) = (array::<f32>(prob, "prob")?, array::<f32>(uncertainty, "uncertainty")?, array::<bool>(gt, "gt")?);
    same_shape(&p, "prob", &u, "uncertainty")?;
    same_shape(&p, "prob", &g, "gt")?;
    let [height, width] = p.shape[..] else {
        return Err(PyValueError::new_err(format!("prob must be a 2-D (H, W) map, got shape {}", p.describe_shape())));
    };
    let config = metric_config(config)?;
    let input = ObjectInput { width, height, prob: &p.data, uncertainty: &u.data, gt: &g.data, iou_score };
    let out = py.detach(|| evaluate(&input, &config)).map_err(to_py)?;
    serialize(py, &out)
}

/// The protocol's metric settings (what ``evaluate_object`` uses without ``config``).
#[pyfunction]
fn default_metric_config(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    serialize(py, &MetricConfig::default())
}

fn pair(a: &Bound<'_, PyAny>, an: &str, b: &Bound<'_, PyAny>, bn: &str) -> PyResult<(Array<bool>, Array<bool>)> {
    let (a, b) = (array::<bool>(a, an)?, array::<bool>(b, bn)?);
    same_shape(&a, an, &b, bn)?;
    Ok((a, b))
}

/// Region similarity J: ``|pred & gt| / |pred | gt|`` (1 when both are empty, as DAVIS).
#[pyfunction]
fn iou(py: Python<'_>, pred: &Bound<'_, PyAny>, gt: &Bound<'_, PyAny>) -> PyResult<f64> {
    let (p, g) = pair(pred, "pred", gt, "gt")?;
    py.detach(|| segmentation::iou(&p.data, &g.data)).map_err(to_py)
}

/// The DAVIS boundary F-measure of two ``(H, W)`` masks. ``bound_th``: the tolerance as a
/// fraction of the image diagonal if < 1, else in pixels.
#[pyfunction]
#[pyo3(signature = (pred, gt, bound_th=DAVIS_BOUND_TH))]
fn boundary_f_measure(py: Python<'_>, pred: &Bound<'_, PyAny>, gt: &Bound<'_, PyAny>, bound_th: f64) -> PyResult<f64> {
    let (w, h, p) = map2d::<bool>(pred, "pred")?;
    let (gw, gh, g) = map2d::<bool>(gt, "gt")?;
    if (w, h) != (gw, gh) {
        return Err(PyValueError::new_err(format!("pred is {h}x{w} but gt is {gh}x{gw}")));
    }
    py.detach(|| segmentation::boundary_f_measure(&p, &g, w, h, bound_th)).map_err(to_py)
}

/// ``(J, F, J&F)`` of two ``(H, W)`` masks, J&F being their mean (DAVIS).
#[pyfunction]
#[pyo3(signature = (pred, gt, bound_th=DAVIS_BOUND_TH))]
fn j_and_f(py: Python<'_>, pred: &Bound<'_, PyAny>, gt: &Bound<'_, PyAny>, bound_th: f64) -> PyResult<(f64, f64, f64)> {
    let j = iou(py, pred, gt)?;
    let f = boundary_f_measure(py, pred, gt, bound_th)?;
    Ok((j, f, (j + f) / 2.0))
}

fn ranking(py: Python<'_>, uncertainty: &Bound<'_, PyAny>, wrong: &Bound<'_, PyAny>) -> PyResult<ErrorRanking> {
    let (u, w) = (array::<f32>(uncertainty, "uncertainty")?, array::<bool>(wrong, "wrong")?);
    same_shape(&u, "uncertainty", &w, "wrong")?;
    py.detach(|| ErrorRanking::new(&u.data, &w.data)).map_err(to_py)
}

/// AUROC of ``uncertainty`` (the score) detecting ``wrong`` pixels (the positive class), as
/// ``sklearn.metrics.roc_auc_score(wrong, uncertainty)``; ``None`` without both classes.
#[pyfunction]
fn auroc(py: Python<'_>, uncertainty: &Bound<'_, PyAny>, wrong: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    Ok(ranking(py, uncertainty, wrong)?.auroc())
}

/// Average precision of the same detector, as
/// ``sklearn.metrics.average_precision_score(wrong, uncertainty)``; ``None`` without both
/// classes.
#[pyfunction]
fn aupr(py: Python<'_>, uncertainty: &Bound<'_, PyAny>, wrong: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    Ok(ranking(py, uncertainty, wrong)?.average_precision())
}

/// Area under the risk-coverage curve (most certain pixels kept first; ties in exact
/// expectation); lower is better. ``None`` for no pixel.
#[pyfunction]
fn aurc(py: Python<'_>, uncertainty: &Bound<'_, PyAny>, wrong: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    Ok(ranking(py, uncertainty, wrong)?.aurc())
}

/// Excess AURC: AURC minus the AURC of the oracle ordering.
#[pyfunction]
fn eaurc(py: Python<'_>, uncertainty: &Bound<'_, PyAny>, wrong: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    Ok(ranking(py, uncertainty, wrong)?.eaurc())
}

/// Calibration of the foreground probability ``prob`` against ``gt``: a dict with ``ece``
/// (``n_bins`` equal-width bins of the confidence ``max(p, 1 - p)``), ``brier``, ``nll``
/// (``p`` clamped to ``[eps, 1 - eps]``) and the reliability ``bins``.
#[pyfunction]
#[pyo3(signature = (prob, gt, n_bins=15, eps=1e-7))]
fn calibration<'py>(py: Python<'py>, prob: &Bound<'py, PyAny>, gt: &Bound<'py, PyAny>, n_bins: usize, eps: f64) -> PyResult<Bound<'py, PyAny>> {
    let (p, g) = (array::<f32>(prob, "prob")?, array::<bool>(gt, "gt")?);
    same_shape(&p, "prob", &g, "gt")?;
    let out = py.detach(|| calibration_of(&p.data, &g.data, n_bins, eps)).map_err(to_py)?;
    serialize(py, &out)
}

/// Expected calibration error of ``prob`` against ``gt`` (``calibration(...)["ece"]``).
#[pyfunction]
#[pyo3(signature = (prob, gt, n_bins=15))]
fn ece(py: Python<'_>, prob: &Bound<'_, PyAny>, gt: &Bound<'_, PyAny>, n_bins: usize) -> PyResult<Option<f64>> {
    let (p, g) = (array::<f32>(prob, "prob")?, array::<bool>(gt, "gt")?);
    same_shape(&p, "prob", &g, "gt")?;
    Ok(py.detach(|| calibration_of(&p.data, &g.data, n_bins, 1e-7)).map_err(to_py)?.ece)
}

/// Patch accuracy versus patch uncertainty (Mukhoti & Gal) of ``(H, W)`` maps:
/// ``patch_size`` windows, accurate when their pixel accuracy (``pred == gt``) is
/// ``>= accuracy_threshold``, certain when their mean uncertainty is
/// ``< uncertainty_threshold``. ``region``: only these pixels count. Returns a dict with the
/// four counts, ``pavpu``, ``p_accurate_given_certain`` and ``p_uncertain_given_inaccurate``.
#[pyfunction]
#[pyo3(signature = (pred, gt, uncertainty, uncertainty_threshold=std::f64::consts::LN_2 / 2.0, patch_size=4, accuracy_threshold=0.5, region=None))]
// Each parameter is one of Python's keyword arguments (the signature above); PyO3 maps
// keywords to parameters, so a struct cannot stand in for them here.
#[allow(clippy::too_many_arguments)]
fn pavpu<'py>(
    py: Python<'py>,
    pred: &Bound<'py, PyAny>,
    gt: &Bound<'py, PyAny>,
    uncertainty: &Bound<'py, PyAny>,
    uncertainty_threshold: f64,
    patch_size: usize,
    accuracy_threshold: f64,
    region: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let (p, g) = pair(pred, "pred", gt, "gt")?;
    let u = array::<f32>(uncertainty, "uncertainty")?;
    same_shape(&p, "pred", &u, "uncertainty")?;
    let [height, width] = p.shape[..] else {
        return Err(PyValueError::new_err(format!("pred must be a 2-D (H, W) map, got shape {}", p.describe_shape())));
    };
    let region = match region.filter(|r| !r.is_none()) {
        Some(r) => {
            let r = array::<bool>(r, "region")?;
            same_shape(&p, "pred", &r, "region")?;
            Some(r.data)
        }
        None => None,
    };
    if uncertainty_threshold.is_nan() {
        return Err(PyValueError::new_err("uncertainty_threshold is NaN"));
    }
    let correct: Vec<bool> = p.data.iter().zip(&g.data).map(|(a, b)| a == b).collect();
    let out = py
        .detach(|| {
            PatchStats::new(width, height, &correct, &u.data, region.as_deref(), patch_size, accuracy_threshold)
                .map(|s| s.at(uncertainty_threshold))
        })
        .map_err(to_py)?;
    serialize(py, &out)
}

fn floats(a: &Bound<'_, PyAny>, an: &str, b: &Bound<'_, PyAny>, bn: &str) -> PyResult<(Vec<f64>, Vec<f64>)> {
    let (a, b) = (array::<f64>(a, an)?, array::<f64>(b, bn)?);
    same_shape(&a, an, &b, bn)?;
    Ok((a.data, b.data))
}

/// Pearson's r (``scipy.stats.pearsonr``); ``None`` when undefined (fewer than two values,
/// a constant input, a non-finite value).
#[pyfunction]
fn pearson(x: &Bound<'_, PyAny>, y: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    let (x, y) = floats(x, "x", y, "y")?;
    Ok(correlation::pearson(&x, &y))
}

/// Spearman's rho (``scipy.stats.spearmanr``, average ranks for ties); ``None`` when
/// undefined.
#[pyfunction]
fn spearman(x: &Bound<'_, PyAny>, y: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    let (x, y) = floats(x, "x", y, "y")?;
    Ok(correlation::spearman(&x, &y))
}

/// Two-sided Wilcoxon signed-rank test of paired samples, ``scipy.stats.wilcoxon(a, b)``
/// with SciPy's defaults: a dict with ``statistic``, ``p_value``, ``n``, ``method``, ...
#[pyfunction]
fn wilcoxon<'py>(py: Python<'py>, a: &Bound<'py, PyAny>, b: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let (a, b) = floats(a, "a", b, "b")?;
    let out = py.detach(|| stats::wilcoxon(&a, &b)).map_err(to_py)?;
    serialize(py, &out)
}

/// Percentile bootstrap confidence interval of the mean of ``d`` (deterministic for a
/// ``seed``): a dict with ``estimate``, ``lower``, ``upper``, ...
#[pyfunction]
#[pyo3(signature = (d, resamples=10_000, confidence=0.95, seed=0))]
fn bootstrap_mean_ci<'py>(py: Python<'py>, d: &Bound<'py, PyAny>, resamples: usize, confidence: f64, seed: u64) -> PyResult<Bound<'py, PyAny>> {
    let d = array::<f64>(d, "d")?.data;
    let cfg = BootstrapConfig { resamples, confidence, seed };
    let out = py.detach(|| stats::bootstrap_mean_ci(&d, &cfg)).map_err(to_py)?;
    serialize(py, &out)
}

/// Two models' scores ``a[i]``, ``b[i]`` on the same items compared as ``trainer compare``
/// does: means, the Wilcoxon test and a bootstrap CI of the mean difference ``a - b``.
#[pyfunction]
#[pyo3(signature = (metric, a, b, resamples=10_000, confidence=0.95, seed=0))]
fn compare_paired<'py>(
    py: Python<'py>,
    metric: &str,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    resamples: usize,
    confidence: f64,
    seed: u64,
) -> PyResult<Bound<'py, PyAny>> {
    let (a, b) = floats(a, "a", b, "b")?;
    let cfg = BootstrapConfig { resamples, confidence, seed };
    let out = py.detach(|| stats::compare_paired(metric, &a, &b, &cfg)).map_err(to_py)?;
    serialize(py, &out)
}
