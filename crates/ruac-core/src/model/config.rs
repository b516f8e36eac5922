//! Model configurations: the four SAM 2.1 sizes of `sam2/configs/sam2.1/*.yaml`
//! (facebookresearch/sam2) and a `micro` size of the same code for tests and for the
//! model we train on a 2-core machine.
use serde::{Deserialize, Serialize};

/// Hiera trunk hyper-parameters (`sam2/modeling/backbones/hieradet.py`, class `Hiera`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HieraConfig {
    pub embed_dim: usize,
    pub num_heads: usize,
    /// Blocks per stage.
    pub stages: Vec<usize>,
    /// Blocks (global indices) that attend globally instead of in windows.
    pub global_att_blocks: Vec<usize>,
    /// Window size per stage (the first block of a stage uses the previous stage's size).
    pub window_spec: Vec<usize>,
    /// Background positional embedding grid, interpolated bicubically to the feature size.
    pub window_pos_embed_bkg_spatial_size: (usize, usize),
    /// Number of stage transitions that pool the queries 2x2.
    pub q_pool: usize,
    pub dim_mul: f64,
    pub head_mul: f64,
    pub mlp_ratio: f64,
}

/// One Hiera block as the schedule builds it (`hieradet.py` `Hiera.__init__`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HieraBlockSpec {
    pub dim: usize,
    pub dim_out: usize,
    pub heads: usize,
    /// Attention window side; 0 for a global block.
    pub window: usize,
    /// Whether the block pools its queries 2x2 (the first block of a pooled stage).
    pub q_stride: bool,
    /// Whether the block is the last of its stage (its output is a trunk output).
    pub stage_end: bool,
}

impl HieraConfig {
    /// Index of the last block of each stage.
    pub fn stage_ends(&self) -> Vec<usize> {
        (1..=self.stages.len()).map(|i| self.stages[..i].iter().sum::<usize>() - 1).collect()
    }

    /// Every block's widths, heads, window and pooling, in order: the one schedule both
    /// backends build from.
    pub fn blocks(&self) -> Vec<HieraBlockSpec> {
        let stage_ends = self.stage_ends();
        let q_pool_blocks: Vec<usize> =
            stage_ends[..stage_ends.len().saturating_sub(1)].iter().map(|x| x + 1).take(self.q_pool).collect();
        let depth: usize = self.stages.iter().sum();
        let (mut dim, mut heads, mut cur_stage) = (self.embed_dim, self.num_heads, 1);
        let mut blocks = Vec::with_capacity(depth);
        for i in 0..depth {
            let mut dim_out = dim;
            // The window size is read before the stage counter moves: the first block of a
            // stage still uses the previous stage's window (as the reference does).
            let mut window = self.window_spec[cur_stage - 1];
            if self.global_att_blocks.contains(&i) {
                window = 0;
            }
            if i > 0 && stage_ends.contains(&(i - 1)) {
                dim_out = (dim as f64 * self.dim_mul) as usize;
                heads = (heads as f64 * self.head_mul) as usize;
                cur_stage += 1;
            }
            let q_stride = q_pool_blocks.contains(&i);
            blocks.push(HieraBlockSpec { dim, dim_out, heads, window, q_stride, stage_end: stage_ends.contains(&i) });
            dim = dim_out;
        }
        blocks
    }

    /// Channel count of each stage's output, high resolution first.
    pub fn stage_dims(&self) -> Vec<usize> {
        let mut d = self.embed_dim as f64;
        let mut dims = vec![];
        for _ in &self.stages {
            dims.push(d as usize);
            d *= self.dim_mul;
        }
        dims
    }
}

/// SAM 2.1 mask decoder hyper-parameters (`sam2/modeling/sam/mask_decoder.py`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecoderConfig {
    pub num_multimask_outputs: usize,
    pub transformer_depth: usize,
    pub transformer_mlp_dim: usize,
    pub transformer_heads: usize,
    pub attention_downsample_rate: usize,
    pub iou_head_depth: usize,
    pub iou_head_hidden_dim: usize,
    pub dynamic_multimask_stability_delta: f32,
    pub dynamic_multimask_stability_thresh: f32,
}

