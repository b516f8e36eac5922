//! Training losses: SAM 2's `MultiStepMultiMasksAndIous` terms (`sam2/training/loss_fns.py`),
//! BNDL's Weibull–Gamma KL, and RUAC's Uncertainty-Accuracy Alignment loss
//! (`ruac/core/losses/`, paper §3.4 Eq. 5 and the released symmetric form).
use candle_core::{Result, Tensor, D};

/// Sigmoid focal loss (RetinaNet; SAM 2 uses α = 0.25, γ = 2), averaged over pixels.
/// `logits` and `targets` share a shape; the leading axis is kept (one value per mask).
pub fn sigmoid_focal_loss(
    logits: &Tensor,
    targets: &Tensor,
    alpha: f64,
    gamma: f64,
) -> Result<Tensor> {
    let p = candle_nn::ops::sigmoid(logits)?;
    // BCE with logits in the stable form max(x,0) − x t + ln(1 + e^{−|x|}).
    let ce = ((logits.relu()? - (logits * targets)?)?
        + logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?)?;
    let p_t = ((&p * targets)? + (p.affine(-1.0, 1.0)? * targets.affine(-1.0, 1.0)?)?)?;
    let modulating = p_t.affine(-1.0, 1.0)?.clamp(0.0, 1.0)?.powf(gamma)?;
    let alpha_t = targets.affine(2.0 * alpha - 1.0, 1.0 - alpha)?;
    let loss = ((ce * modulating)? * alpha_t)?;
    loss.flatten_from(1)?.mean(D::Minus1)
}

/// Dice loss `1 − (2 Σ p t + 1) / (Σ p + Σ t + 1)` per mask (leading axis kept).
pub fn dice_loss(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let p = candle_nn::ops::sigmoid(logits)?.flatten_from(1)?;
    let t = targets.flatten_from(1)?;
    let num = ((&p * &t)?.sum(D::Minus1)? * 2.0)? + 1.0;
    let den = ((p.sum(D::Minus1)? + t.sum(D::Minus1)?)? + 1.0)?;
    num?.div(&den)?.affine(-1.0, 1.0)
}

/// IoU of the thresholded masks (`logits > 0`) with the targets, per mask, without gradient.
pub fn mask_iou(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let pred = logits
        .detach()
        .gt(0.0)?
        .to_dtype(targets.dtype())?
        .flatten_from(1)?;
    let t = targets.detach().flatten_from(1)?;
    let inter = (&pred * &t)?.sum(D::Minus1)?;
    let union = ((pred.sum(D::Minus1)? + t.sum(D::Minus1)?)? - &inter)?;
    inter.div(&union.clamp(1.0, f64::INFINITY)?)
}

/// Binary cross-entropy with logits, averaged.
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let ce = ((logits.relu()? - (logits * targets)?)?
        + logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?)?;
    ce.mean_all()
}

/// Weights of SAM 2's loss (`sam2.1_hiera_b+_MOSE_finetune.yaml`: focal 20, dice 1, IoU 1,
/// object score 1).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SegLossWeights {
    pub focal: f64,
    pub dice: f64,
    pub iou: f64,
    pub obj_score: f64,
}

impl Default for SegLossWeights {
    fn default() -> Self {
        Self {
            focal: 20.0,
            dice: 1.0,
            iou: 1.0,
            obj_score: 1.0,
        }
    }
}

/// The four terms of one step for one object.
#[derive(Debug, Clone)]
pub struct SegLoss {
    pub focal: Tensor,
    pub dice: Tensor,
    pub iou: Tensor,
    pub obj_score: Tensor,
}

impl SegLoss {
    pub fn total(&self, w: &SegLossWeights) -> Result<Tensor> {
        let fd = ((&self.focal * w.focal)? + (&self.dice * w.dice)?)?;
        (fd + (&self.iou * w.iou)?)? + (&self.obj_score * w.obj_score)?
    }
}

/// One step of `MultiStepMultiMasksAndIous` for one present object: `masks` are `K, H, W`
/// logits at the target's resolution, `iou_pred` is `K`, `target` is `H, W` in {0, 1}.
/// With several masks, focal and dice are taken from the mask whose combined focal + dice
/// loss is lowest, and the IoU L1 loss supervises only that mask (`supervise_all_iou: false`).
pub fn seg_step_loss(
    masks: &Tensor,
    iou_pred: &Tensor,
    obj_logit: Option<&Tensor>,
    target: &Tensor,
    w: &SegLossWeights,
) -> Result<SegLoss> {
    let k = masks.dim(0)?;
    let t = target
        .unsqueeze(0)?
        .broadcast_as(masks.shape())?
        .contiguous()?;
    let focal = sigmoid_focal_loss(masks, &t, 0.25, 2.0)?;
    let dice = dice_loss(masks, &t)?;
    let combo = ((&focal * w.focal)? + (&dice * w.dice)?)?.to_vec1::<f32>()?;
    let mut best = 0;
    for i in 1..k {
        if combo[i] < combo[best] {
            best = i;
        }
    }
    let actual = mask_iou(masks, &t)?;
    let iou = (iou_pred.get(best)? - actual.get(best)?)?.abs()?;
    // SAM 1 has no object-score head: its term is zero.
    let obj_score = match obj_logit {
        Some(o) => bce_with_logits(&o.flatten_all()?, &Tensor::ones(1, o.dtype(), o.device())?)?,
        None => Tensor::zeros((), masks.dtype(), masks.device())?,
    };
    Ok(SegLoss {
        focal: focal.get(best)?,
        dice: dice.get(best)?,
        iou,
        obj_score,
    })
}

/// Pixel error of the released UAA loss: `|σ(max_k ℓ_k) − y|`, clamped to `[0, 1]`.
/// `logits` are `K, H, W`, `target` `H, W`.
pub fn pixel_error(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    let p = candle_nn::ops::sigmoid(&logits.max(0)?)?;
    (p - target)?.abs()?.clamp(0.0, 1.0)
}

/// RUAC's symmetric Uncertainty-Accuracy Alignment loss with its dual stop-gradient
/// (`L_cal_sym`): `L1 = e·exp(−sg[u_mc]) + (1 − e)·exp(sg[u_mc])` trains the logits through
/// the error `e`; `L2 = sg[e]·exp(−u_an) + (1 − sg[e])·exp(u_an)` trains the analytic
/// uncertainty. Uncertainties are clamped to `[0, 1]`; the result is the pixel mean of
/// `L1 + mirror · L2`.
pub fn uaa_loss(error: &Tensor, u_mc: &Tensor, u_an: &Tensor, mirror: f64) -> Result<Tensor> {
    let u_mc = u_mc.detach().clamp(0.0, 1.0)?;
    let u_an = u_an.clamp(0.0, 1.0)?;
    let e = error.clamp(0.0, 1.0)?;
    let l1 = ((&e * u_mc.neg()?.exp()?)? + (e.affine(-1.0, 1.0)? * u_mc.exp()?)?)?;
    let e_sg = e.detach();
    let l2 = ((&e_sg * u_an.neg()?.exp()?)? + (e_sg.affine(-1.0, 1.0)? * u_an.exp()?)?)?;
    (l1 + (l2 * mirror)?)?.mean_all()
}
