//! Evaluation metrics of the paper's protocol (segmentation quality and how well
//! uncertainty marks wrong pixels) and the statistics that compare two models.
pub mod calibration;
pub mod correlation;
pub mod object;
pub mod pavpu;
pub mod pooled;
pub mod ranking;
pub mod segmentation;
pub mod stats;
