#!/usr/bin/env python3
"""Reference fixtures for ruac-core's evaluation statistics and click protocol.

Writes to crates/ruac-core/tests/fixtures/stats/:

* wilcoxon.json  paired samples and what ``scipy.stats.wilcoxon(x, y)`` returns for them
  with scipy's defaults (zero_method="wilcox", correction=False, alternative="two-sided",
  method="auto"), plus a few cases with ``correction=True``. Every value is a multiple of
  1/256 (or an integer), so the JSON round-trips exactly and ``x - y`` is exact in f64.
  ``method`` names the route scipy's "auto" took: "exact" (n <= 50, no ties, no zeros),
  "permutation" (ties or zeros and n <= 13: scipy enumerates all 2^n sign flips) or
  "asymptotic" (normal approximation with tie-corrected variance).
* edt.json       random masks (run-length encoded, row-major, first run = background) with
  the squared Euclidean distance of every pixel to the nearest background pixel, the
  image border counting as background: ``distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]``
  (the RITM / SAM click-simulator convention), and the first row-major argmax.
* clicks.json    ground-truth / prediction mask pairs and the click a straightforward
  reference implementation of the protocol (scipy.ndimage.label with 8-connectivity +
  the padded EDT) gives: first click and next click.

Deterministic: an unchanged script reproduces the files byte for byte.
Run from the repository root: $VENV/bin/python tools/make_stats_fixtures.py
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import scipy
from scipy import ndimage, stats

OUT = Path(__file__).resolve().parent.parent / "crates/ruac-core/tests/fixtures/stats"


# ---------------------------------------------------------------------------------------
# Wilcoxon signed-rank
# ---------------------------------------------------------------------------------------

def auto_route(d: np.ndarray) -> str:
    """The route scipy 1.17's method="auto" takes (scipy/stats/_wilcoxon.py)."""
    n = d.size
    if n > 50:
        return "asymptotic"
    nz = d[d != 0]
    has_zeros = nz.size < n
    has_ties = np.unique(np.abs(nz)).size < nz.size
    if not (has_ties or has_zeros):
        return "exact"
    if n <= 13:
        return "permutation"
    return "asymptotic"


def q(v) -> list[float]:
    """Round to multiples of 1/256 (exact in binary, short decimal repr)."""
    return [float(x) for x in np.round(np.asarray(v, dtype=np.float64) * 256) / 256]