/// How a decoder picks its mask when one mask is asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SingleMask {
    /// Token 0 (SAM 1's `MaskDecoder.forward`; RUAC, whose released trainer never passes
    /// `dynamic_multimask_via_stability`).
    FirstToken,
    /// Plain SAM 2.1: token 0 unless its stability score is below `thresh`
    /// (`_dynamic_multimask_via_stability`).
    Stability { delta: f32, thresh: f32 },
}

impl SingleMask {
    /// SAM 2.1's stability fallback with the decoder's delta and threshold.
    pub fn stability(cfg: &DecoderConfig) -> Self {
        SingleMask::Stability { delta: cfg.dynamic_multimask_stability_delta, thresh: cfg.dynamic_multimask_stability_thresh }
    }
}

/// RUAC's Bayesian pixel head (authors' `BayesianMaskDecoder`, `ruac/adapters/sam2/bayesian_decoder.py`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BayesHeadConfig {
    /// Monte Carlo samples for the user-facing uncertainty map (the released default is 20).
    pub mc_samples: usize,
}

impl Default for BayesHeadConfig {
    fn default() -> Self {
        Self { mc_samples: 20 }
    }
}

/// Whole single-image model: Hiera + FPN neck + prompt encoder + mask decoder (+ Bayesian head).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sam2Config {
    pub name: String,
    pub hiera: HieraConfig,
    /// FPN / prompt / decoder width (`d_model` of the neck, 256 in SAM 2.1).
    pub d_model: usize,
    pub fpn_top_down_levels: Vec<usize>,
    /// Number of lowest-resolution FPN levels dropped (`scalp`).
    pub scalp: usize,
    /// Square input resolution of the image encoder.
    pub image_size: usize,
    pub decoder: DecoderConfig,
    /// `Some` for a RUAC model (Bayesian pixel head), `None` for plain SAM 2.1.
    pub bayes_head: Option<BayesHeadConfig>,
}

impl DecoderConfig {
    pub fn sam2() -> Self {
        Self {
            num_multimask_outputs: 3,
            transformer_depth: 2,
            transformer_mlp_dim: 2048,
            transformer_heads: 8,
            attention_downsample_rate: 2,
            iou_head_depth: 3,
            iou_head_hidden_dim: 256,
            dynamic_multimask_stability_delta: 0.05,
            dynamic_multimask_stability_thresh: 0.98,
        }
    }
}

impl Sam2Config {
    /// The single-mask rule: RUAC's decoder takes token 0, plain SAM 2.1 has the stability
    /// fallback.
    pub fn single_mask(&self) -> SingleMask {
        match self.bayes_head {
            Some(_) => SingleMask::FirstToken,
            None => SingleMask::stability(&self.decoder),
        }
    }

    fn official(name: &str, hiera: HieraConfig) -> Self {
        Self {
            name: name.to_string(),
            hiera,
            d_model: 256,
            fpn_top_down_levels: vec![2, 3],
            scalp: 1,
            image_size: 1024,
            decoder: DecoderConfig::sam2(),
            bayes_head: None,
        }
    }

    fn hiera(embed_dim: usize, num_heads: usize, stages: &[usize], global: &[usize], bkg: usize, window_spec: &[usize]) -> HieraConfig {
        HieraConfig {
            embed_dim,
            num_heads,
            stages: stages.to_vec(),
            global_att_blocks: global.to_vec(),
            window_spec: window_spec.to_vec(),
            window_pos_embed_bkg_spatial_size: (bkg, bkg),
            q_pool: 3,
            dim_mul: 2.0,
            head_mul: 2.0,
            mlp_ratio: 4.0,
        }
    }

