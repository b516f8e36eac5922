//! Dataset readers shared by training and evaluation.