def wilcoxon_cases() -> list[dict]:
    rng = np.random.default_rng(20260510)
    cases: list[tuple[str, list[float], list[float], bool]] = []

    def add(name, x, y, correction=False):
        cases.append((name, q(x), q(y), correction))

    # Hand-worked: 5 positive differences; R- = 0, P(R+ = 15) = 1/32, two-sided 2/32.
    add("hand_n5_all_positive", [1, 2, 3, 4, 5], [0, 0, 0, 0, 0])
    add("hand_n1", [0.5], [0.25])
    add("hand_n3_mixed", [1, -2, 3], [0, 0, 0])

    def distinct(n, loc=0.0, scale=1.0):
        # Distinct magnitudes: a random permutation of k/256 with k distinct.
        k = rng.choice(np.arange(1, 2000), size=n, replace=False)
        sign = np.where(rng.random(n) < 0.5 + loc, 1.0, -1.0)
        return sign * k / 256 * scale

    # exact (no ties, no zeros, n <= 50)
    for n, loc in [(6, 0.3), (10, 0.0), (10, 0.35), (20, 0.2), (30, 0.0), (50, 0.15)]:
        d = distinct(n, loc)
        y = rng.integers(0, 256, n) / 256
        add(f"exact_n{n}_loc{loc}", y + d, y)
    # like two models' IoUs on 12 domains (all differences distinct)
    a = q(rng.uniform(0.5, 0.9, 12))
    b = q(np.asarray(a) - rng.normal(0.02, 0.03, 12))
    add("iou_like_n12", a, b)

    # asymptotic without ties (n > 50)
    for n, loc in [(51, 0.1), (80, 0.0), (200, 0.05)]:
        d = distinct(n, loc)
        y = rng.integers(0, 256, n) / 256
        add(f"asymptotic_n{n}_noties", y + d, y)

    # ties / zeros with n <= 13 -> permutation (exact enumeration of sign flips)
    add("perm_ties_n8", [1, 2, 2, 3, -3, 4, 5, 2], [0] * 8)
    add("perm_zeros_n10", [0, 1, 2, 0, 3, 4, -5, 6, 7, 8], [0] * 10)
    add("perm_ties_zeros_n13", [0.5, -0.5, 1, 1, 1, 2, 0, 3, 3, -4, 5, 6, 7], [0] * 13)
    add("perm_all_zeros_n5", [1, 2, 3, 4, 5], [1, 2, 3, 4, 5])
    d = rng.integers(-6, 10, 12).astype(float)
    add("perm_random_ints_n12", d, np.zeros(12))

    # ties / zeros with 13 < n <= 50 -> asymptotic with tie correction
    add("asym_zeros_n14", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, -12, 13], [0] * 14)
    d = rng.integers(-5, 12, 30).astype(float)
    add("asym_ties_n30", d, np.zeros(30))
    d = rng.integers(-8, 9, 45).astype(float) / 4
    add("asym_ties_zeros_n45", d, np.zeros(45))
    d = rng.integers(-10, 14, 120).astype(float) / 8
    add("asym_ties_n120", d, np.zeros(120))
    # continuity correction (scipy's correction=True)
    d = rng.integers(-10, 14, 120).astype(float) / 8
    add("asym_ties_n120_correction", d, np.zeros(120), True)
    d = distinct(60, -0.1)
    add("asym_n60_correction", d, np.zeros(60), True)
    d = rng.integers(-3, 5, 25).astype(float)
    add("asym_ties_n25_correction", d, np.zeros(25), True)

    out = []
    for name, x, y, correction in cases:
        xa, ya = np.asarray(x), np.asarray(y)
        d = xa - ya
        route = auto_route(d)
        with warnings.catch_warnings():
            # all-zero differences: scipy divides 0/0 for an unused z-score
            warnings.simplefilter("ignore", RuntimeWarning)
            res = stats.wilcoxon(xa, ya, correction=correction)
        # cross-check the route: the explicit method must give the same p-value
        nz = int(np.count_nonzero(d))
        if route in ("exact", "asymptotic") and nz > 0:
            res2 = stats.wilcoxon(xa, ya, correction=correction, method=route)
            assert np.isclose(res2.pvalue, res.pvalue, rtol=1e-14, atol=0), name
        out.append({
            "name": name,
            "x": x,
            "y": y,
            "correction": correction,
            "method": route,
            "n_used": nz,
            "statistic": float(res.statistic),
            "pvalue": float(res.pvalue),
        })
    return out


# ---------------------------------------------------------------------------------------
# Masks, EDT, clicks
# ---------------------------------------------------------------------------------------

def rle(mask: np.ndarray) -> list[int]:
    """Row-major run lengths, alternating background / foreground, background first."""
    flat = mask.reshape(-1).astype(np.int8)
    runs, cur, n = [], 0, 0
    for v in flat:
        if v == cur:
            n += 1
        else:
            runs.append(n)
            cur, n = int(v), 1
    runs.append(n)
    return runs


def padded_edt_sq(mask: np.ndarray) -> np.ndarray:
    """Squared distance to the nearest background pixel, the border counting as background."""
    e = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    return np.rint(e * e).astype(np.int64)


def blobs(rng, h, w, sigma, thresh) -> np.ndarray:
    """Smoothed noise, standardised, above `thresh` standard deviations."""
    f = ndimage.gaussian_filter(rng.standard_normal((h, w)), sigma)
    return (f - f.mean()) / f.std() > thresh


