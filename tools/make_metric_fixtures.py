#!/usr/bin/env python3
"""Reference values for ruac-core's evaluation metrics (`ruac_core::metrics`).

Every number here comes from an independent implementation: scikit-learn
(`roc_auc_score`, `average_precision_score`), SciPy (`pearsonr`, `spearmanr`,
`distance_transform_edt`), OpenCV + scikit-image (the DAVIS 2017 boundary
F-measure, re-implemented below from davisvideochallenge/davis2017-evaluation
`davis2017/metrics.py`: `db_eval_iou`, `f_measure`, `_seg2bmap`), and plain NumPy
for the definitions that have no library (ECE, Brier, NLL, PAvPU, AURC).

Writes crates/ruac-core/tests/fixtures/metrics/:
* objects.json      random objects (prob, uncertainty with ties, gt, IoU score,
                    metric config) and every metric `evaluate_object` returns
* functions.json    vectors with ties for `pearson`, `spearman`, `average_ranks`
                    (stored as integers k, value = k / 7 or k / 3 in float64) and
                    for `ErrorRanking` (AUROC, AUPR, AURC, E-AURC)

Arrays are stored compactly: probabilities, uncertainties and IoU scores as
integers in thousandths (value = float32(k / 1000)), masks as strings of 0/1,
row-major. The Rust tests rebuild the same float32 values (k as f64 / 1000 as f32)
and the script computes everything from those float32 values (cast to float64),
so ties and thresholds agree bit for bit.

Deterministic: an unchanged script reproduces the files byte for byte.
Run from the repository root: $VENV/bin/python tools/make_metric_fixtures.py
"""
from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage, stats
from skimage.morphology import disk
from sklearn.metrics import average_precision_score, roc_auc_score

OUT = Path(__file__).resolve().parent.parent / "crates/ruac-core/tests/fixtures/metrics"
NEAR_GT_RADIUS = 4.0


# ----------------------------------------------------------------------------- helpers
def from_milli(k: np.ndarray) -> np.ndarray:
    """The float32 values the Rust side rebuilds: f32 nearest to k/1000 (via f64)."""
    return (np.asarray(k, dtype=np.float64) / 1000.0).astype(np.float32)


def none_if_nan(x):
    x = float(x)
    return None if math.isnan(x) else x


# ----------------------------------------------------- DAVIS 2017 J and F (re-implemented)
def davis_iou(gt: np.ndarray, seg: np.ndarray) -> float:
    """db_eval_iou without void pixels: |seg & gt| / |seg | gt|, 1 when both are empty."""
    inter = np.sum(seg & gt)
    union = np.sum(seg | gt)
    return 1.0 if np.isclose(union, 0) else float(inter / union)


def davis_seg2bmap(seg: np.ndarray) -> np.ndarray:
    """_seg2bmap at the native size: a pixel is on the boundary when it differs from its
    east, south or south-east neighbour; last row compares east only, last column south
    only, and the bottom-right pixel is never a boundary."""
    seg = seg.astype(bool)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    b[-1, :] = seg[-1, :] ^ east[-1, :]
    b[:, -1] = seg[:, -1] ^ south[:, -1]
    b[-1, -1] = False
    return b


def davis_f_measure(seg: np.ndarray, gt: np.ndarray, bound_th: float = 0.008):
    """f_measure without void pixels: boundary precision/recall with a disk tolerance of
    ceil(bound_th * image diagonal) pixels (bound_th >= 1 is taken as pixels)."""
    bound_pix = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(seg.shape))
    fg_b = davis_seg2bmap(seg)
    gt_b = davis_seg2bmap(gt)
    kernel = disk(bound_pix).astype(np.uint8)
    fg_dil = cv2.dilate(fg_b.astype(np.uint8), kernel)
    gt_dil = cv2.dilate(gt_b.astype(np.uint8), kernel)
    gt_match = gt_b * fg_dil
    fg_match = fg_b * gt_dil
    n_fg = np.sum(fg_b)
    n_gt = np.sum(gt_b)
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        precision = np.sum(fg_match) / float(n_fg)
        recall = np.sum(gt_match) / float(n_gt)
    f = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return float(f), int(bound_pix)