    /// `sam2.1_hiera_t.yaml`
    pub fn tiny() -> Self {
        Self::official("tiny", Self::hiera(96, 1, &[1, 2, 7, 2], &[5, 7, 9], 7, &[8, 4, 14, 7]))
    }
    /// `sam2.1_hiera_s.yaml`
    pub fn small() -> Self {
        Self::official("small", Self::hiera(96, 1, &[1, 2, 11, 2], &[7, 10, 13], 7, &[8, 4, 14, 7]))
    }
    /// `sam2.1_hiera_b+.yaml` (the paper's base model).
    pub fn base_plus() -> Self {
        Self::official("base_plus", Self::hiera(112, 2, &[2, 3, 16, 3], &[12, 16, 20], 14, &[8, 4, 14, 7]))
    }
    /// `sam2.1_hiera_l.yaml`
    pub fn large() -> Self {
        Self::official("large", Self::hiera(144, 2, &[2, 6, 36, 4], &[23, 33, 43], 7, &[8, 4, 16, 8]))
    }
    /// Our small configuration of the same code: trunk width 16, FPN width 64, a lighter
    /// two-way transformer. Trainable on a 2-core CPU; default input 256 px.
    pub fn micro() -> Self {
        Self {
            name: "micro".to_string(),
            hiera: Self::hiera(16, 1, &[1, 2, 3, 1], &[5], 4, &[8, 4, 6, 4]),
            d_model: 64,
            fpn_top_down_levels: vec![2, 3],
            scalp: 1,
            image_size: 256,
            decoder: DecoderConfig { transformer_mlp_dim: 256, ..DecoderConfig::sam2() },
            bayes_head: None,
        }
    }

    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "tiny" | "t" | "sam2.1_hiera_t" | "sam2.1_hiera_tiny" => Some(Self::tiny()),
            "small" | "s" | "sam2.1_hiera_s" | "sam2.1_hiera_small" => Some(Self::small()),
            "base_plus" | "b+" | "sam2.1_hiera_b+" | "sam2.1_hiera_base_plus" => Some(Self::base_plus()),
            "large" | "l" | "sam2.1_hiera_l" | "sam2.1_hiera_large" => Some(Self::large()),
            "micro" => Some(Self::micro()),
            _ => None,
        }
    }

    pub fn all_named() -> Vec<Self> {
        vec![Self::tiny(), Self::small(), Self::base_plus(), Self::large(), Self::micro()]
    }

    pub fn with_image_size(mut self, image_size: usize) -> Self {
        self.image_size = image_size;
        self
    }

    pub fn with_bayes_head(mut self, head: Option<BayesHeadConfig>) -> Self {
        self.bayes_head = head;
        self
    }

    /// Side of the lowest-resolution feature map the decoder sees (image / 16).
    pub fn embedding_size(&self) -> usize {
        self.image_size / 16
    }

    /// Side of the low-resolution mask logits (image / 4).
    pub fn low_res_size(&self) -> usize {
        self.image_size / 4
    }

    /// Prompt placement: scaled to the square input.
    pub fn placement(&self) -> crate::prompt::Placement {
        crate::prompt::Placement::Sam2 { image_size: self.image_size }
    }

    /// Checks the invariants the code relies on, so a bad config fails with a message
    /// instead of a shape error deep inside a layer.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: String| Err(crate::Error::Invalid(format!("configuration {}: {m}", self.name)));
        let h = &self.hiera;
        if h.stages.len() != h.window_spec.len() || h.stages.is_empty() {
            return bad("stages and window_spec must have the same non-zero length".into());
        }
        if self.image_size == 0 || self.image_size % 32 != 0 {
            return bad(format!("image_size {} must be a positive multiple of 32", self.image_size));
        }
        let feat = self.image_size / 4;
        if feat % h.window_spec[0] != 0 {
            return bad(format!("first-stage feature size {feat} must be a multiple of window {}", h.window_spec[0]));
        }
        if self.d_model % 8 != 0 {
            return bad(format!("d_model {} must be a multiple of 8", self.d_model));
        }
        // The reference divides by the pooled window size of q-pool blocks: a q-pool block
        // cannot attend globally.
        let ends: Vec<usize> = (1..h.stages.len()).map(|i| h.stages[..i].iter().sum::<usize>()).collect();
        if let Some(b) = ends.iter().take(h.q_pool).find(|b| h.global_att_blocks.contains(b)) {
            return bad(format!("block {b} pools its queries and cannot be a global-attention block"));
        }
        if self.scalp >= h.stages.len() {
            return bad("scalp drops every level".into());
        }
        Ok(())
    }
}
