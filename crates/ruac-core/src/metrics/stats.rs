//! Paired comparison statistics (Wilcoxon signed-rank, bootstrap confidence intervals).
