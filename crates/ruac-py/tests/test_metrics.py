"""ruac.metrics against independent implementations: scikit-learn and SciPy on random
cases, NumPy definitions where neither has the metric, and the committed reference
fixtures (DAVIS boundary F, the whole per-object protocol) that ruac-core's tests use."""

import json
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, jaccard_score, log_loss, roc_auc_score

from ruac import metrics
from conftest import fixture

TOL = 1e-9


def random_case(seed):
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(12, 48, 2))
    gt = rng.random((h, w)) < rng.uniform(0.1, 0.6)
    # probabilities that mostly agree with gt, continuous (no ties at the ECE bin edges)
    prob = np.clip(np.where(gt, 0.7, 0.3) + rng.normal(0, 0.25, (h, w)), 0, 1).astype(np.float32)
    # uncertainty with many ties (two decimals), as quantised maps have
    unc = np.round(rng.random((h, w)) * 0.7, 2).astype(np.float32)
    return prob, unc, gt


@pytest.mark.parametrize("seed", range(8))
def test_ranking_and_calibration_match_sklearn(seed):
    prob, unc, gt = random_case(seed)
    pred = prob >= 0.5
    wrong = pred != gt
    u64 = unc.astype(np.float64).ravel()
    assert metrics.auroc(unc, wrong) == pytest.approx(roc_auc_score(wrong.ravel(), u64), abs=TOL)
    assert metrics.aupr(unc, wrong) == pytest.approx(average_precision_score(wrong.ravel(), u64), abs=TOL)
    assert metrics.iou(pred, gt) == pytest.approx(jaccard_score(gt.ravel(), pred.ravel()), abs=TOL)

    p64, y = prob.astype(np.float64).ravel(), gt.ravel()
    cal = metrics.calibration(prob, gt)
    assert cal["brier"] == pytest.approx(brier_score_loss(y, p64), abs=1e-7)
    assert cal["nll"] == pytest.approx(log_loss(y, np.clip(p64, 1e-7, 1 - 1e-7), labels=[0, 1]), abs=1e-7)
    # ECE: the reliability diagram of sklearn's calibration_curve over the confidence
    # max(p, 1 - p) and the correctness of `p >= 0.5`, weighted by the bin sizes.
    conf, correct = np.maximum(p64, 1 - p64), (pred == gt).ravel()
    frac_correct, mean_conf = calibration_curve(correct, conf, n_bins=15, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, 16)[1:-1], conf), minlength=15)
    counts = counts[counts > 0]
    ece = float(np.sum(counts / conf.size * np.abs(frac_correct - mean_conf)))
    assert cal["ece"] == pytest.approx(ece, abs=1e-7)
    assert metrics.ece(prob, gt) == pytest.approx(ece, abs=1e-7)
    assert sum(b["count"] for b in cal["bins"]) == conf.size

    assert metrics.pearson(unc, wrong) == pytest.approx(stats.pearsonr(u64, wrong.ravel()).statistic, abs=1e-9)
    assert metrics.spearman(unc, wrong) == pytest.approx(stats.spearmanr(u64, wrong.ravel()).statistic, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_aurc_and_pavpu_match_their_definitions(seed):
    prob, _, gt = random_case(100 + seed)
    rng = np.random.default_rng(seed)
    unc = rng.random(gt.shape).astype(np.float32)  # distinct values: one order
    pred = prob >= 0.5
    wrong = (pred != gt).ravel()
    # AURC: keep the k most certain pixels, mean of their error rates over k = 1..n.
    order = np.argsort(unc.ravel(), kind="stable")
    k = np.arange(1, wrong.size + 1)
    aurc = np.mean(np.cumsum(wrong[order]) / k)
    oracle = np.mean(np.cumsum(np.sort(wrong)) / k)
    assert metrics.aurc(unc, pred != gt) == pytest.approx(aurc, abs=1e-12)
    assert metrics.eaurc(unc, pred != gt) == pytest.approx(aurc - oracle, abs=1e-12)
    # PAvPU: 4x4 windows from the top-left (edge windows keep what they have).
    h, w = gt.shape
    n = {"ac": 0, "au": 0, "ic": 0, "iu": 0}
    for y in range(0, h, 4):
        for x in range(0, w, 4):
            acc = np.mean(pred[y : y + 4, x : x + 4] == gt[y : y + 4, x : x + 4]) >= 0.5
            cert = np.mean(unc[y : y + 4, x : x + 4].astype(np.float64)) < 0.4
            n[("a" if acc else "i") + ("c" if cert else "u")] += 1
    out = metrics.pavpu(pred, gt, unc, uncertainty_threshold=0.4)
    assert (out["n_ac"], out["n_au"], out["n_ic"], out["n_iu"]) == (n["ac"], n["au"], n["ic"], n["iu"])
    assert out["pavpu"] == pytest.approx((n["ac"] + n["iu"]) / sum(n.values()), abs=TOL)


def test_wilcoxon_matches_scipy():
    rng = np.random.default_rng(3)
    for n in (12, 30, 80):  # exact, exact, asymptotic (SciPy's method="auto")
        a, b = rng.normal(0.6, 0.1, n), rng.normal(0.57, 0.1, n)
        ours, ref = metrics.wilcoxon(a, b), stats.wilcoxon(a, b)
        assert ours["statistic"] == pytest.approx(ref.statistic, abs=1e-9)
        assert ours["p_value"] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)
    ci = metrics.bootstrap_mean_ci(a - b, resamples=2000, seed=1)
    assert ci["lower"] < ci["estimate"] < ci["upper"]
    assert ci["estimate"] == pytest.approx(np.mean(a - b), abs=1e-12)
    assert metrics.bootstrap_mean_ci(a - b, resamples=2000, seed=1) == ci
    cmp = metrics.compare_paired("jf", a, b, resamples=2000, seed=1)
    assert cmp["wilcoxon"]["p_value"] == pytest.approx(stats.wilcoxon(a, b).pvalue, rel=1e-9)