def edt_cases() -> list[dict]:
    rng = np.random.default_rng(7)
    masks = [
        ("blobs_40x50", blobs(rng, 40, 50, 4.0, 0.0)),
        ("blobs_50x40", blobs(rng, 50, 40, 3.0, 0.05)),
        ("noise_40x50", rng.random((40, 50)) < 0.7),
        ("big_blob_40x50", blobs(rng, 40, 50, 8.0, -0.05)),
        ("full_7x9", np.ones((7, 9), bool)),
        ("empty_6x5", np.zeros((6, 5), bool)),
    ]
    out = []
    for name, m in masks:
        h, w = m.shape
        e = padded_edt_sq(m)
        out.append({
            "name": name,
            "h": h,
            "w": w,
            "rle": rle(m),
            "edt_sq": e.reshape(-1).tolist(),
            "argmax": int(np.argmax(e)) if m.any() else None,
        })
    return out


EIGHT = np.ones((3, 3), int)


def ref_first_click(gt):
    if not gt.any():
        return None
    e = padded_edt_sq(gt)
    i = int(np.argmax(e))
    return {"x": i % gt.shape[1], "y": i // gt.shape[1], "positive": True}


def ref_next_click(gt, pred):
    fn = gt & ~pred
    fp = ~gt & pred
    best = None  # (size, is_fn, component mask)
    for is_fn, err in ((True, fn), (False, fp)):
        lab, k = ndimage.label(err, structure=EIGHT)
        for c in range(1, k + 1):
            comp = lab == c
            s = int(comp.sum())
            # strictly larger wins: ties keep the earlier one (FN before FP, scan order)
            if best is None or s > best[0]:
                best = (s, is_fn, comp)
    if best is None:
        return None
    e = padded_edt_sq(best[2])
    i = int(np.argmax(e))
    return {"x": i % gt.shape[1], "y": i // gt.shape[1], "positive": best[1]}


def click_cases() -> list[dict]:
    rng = np.random.default_rng(11)
    out = []
    for t in range(8):
        h, w = (40, 50) if t % 2 == 0 else (33, 27)
        gt = blobs(rng, h, w, 4.0, 0.4 * (t % 3))
        # a prediction: the gt, dilated / eroded / shifted, plus noise blobs
        pred = gt.copy()
        if t % 4 == 0:
            pred = ndimage.binary_erosion(pred, iterations=2)
        elif t % 4 == 1:
            pred = ndimage.binary_dilation(pred, iterations=2)
        elif t % 4 == 2:
            pred = np.roll(pred, 3, axis=1)
        pred = pred ^ blobs(rng, h, w, 2.0, 1.6)
        out.append({
            "name": f"random_{t}",
            "h": h,
            "w": w,
            "gt_rle": rle(gt),
            "pred_rle": rle(pred),
            "first": ref_first_click(gt),
            "next": ref_next_click(gt, pred),
        })
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    meta = {"generator": "tools/make_stats_fixtures.py", "scipy": scipy.__version__,
            "numpy": np.__version__}
    files = {
        "wilcoxon.json": {**meta, "cases": wilcoxon_cases()},
        "edt.json": {**meta, "cases": edt_cases()},
        "clicks.json": {**meta, "cases": click_cases()},
    }
    for fname, obj in files.items():
        path = OUT / fname
        path.write_text(json.dumps(obj, separators=(",", ":")) + "\n")
        print(f"{path.relative_to(OUT.parent.parent.parent.parent.parent)}: "
              f"{len(obj['cases'])} cases, {path.stat().st_size} bytes")
    for c in files["wilcoxon.json"]["cases"]:
        print(f"  {c['name']:28s} n={c['n_used']:3d} {c['method']:11s} "
              f"T={c['statistic']:8.1f} p={c['pvalue']:.6g}")


if __name__ == "__main__":
    main()