# ------------------------------------------------------------------ uncertainty metrics
def aurc_expected(unc: np.ndarray, wrong: np.ndarray) -> float:
    """Area under the risk-coverage curve (Geifman et al. 2019): keep the k most certain
    pixels, risk(k) = error rate among them, AURC = mean over k = 1..n. Tied uncertainties
    are kept in random order; the value is the exact expectation over that order, i.e.
    every position in a tie group carries the group's error rate."""
    order = np.argsort(unc, kind="stable")
    u = unc[order]
    w = wrong[order].astype(np.float64)
    expected = np.empty_like(w)
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    ends = np.r_[starts[1:], len(u)]
    for s, e in zip(starts, ends):
        expected[s:e] = w[s:e].mean()
    risk = np.cumsum(expected) / np.arange(1, len(u) + 1)
    return float(risk.mean())


def aurc_permutation_average(unc: np.ndarray, wrong: np.ndarray) -> float:
    """Brute force for tiny inputs: AURC averaged over every order of the tied pixels."""
    groups = {}
    for u, w in zip(unc.tolist(), wrong.tolist()):
        groups.setdefault(u, []).append(w)
    keys = sorted(groups)
    per_group = [sorted(set(itertools.permutations(groups[k]))) for k in keys]
    total, count = 0.0, 0
    for combo in itertools.product(*per_group):
        seq = np.array([x for g in combo for x in g], dtype=np.float64)
        total += float(np.mean(np.cumsum(seq) / np.arange(1, len(seq) + 1)))
        count += 1
    # every distinct arrangement of a group is equally likely (multiset permutations)
    return total / count


def aurc_optimal(wrong: np.ndarray) -> float:
    """AURC of the oracle that keeps every correct pixel before any wrong one."""
    w = np.sort(wrong.astype(np.float64))
    return float(np.mean(np.cumsum(w) / np.arange(1, len(w) + 1)))


def correlations(unc64: np.ndarray, wrong: np.ndarray, abs_err: np.ndarray) -> dict:
    out = {}
    for name, target in (("wrong", wrong.astype(np.float64)), ("abs_error", abs_err)):
        const = len(unc64) < 2 or np.all(unc64 == unc64[0]) or np.all(target == target[0])
        if const:
            out[f"pearson_{name}"] = None
            out[f"spearman_{name}"] = None
        else:
            out[f"pearson_{name}"] = float(stats.pearsonr(unc64, target)[0])
            out[f"spearman_{name}"] = float(stats.spearmanr(unc64, target)[0])
    return out


def pavpu_counts(unc64, correct, region, width, height, patch, acc_th, unc_th):
    """Mukhoti & Gal (2018): non-overlapping patch x patch windows (partial ones at the
    right/bottom edge included); only region pixels count; a window is accurate when its
    pixel accuracy >= acc_th and certain when its mean uncertainty < unc_th."""
    u = unc64.reshape(height, width)
    c = correct.reshape(height, width)
    r = region.reshape(height, width)
    n_ac = n_au = n_ic = n_iu = 0
    for y0 in range(0, height, patch):
        for x0 in range(0, width, patch):
            m = r[y0:y0 + patch, x0:x0 + patch]
            if not m.any():
                continue
            acc = c[y0:y0 + patch, x0:x0 + patch][m].sum() / m.sum()
            mu = u[y0:y0 + patch, x0:x0 + patch][m].sum() / m.sum()
            accurate = acc >= acc_th
            certain = mu < unc_th
            if accurate and certain:
                n_ac += 1
            elif accurate:
                n_au += 1
            elif certain:
                n_ic += 1
            else:
                n_iu += 1
    tot = n_ac + n_au + n_ic + n_iu
    return {
        "uncertainty_threshold": unc_th,
        "n_ac": n_ac, "n_au": n_au, "n_ic": n_ic, "n_iu": n_iu,
        "pavpu": (n_ac + n_iu) / tot if tot else None,
        "p_accurate_given_certain": n_ac / (n_ac + n_ic) if n_ac + n_ic else None,
        "p_uncertain_given_inaccurate": n_iu / (n_ic + n_iu) if n_ic + n_iu else None,
    }


