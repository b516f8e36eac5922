"""Evaluation metrics on numpy arrays: the code ``trainer eval`` and ``trainer compare``
score with (Rust, ``ruac_core::metrics``), so that predictions of other methods are scored
identically.

Segmentation: ``iou`` (J), ``boundary_f_measure`` (DAVIS F), ``j_and_f``. Uncertainty as a
detector of wrong pixels: ``auroc``, ``aupr``, ``aurc``, ``eaurc``, ``pavpu``. Calibration of
the probability: ``calibration``, ``ece``. Everything for one object at once:
``evaluate_object`` (with ``default_metric_config``). Correlations and tests: ``pearson``,
``spearman``, ``wilcoxon``, ``bootstrap_mean_ci``, ``compare_paired``.
"""

from ._native import (
    aupr,
    aurc,
    auroc,
    boundary_f_measure,
    bootstrap_mean_ci,
    calibration,
    compare_paired,
    default_metric_config,
    eaurc,
    ece,
    evaluate_object,
    iou,
    j_and_f,
    pavpu,
    pearson,
    spearman,
    wilcoxon,
)

__all__ = [
    "aupr",
    "aurc",
    "auroc",
    "boundary_f_measure",
    "bootstrap_mean_ci",
    "calibration",
    "compare_paired",
    "default_metric_config",
    "eaurc",
    "ece",
    "evaluate_object",
    "iou",
    "j_and_f",
    "pavpu",
    "pearson",
    "spearman",
    "wilcoxon",
]
