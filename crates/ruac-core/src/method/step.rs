//! One branch of a training step (paper §3.5; `sam2/modeling/sam2_base.py` training path
//! and `ruac/core/pipeline.py`): encode the image, then for each object an initial prompt and
//! correction clicks, each decoded and supervised with SAM 2's loss; with the Bayesian head
//! the logits are reparameterised Weibull samples, and the KL and UAA terms are added. The
//! base is SAM 2.1 or a SAM 1 model ([`BaseModel`]; SAM 1 has no object-score term).
use candle_core::{Device, Tensor};

use super::base::Encoded;
use super::losses::{pixel_error, seg_step_loss, uaa_loss, SegLossWeights};
use super::prompts::{correction_click, sample_initial, InitialPrompt, PromptConfig};
use super::warp::resize_bilinear;
use crate::model::bayes_head::{BayesianPixelHead, WeibullParams};
use crate::model::mask_decoder::PixelHead;
use crate::predictor::{BaseModel, PointLabel};
use crate::rng::Pcg32;
use crate::Result;

/// BNDL's KL settings (`ruac/configs/sam2_ruac_train.yaml`: Gamma prior shape 1, rate 3,
/// internal weights 1e-11 on both terms).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KlConfig {
    pub alpha: f64,
    pub beta: f64,
    pub local_weight: f64,
    pub global_weight: f64,
}

impl Default for KlConfig {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            beta: 3.0,
            local_weight: 1e-11,
            global_weight: 1e-11,
        }
    }
}

/// Per-branch settings.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BranchConfig {
    pub prompts: PromptConfig,
    pub seg: SegLossWeights,
    pub kl: KlConfig,
    /// Monte Carlo samples of `u_mc` in the UAA loss (20 in the release).
    pub mc_samples: usize,
    /// Weight of the UAA mirror term (1.0 in the release).
    pub cal_mirror: f64,
}

impl Default for BranchConfig {
    fn default() -> Self {
        Self {
            prompts: PromptConfig::default(),
            seg: SegLossWeights::default(),
            kl: KlConfig::default(),
            mc_samples: 20,
            cal_mirror: 1.0,
        }
    }
}

/// A branch's losses (each averaged over objects; the segmentation loss summed over steps).
#[derive(Debug, Clone)]
pub struct BranchLosses {
    pub seg: Tensor,
    /// Weighted KL (local + global), `None` without the Bayesian head.
    pub kl: Option<Tensor>,
    /// UAA loss of the first step, when asked for and with the Bayesian head.
    pub cal: Option<Tensor>,
    /// Mean IoU of the first step's chosen mask (a training diagnostic).
    pub iou_first: f32,
    /// The image embedding, detached: the attackers' input after the clean branch, which
    /// saves them a second pass of the frozen encoder.
    pub image_embed: Tensor,
}

fn mask_to_tensor(m: &[bool], s: usize, dev: &Device) -> Result<Tensor> {
    Ok(Tensor::from_vec(
        m.iter().map(|&v| v as u8 as f32).collect::<Vec<f32>>(),
        (s, s),
        dev,
    )?)
}

/// Nearest-neighbour downsampling of a square mask (`s → n`), for the UAA error target.
fn nearest(m: &[bool], s: usize, n: usize) -> Vec<bool> {
    let mut out = Vec::with_capacity(n * n);
    for y in 0..n {
        for x in 0..n {
            out.push(m[(y * s / n) * s + x * s / n]);
        }
    }
    out
}

/// Reparameterised logits `B, K, H, W` from one Weibull draw of both factors.
fn sampled_logits(p: &WeibullParams, rng: &mut Pcg32) -> Result<Tensor> {
    let dev = p.lambda_f.device();
    let u_f = Tensor::from_vec(
        rng.uniforms(p.lambda_f.elem_count()),
        p.lambda_f.shape(),
        dev,
    )?;
    let u_w = Tensor::from_vec(
        rng.uniforms(p.lambda_w.elem_count()),
        p.lambda_w.shape(),
        dev,
    )?;
    let z = BayesianPixelHead::weibull_sample(&p.lambda_f, &p.inv_k_f, &u_f)?;
    let w = BayesianPixelHead::weibull_sample(&p.lambda_w, &p.inv_k_w, &u_w)?;
    Ok(BayesianPixelHead::logits_from(&z, &w, &p.bias)?)
}

/// Runs one branch on a preprocessed `1, 3, S, S` image whose objects are `masks` (row-major
/// `S × S`, at most a few, each non-empty). `rng` drives the prompts and the Weibull draws.
pub fn run_branch(
    model: &BaseModel,
    image: &Tensor,
    masks: &[Vec<bool>],
    cfg: &BranchConfig,
    want_cal: bool,
    rng: &mut Pcg32,
) -> Result<BranchLosses> {
    let feats = model.encode(image)?;
    run_branch_encoded(model, &feats, masks, cfg, want_cal, rng)
}

