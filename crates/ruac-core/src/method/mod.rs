//! RUAC's training-only method (paper §3): prompt sampling, losses, the gradient-reversal
//! layer, differentiable warping, the style and deformation attackers, one training branch
//! (`step`), the curriculum and parameter roles (`schedule`), AdamW (`optim`) and the whole
//! training step (`train`). Nothing here is needed at inference; the attackers are dropped
//! at export. The trainer adds only configuration, data loading, logging and checkpoints.
pub mod attack;
pub mod base;
pub mod deform;
pub mod grl;
pub mod losses;
pub mod optim;
pub mod params;
pub mod prompts;
pub mod schedule;
pub mod step;
pub mod style;
pub mod train;
pub mod warp;
