//! What each step of a run trains and with which weights: the curriculum (`weight_schedule`
//! in `ruac/configs/sam2_ruac_train.yaml`, paper §3.5) and the role of each parameter
//! (which learning-rate group it belongs to, and whether it is trained at all).
use crate::checkpoint::{is_bayes_head, is_buffer, ATTACKER_PREFIXES, VIDEO_ONLY_PREFIXES};

/// The curriculum, in fractions of the run: clean only, then + KL, then + the adversarial
/// branch (release: epochs 0–4, 5–6, 7–19 of 20), with the loss weights of the paper.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WeightSchedule {
    pub kl_from: f64,
    pub adv_from: f64,
    /// Clean segmentation weight once the adversarial branch is on (0.8).
    pub clean_seg_late: f64,
    /// β on the KL (0.05).
    pub kl: f64,
    /// γ, the adversarial branch's weight (0.2).
    pub adv: f64,
    /// λ, the UAA loss weight inside the adversarial branch (0.1).
    pub cal: f64,
    /// Once on, the adversarial branch runs every `adv_every`-th step (1 in the release; more
    /// where its encoder backward pass dominates a step, as on a CPU with cached embeddings).
    pub adv_every: usize,
}

impl Default for WeightSchedule {
    fn default() -> Self {
        Self {
            kl_from: 5.0 / 20.0,
            adv_from: 7.0 / 20.0,
            clean_seg_late: 0.8,
            kl: 0.05,
            adv: 0.2,
            cal: 0.1,
            adv_every: 1,
        }
    }
}

/// What step `step` of a run computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepPlan {
    /// The KL term is added.
    pub kl_on: bool,
    /// The adversarial branch runs (with the UAA loss inside it).
    pub adv_on: bool,
    /// Weight of the clean branch's segmentation loss.
    pub clean_weight: f64,
}

impl WeightSchedule {
    /// The plan of `step` (0-based) of `total`; `attackers` says whether any attacker is on.
    pub fn plan(&self, step: usize, total: usize, attackers: bool) -> StepPlan {
        let frac = step as f64 / total as f64;
        let kl_on = frac >= self.kl_from;
        let adv_on = frac >= self.adv_from && attackers && step % self.adv_every.max(1) == 0;
        StepPlan { kl_on, adv_on, clean_weight: if adv_on { self.clean_seg_late } else { 1.0 } }
    }
}

/// The learning-rate group a parameter belongs to, by its checkpoint name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamRole {
    /// The style and deformation attackers (and, on a SAM 1 base, the deformation attacker's
    /// fresh copies of SAM 2's memory encoder).
    Attacker,
    /// RUAC's Bayesian pixel head.
    BayesHead,
    /// The image encoder (frozen in RUAC).
    ImageEncoder,
    /// The rest of SAM: prompt encoder, mask decoder, memory modules.
    Base,
}

impl ParamRole {
    pub fn of(name: &str) -> Self {
        if ATTACKER_PREFIXES.iter().chain(VIDEO_ONLY_PREFIXES).any(|p| name.starts_with(p)) {
            ParamRole::Attacker
        } else if is_bayes_head(name) {
            ParamRole::BayesHead
        } else if name.starts_with("image_encoder.") {
            ParamRole::ImageEncoder
        } else {
            ParamRole::Base
        }
    }
}

/// Whether a parameter is trained: buffers never; the deformation attacker's copies of SAM 2's
/// memory encoder only when no checkpoint provided them (`from_init` false: a SAM 1 base, or
/// SAM 2 from scratch), since the reference keeps them frozen; the image encoder unless frozen.
pub fn is_trained(name: &str, freeze_image_encoder: bool, from_init: bool) -> bool {
    if is_buffer(name) {
        return false;
    }
    if VIDEO_ONLY_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return !from_init;
    }
    if name.starts_with("image_encoder.") {
        return !freeze_image_encoder;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_curriculum_by_hand() {
        // 20 epochs as 20 steps: clean 0–4, + KL 5–6, + adversarial 7–19 (weights 0.8 / 1).
        let w = WeightSchedule::default();
        let p = |s| w.plan(s, 20, true);
        assert_eq!(p(4), StepPlan { kl_on: false, adv_on: false, clean_weight: 1.0 });
        assert_eq!(p(5), StepPlan { kl_on: true, adv_on: false, clean_weight: 1.0 });
        assert_eq!(p(6), StepPlan { kl_on: true, adv_on: false, clean_weight: 1.0 });
        assert_eq!(p(7), StepPlan { kl_on: true, adv_on: true, clean_weight: 0.8 });
        // No attacker: never adversarial; every 4th step once on.
        assert!(!w.plan(19, 20, false).adv_on);
        let every4 = WeightSchedule { adv_every: 4, ..w };
        let on: Vec<usize> = (0..20).filter(|&s| every4.plan(s, 20, true).adv_on).collect();
        assert_eq!(on, vec![8, 12, 16]);
    }

    #[test]
    fn roles_and_training_by_name() {
        assert_eq!(ParamRole::of("style_gcn.layers.0.weight"), ParamRole::Attacker);
        assert_eq!(ParamRole::of("sam_mask_decoder.pixel_bndl.fc.weight"), ParamRole::BayesHead);
        // The SAM 1 family's head (LiteMedSAM, the photo default) is the same role.
        assert_eq!(ParamRole::of("mask_decoder.pixel_bndl.linear.weight"), ParamRole::BayesHead);
        assert_eq!(ParamRole::of("mask_decoder.iou_prediction_head.layers.0.weight"), ParamRole::Base);
        assert_eq!(ParamRole::of("image_encoder.trunk.blocks.0.attn.qkv.weight"), ParamRole::ImageEncoder);
        assert_eq!(ParamRole::of("sam_mask_decoder.iou_prediction_head.layers.0.weight"), ParamRole::Base);
        assert!(!is_trained("image_encoder.neck.convs.0.conv.weight", true, true));
        assert!(is_trained("image_encoder.neck.convs.0.conv.weight", false, true));
        assert!(is_trained("sam_mask_decoder.pixel_bndl.fc.weight", true, true));
    }
}