/// [`run_branch`] from the image's encoding: with a frozen image encoder the clean branch's
/// encoding depends on the image only, so a trainer may compute it once per image and reuse
/// it (the result is the same as encoding again).
pub fn run_branch_encoded(
    model: &BaseModel,
    feats: &Encoded,
    masks: &[Vec<bool>],
    cfg: &BranchConfig,
    want_cal: bool,
    rng: &mut Pcg32,
) -> Result<BranchLosses> {
    let s = model.image_size();
    let lr = model.low_res_size();
    let dev = feats.image_embed.device().clone();
    let mut seg_total: Option<Tensor> = None;
    let mut kl_total: Option<Tensor> = None;
    let mut cal_total: Option<Tensor> = None;
    let mut iou_sum = 0f32;
    let mut n_obj = 0usize;
    for gt in masks {
        let Some(first) = sample_initial(gt, s, s, &cfg.prompts, rng) else {
            continue;
        };
        n_obj += 1;
        let target = mask_to_tensor(gt, s, &dev)?;
        let mut points: Vec<(f32, f32, f32)> = vec![];
        let mut mask_input: Option<Tensor> = None;
        match first {
            InitialPrompt::Point(x, y) => points.push((x, y, 1.0)),
            InitialPrompt::Box([x0, y0, x1, y1]) => points.extend([(x0, y0, 2.0), (x1, y1, 3.0)]),
            // The ground truth as a dense prompt, in logit form (±10), at the low resolution.
            InitialPrompt::Mask => {
                mask_input = Some(
                    (resize_bilinear(&target, lr, lr)?.affine(20.0, -10.0)?)
                        .reshape((1, 1, lr, lr))?,
                )
            }
        }
        let steps = 1 + cfg.prompts.correction_clicks;
        for step in 0..steps {
            let out = model.decode(feats, &points, mask_input.as_ref())?;
            // SAM 2's `_use_multimask`: several masks when at most one click is given.
            let multimask = points.len() <= 1 && step == 0 && mask_input.is_none();
            let (all_logits, head) = match model.pixel_head() {
                PixelHead::Bayesian(head) => {
                    let p = head.params(&out.upscaled, &out.mask_tokens, 0.0, 0.0)?;
                    let kl = ((BayesianPixelHead::kl_weibull_gamma(
                        &p.lambda_f,
                        &p.inv_k_f,
                        cfg.kl.alpha,
                        cfg.kl.beta,
                    )? * cfg.kl.local_weight)?
                        + (BayesianPixelHead::kl_weibull_gamma(
                            &p.lambda_w,
                            &p.inv_k_w,
                            cfg.kl.alpha,
                            cfg.kl.beta,
                        )? * cfg.kl.global_weight)?)?;
                    kl_total = Some(match kl_total {
                        None => kl,
                        Some(t) => (t + kl)?,
                    });
                    (sampled_logits(&p, rng)?, Some(head))
                }
                PixelHead::Hypernetwork(_) => (out.masks.clone(), None),
            };
            let (start, k) = if multimask {
                (1, model.num_multimask_outputs())
            } else {
                (0, 1)
            };
            let low = all_logits.narrow(1, start, k)?.squeeze(0)?; // K, lr, lr
            let iou_pred = out.iou.narrow(1, start, k)?.squeeze(0)?;
            let high = resize_bilinear(&low, s, s)?;
            let l = seg_step_loss(&high, &iou_pred, out.obj_score.as_ref(), &target, &cfg.seg)?;
            let lt = l.total(&cfg.seg)?;
            seg_total = Some(match seg_total {
                None => lt,
                Some(t) => (t + lt)?,
            });

            if step == 0 {
                let pred_iou = super::losses::mask_iou(
                    &high,
                    &target
                        .unsqueeze(0)?
                        .broadcast_as(high.shape())?
                        .contiguous()?,
                )?;
                iou_sum += pred_iou.max(0)?.to_scalar::<f32>()?;
                if let (true, Some(head)) = (want_cal, head) {
                    let gt_low = mask_to_tensor(&nearest(gt, s, lr), lr, &dev)?;
                    let e = pixel_error(&low, &gt_low)?;
                    let seed = rng.next_u32() as u64;
                    let (u_mc, _) = head.mc_uncertainty(
                        &out.upscaled.detach(),
                        &out.mask_tokens.detach(),
                        cfg.mc_samples,
                        seed,
                    )?;
                    let u_mc = u_mc.narrow(1, start, k)?.squeeze(0)?.mean(0)?;
                    let u_an = head
                        .analytic_uncertainty(&out.upscaled, &out.mask_tokens, 0.0, 0.02)?
                        .narrow(1, start, k)?
                        .squeeze(0)?
                        .mean(0)?;
                    cal_total = Some(match cal_total {
                        None => uaa_loss(&e, &u_mc, &u_an, cfg.cal_mirror)?,
                        Some(t) => (t + uaa_loss(&e, &u_mc, &u_an, cfg.cal_mirror)?)?,
                    });
                }
            }
            if step + 1 == steps {
                break;
            }
            // Next step: a correction click from the error of the chosen (lowest-loss is not
            // known to the user, so highest predicted IoU) mask, and its logits as the mask prompt.
            let ious = iou_pred.to_vec1::<f32>()?;
            let best = (0..k).fold(0, |b, i| if ious[i] > ious[b] { i } else { b });
            let chosen = high.get(best)?.detach();
            let pred: Vec<bool> = chosen
                .flatten_all()?
                .to_vec1::<f32>()?
                .iter()
                .map(|&v| v > 0.0)
                .collect();
            match correction_click(&pred, gt, s, rng) {
                Some((x, y, lab)) => points.push((
                    x,
                    y,
                    if lab == PointLabel::Positive {
                        1.0
                    } else {
                        0.0
                    },
                )),
                None => break,
            }
            mask_input = Some(
                low.get(best)?
                    .detach()
                    .clamp(-32.0, 32.0)?
                    .reshape((1, 1, lr, lr))?,
            );
        }
    }
    let n = n_obj.max(1) as f64;
    let seg = match seg_total {
        Some(t) => (t / n)?,
        None => Tensor::zeros((), candle_core::DType::F32, &dev)?,
    };
    Ok(BranchLosses {
        seg,
        kl: kl_total.map(|t| t / n).transpose()?,
        cal: cal_total.map(|t| t / n).transpose()?,
        iou_first: iou_sum / n as f32,
        image_embed: feats.image_embed.detach(),
    })
}