def uncertainty_metrics(unc32, prob32, gt, region, width, height, cfg) -> dict:
    region_idx = np.flatnonzero(region)
    unc64 = unc32.astype(np.float64)
    p64 = prob32.astype(np.float64)
    pred = prob32 >= np.float32(0.5)
    wrong = pred != gt
    correct = ~wrong
    # |p - gt| in float32, as the Rust side computes it (1 - p or p)
    abs_err = np.abs(prob32 - gt.astype(np.float32)).astype(np.float64)
    u = unc64[region_idx]
    w = wrong[region_idx]
    out = {}
    n = len(u)
    n_wrong = int(w.sum())
    if 0 < n_wrong < n:
        out["auroc"] = float(roc_auc_score(w, u))
        out["aupr"] = float(average_precision_score(w, u))
    else:
        out["auroc"] = None
        out["aupr"] = None
    if n > 0:
        out["aurc"] = aurc_expected(unc32[region_idx], w)
        opt = aurc_optimal(w)
        out["eaurc"] = out["aurc"] - opt
    else:
        out["aurc"] = None
        out["eaurc"] = None
    p = cfg["pavpu"]
    out["pavpu"] = pavpu_counts(unc64, correct, region, width, height, p["patch_size"],
                                p["accuracy_threshold"], p["uncertainty_threshold"])
    out["pavpu_curve"] = [
        pavpu_counts(unc64, correct, region, width, height, p["patch_size"],
                     p["accuracy_threshold"], t)
        for t in p["curve_thresholds"]
    ]
    out.update(correlations(u, w, abs_err[region_idx]))
    return out


def calibration(prob32, gt, region, n_bins, eps) -> dict:
    """ECE (Guo et al. 2017) over confidence = max(p, 1-p) with n_bins equal-width bins
    (lo, hi], accuracy = (p >= 0.5) == gt; Brier = mean (p - gt)^2; NLL = mean binary
    cross-entropy with p clamped to [eps, 1 - eps]."""
    idx = np.flatnonzero(region)
    p = prob32.astype(np.float64)[idx]
    y = gt[idx]
    n = len(p)
    if n == 0:
        bins = [{"lower": k / n_bins, "upper": (k + 1) / n_bins, "count": 0,
                 "mean_confidence": None, "accuracy": None} for k in range(n_bins)]
        return {"ece": None, "brier": None, "nll": None, "bins": bins}
    conf = np.maximum(p, 1.0 - p)
    acc = ((prob32[idx] >= np.float32(0.5)) == y).astype(np.float64)
    bounds = np.arange(n_bins + 1, dtype=np.float64) / n_bins
    ece = 0.0
    bins = []
    for k in range(n_bins):
        inb = (conf > bounds[k]) & (conf <= bounds[k + 1])
        if k == 0:
            inb |= conf == 0.0
        cnt = int(inb.sum())
        if cnt:
            mc = float(conf[inb].mean())
            ma = float(acc[inb].mean())
            ece += cnt / n * abs(ma - mc)
        else:
            mc = ma = None
        bins.append({"lower": bounds[k], "upper": bounds[k + 1], "count": cnt,
                     "mean_confidence": mc, "accuracy": ma})
    yf = y.astype(np.float64)
    brier = float(np.mean((p - yf) ** 2))
    pc = np.clip(p, eps, 1.0 - eps)
    nll = float(-np.mean(yf * np.log(pc) + (1.0 - yf) * np.log(1.0 - pc)))
    return {"ece": float(ece), "brier": brier, "nll": nll, "bins": bins}


def near_gt_region(gt: np.ndarray) -> np.ndarray:
    """Ground truth dilated by a disk of radius 4: Euclidean distance to gt <= 4."""
    if not gt.any():
        return np.zeros_like(gt)
    return ndimage.distance_transform_edt(~gt) <= NEAR_GT_RADIUS


# ------------------------------------------------------------------------- object cases
def smooth_noise(rng, h, w, sigma):
    z = rng.standard_normal((h, w))
    z = ndimage.gaussian_filter(z, sigma)
    return z / (z.std() + 1e-12)


