//! RUAC's training-only method (paper §3): prompt sampling, losses, the gradient-reversal
//! layer, differentiable warping, the style and deformation attackers, and one training
//! branch. Nothing here is needed at inference; the attackers are dropped at export.
pub mod attack;
pub mod base;
pub mod deform;
pub mod grl;
pub mod losses;
pub mod params;
pub mod prompts;
pub mod step;
pub mod style;
pub mod warp;