def compare(path, ours, expected, errors):
    """Every leaf of `expected` must be in `ours` (numbers within 1e-9 relative above 1,
    None where expected is null); returns how many numbers were compared."""
    if isinstance(expected, dict):
        if not isinstance(ours, dict):
            errors.append(f"{path}: expected a dict, got {ours!r}")
            return 0
        return sum(compare(f"{path}.{k}", ours.get(k, "<missing>"), v, errors) for k, v in expected.items())
    if isinstance(expected, list):
        if not isinstance(ours, list) or len(ours) != len(expected):
            errors.append(f"{path}: expected {len(expected)} entries, got {ours!r}")
            return 0
        return sum(compare(f"{path}[{i}]", o, e, errors) for i, (o, e) in enumerate(zip(ours, expected)))
    if expected is None:
        if ours is not None:
            errors.append(f"{path}: {ours!r}, expected None")
        return 0
    if not isinstance(ours, (int, float)) or abs(ours - expected) > TOL * max(abs(expected), 1.0):
        errors.append(f"{path}: {ours!r}, expected {expected!r}")
    return 1


def test_evaluate_object_matches_the_reference_fixture():
    cases = json.load(open(fixture("metrics/objects.json")))["cases"]
    assert len(cases) == 5
    for case in cases:
        h, w = case["height"], case["width"]
        milli = lambda key: (np.array(case[key], dtype=np.float64) / 1000.0).astype(np.float32).reshape(h, w)
        gt = np.frombuffer(case["gt"].encode(), dtype=np.uint8).reshape(h, w) == ord("1")
        score = None if case["iou_score_milli"] is None else float(np.float32(case["iou_score_milli"] / 1000.0))
        ours = metrics.evaluate_object(milli("prob_milli"), milli("uncertainty_milli"), gt, score, config=case["config"])
        errors = []
        n = compare(case["name"], ours, case["expected"], errors)
        assert not errors, "\n".join(errors)
        assert n > 300, f"{case['name']}: only {n} numbers compared"
        # the standalone J and F are the same code
        pred = milli("prob_milli") >= 0.5
        th = case["config"]["boundary_threshold"]
        assert metrics.j_and_f(pred, gt, th) == pytest.approx(
            (ours["segmentation"]["j"], ours["segmentation"]["f"], ours["segmentation"]["jf"]), abs=TOL
        )


def test_default_config_is_the_protocol():
    cfg = metrics.default_metric_config()
    assert cfg["ece_bins"] == 15 and cfg["near_gt_radius"] == 4.0
    assert math.isclose(cfg["pavpu"]["uncertainty_threshold"], math.log(2) / 2)
    prob, unc, gt = random_case(0)
    assert metrics.evaluate_object(prob, unc, gt) == metrics.evaluate_object(prob, unc, gt, config=cfg)
    changed = metrics.evaluate_object(prob, unc, gt, config={"ece_bins": 10})
    assert len(changed["whole"]["calibration"]["bins"]) == 10