def random_object(rng, h, w, n_blobs, noise, unc_round, iou_milli, empty_gt=False):
    yy, xx = np.mgrid[0:h, 0:w]
    gt = np.zeros((h, w), dtype=bool)
    if not empty_gt:
        for _ in range(n_blobs):
            cy, cx = rng.uniform(0.2 * h, 0.8 * h), rng.uniform(0.2 * w, 0.8 * w)
            ry, rx = rng.uniform(0.1 * h, 0.3 * h), rng.uniform(0.1 * w, 0.3 * w)
            gt |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    sd = ndimage.gaussian_filter(gt.astype(np.float64) * 2 - 1, 1.5)
    logit = 4.0 * sd + noise * smooth_noise(rng, h, w, 2.0) + 0.6 * rng.standard_normal((h, w))
    prob = 1.0 / (1.0 + np.exp(-logit))
    prob_milli = np.rint(prob * 1000).astype(np.int64)
    # make sure the edge values occur: exactly 0.5, 0 and 1
    flat = prob_milli.reshape(-1)
    picks = rng.choice(flat.size, 12, replace=False)
    flat[picks[:4]] = 500
    flat[picks[4:8]] = 0
    flat[picks[8:]] = 1000
    p = flat / 1000.0
    ent = -(np.clip(p, 1e-4, 1) * np.log(np.clip(p, 1e-4, 1))
            + np.clip(1 - p, 1e-4, 1) * np.log(np.clip(1 - p, 1e-4, 1)))
    unc = ent + 0.08 * rng.standard_normal(p.shape)
    unc = np.clip(unc, 0.0, 0.7)
    unc_milli = (np.rint(unc * unc_round) * (1000 // unc_round)).astype(np.int64)
    return {
        "width": w,
        "height": h,
        "prob_milli": flat.tolist(),
        "uncertainty_milli": unc_milli.tolist(),
        "gt": "".join("1" if v else "0" for v in gt.reshape(-1)),
        "iou_score_milli": iou_milli,
    }


def evaluate_case(case: dict) -> dict:
    w, h = case["width"], case["height"]
    cfg = case["config"]
    prob32 = from_milli(case["prob_milli"])
    unc32 = from_milli(case["uncertainty_milli"])
    gt = np.array([c == "1" for c in case["gt"]], dtype=bool)
    pred = prob32 >= np.float32(0.5)
    j = davis_iou(gt.reshape(h, w), pred.reshape(h, w))
    f, bound_pix = davis_f_measure(pred.reshape(h, w), gt.reshape(h, w), cfg["boundary_threshold"])
    whole = np.ones(w * h, dtype=bool)
    near = near_gt_region(gt.reshape(h, w)).reshape(-1)
    out = {
        "segmentation": {"j": j, "f": f, "jf": (j + f) / 2, "boundary_tolerance_px": bound_pix},
    }
    for name, region in (("whole", whole), ("near_gt", near)):
        idx = np.flatnonzero(region)
        wrong = (pred != gt)[idx]
        out[name] = {
            "n_pixels": int(len(idx)),
            "n_wrong": int(wrong.sum()),
            "calibration": calibration(prob32, gt, region, cfg["ece_bins"], cfg["nll_eps"]),
            "uncertainty": uncertainty_metrics(unc32, prob32, gt, region, w, h, cfg),
        }
    if case["iou_score_milli"] is not None:
        score = from_milli([case["iou_score_milli"]])[0]
        const = np.full(w * h, np.float32(1.0) - score, dtype=np.float32)
        out["mask_level"] = {
            "uncertainty_value": float(const[0]),
            "whole": uncertainty_metrics(const, prob32, gt, whole, w, h, cfg),
            "near_gt": uncertainty_metrics(const, prob32, gt, near, w, h, cfg),
        }
    else:
        out["mask_level"] = None
    return out


def default_config(**pavpu):
    p = {"patch_size": 4, "accuracy_threshold": 0.5, "uncertainty_threshold": 0.2,
         "curve_thresholds": [round(0.05 * k, 2) for k in range(15)]}
    p.update(pavpu)
    return {"boundary_threshold": 0.008, "near_gt_radius": NEAR_GT_RADIUS, "ece_bins": 15,
            "nll_eps": 1e-7, "pavpu": p}


def object_cases(rng):
    specs = [
        # name, h, w, blobs, noise, uncertainty rounding (values per unit), iou, config
        ("blobs_48x64", 48, 64, 2, 1.5, 100, 812, default_config()),
        ("partial_patches_45x61", 45, 61, 1, 2.0, 50, 430,
         dict(default_config(patch_size=3, accuracy_threshold=0.75, uncertainty_threshold=0.35),
              ece_bins=10)),
        ("tolerance2_80x120", 80, 120, 3, 1.0, 1000, 655, default_config()),
        ("bound_th_pixels_40x40", 40, 40, 1, 2.5, 20, None,
         dict(default_config(patch_size=5), boundary_threshold=3.0)),
        ("empty_gt_32x32", 32, 32, 0, 1.0, 100, 900, default_config()),
    ]
    cases = []
    for name, h, w, blobs, noise, ur, iou, cfg in specs:
        case = {"name": name, "config": cfg}
        case.update(random_object(rng, h, w, blobs, noise, ur, iou, empty_gt=(blobs == 0)))
        case["expected"] = evaluate_case(case)
        cases.append(case)
    return cases


# ---------------------------------------------------------------------- function cases
def function_cases(rng):
    corr = []
    for n, levels in ((40, 5), (300, 20), (1000, 1000)):
        x = rng.integers(0, levels, n)
        y = x + rng.integers(0, levels, n) - levels // 3
        xs, ys = x / 7.0, y / 3.0  # the Rust side divides the same integers
        corr.append({"x_times_7": x.tolist(), "y_times_3": y.tolist(),
                     "pearson": float(stats.pearsonr(xs, ys)[0]),
                     "spearman": float(stats.spearmanr(xs, ys)[0]),
                     "ranks_x": stats.rankdata(xs).tolist()})
    ranking = []
    for n, levels in ((20, 4), (500, 25), (2000, 1000)):
        score_milli = rng.integers(0, levels, n) * (1000 // levels)
        label = rng.random(n) < 0.3 + 0.4 * (score_milli / 1000.0)
        s32 = from_milli(score_milli)
        ranking.append({
            "score_milli": score_milli.tolist(),
            "label": "".join("1" if v else "0" for v in label),
            "auroc": float(roc_auc_score(label, s32.astype(np.float64))),
            "aupr": float(average_precision_score(label, s32.astype(np.float64))),
            "aurc": aurc_expected(s32, label),
            "eaurc": aurc_expected(s32, label) - aurc_optimal(label),
        })
    # tiny case: the tie expectation equals the average over every tie order
    s = from_milli([100, 100, 100, 300, 300, 500, 500, 500])
    lab = np.array([1, 0, 0, 1, 0, 1, 1, 0], dtype=bool)
    brute = aurc_permutation_average(s, lab)
    assert abs(brute - aurc_expected(s, lab)) < 1e-12, (brute, aurc_expected(s, lab))
    ranking.append({
        "score_milli": [100, 100, 100, 300, 300, 500, 500, 500],
        "label": "10010110",
        "auroc": float(roc_auc_score(lab, s.astype(np.float64))),
        "aupr": float(average_precision_score(lab, s.astype(np.float64))),
        "aurc": brute,
        "eaurc": brute - aurc_optimal(lab),
    })
    return {"correlation": corr, "ranking": ranking}


def main():
    rng = np.random.default_rng(20260511)
    OUT.mkdir(parents=True, exist_ok=True)
    files = {
        "objects.json": {"cases": object_cases(rng)},
        "functions.json": function_cases(rng),
    }
    total = 0
    for name, data in files.items():
        text = json.dumps(data, separators=(",", ":")) + "\n"
        (OUT / name).write_text(text)
        total += len(text)
        print(f"{name}: {len(text) / 1024:.1f} KiB")
    for case in files["objects.json"]["cases"]:
        e = case["expected"]
        print(f"{case['name']}: J={e['segmentation']['j']:.4f} F={e['segmentation']['f']:.4f} "
              f"tol={e['segmentation']['boundary_tolerance_px']} "
              f"AUROC={e['whole']['uncertainty']['auroc']} near_gt n={e['near_gt']['n_pixels']}")
    print(f"total {total / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
