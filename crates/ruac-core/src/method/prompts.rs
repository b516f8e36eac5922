//! SAM 2's training-time prompt sampling (`sam2/modeling/sam2_base.py`,
//! `_use_multimask`/`_iter_correct_pt_sampling`; `sam2/modeling/sam2_utils.py`,
//! `sample_random_points_from_errors`), on binary masks in the model's input square.
use crate::predictor::PointLabel;
use crate::rng::Pcg32;

/// The first prompt of an object.
#[derive(Debug, Clone, PartialEq)]
pub enum InitialPrompt {
    /// One click drawn uniformly from the object.
    Point(f32, f32),
    /// The object's tight box, each side jittered by up to `box_noise` of its size.
    Box([f32; 4]),
    /// The ground-truth mask itself as the mask prompt.
    Mask,
}

/// Probabilities of SAM 2's training config: points with `prob_to_use_pt_input = 0.5`,
/// otherwise a box with `prob_to_use_box_input = 0.5`, otherwise the mask.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptConfig {
    pub prob_point: f32,
    pub prob_box_given_not_point: f32,
    pub box_noise: f32,
    /// Correction clicks after the first prediction (`num_correction_pt_per_frame`).
    pub correction_clicks: usize,
}

impl Default for PromptConfig {
    fn default() -> Self {
        Self {
            prob_point: 0.5,
            prob_box_given_not_point: 0.5,
            box_noise: 0.1,
            correction_clicks: 7,
        }
    }
}

/// A uniformly drawn pixel centre among `mask`'s true pixels (`w` wide), `None` if empty.
pub fn random_pixel(mask: &[bool], w: usize, rng: &mut Pcg32) -> Option<(f32, f32)> {
    let n = mask.iter().filter(|&&v| v).count();
    if n == 0 {
        return None;
    }
    let target = (rng.next_u32() as usize) % n;
    let i = mask.iter().enumerate().filter(|(_, &v)| v).nth(target)?.0;
    Some(((i % w) as f32 + 0.5, (i / w) as f32 + 0.5))
}

/// Draws the first prompt for a non-empty object mask (`w × h`).
pub fn sample_initial(
    mask: &[bool],
    w: usize,
    h: usize,
    cfg: &PromptConfig,
    rng: &mut Pcg32,
) -> Option<InitialPrompt> {
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for (i, _) in mask.iter().enumerate().filter(|(_, &v)| v) {
        let (x, y) = (i % w, i / w);
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if x0 == usize::MAX {
        return None;
    }
    if rng.uniform() < cfg.prob_point {
        let (x, y) = random_pixel(mask, w, rng)?;
        return Some(InitialPrompt::Point(x, y));
    }
    if rng.uniform() < cfg.prob_box_given_not_point {
        let (bw, bh) = ((x1 - x0 + 1) as f32, (y1 - y0 + 1) as f32);
        let mut j = |size: f32| cfg.box_noise * size * (2.0 * rng.uniform() - 1.0);
        let bx0 = (x0 as f32 + j(bw)).clamp(0.0, w as f32 - 1.0);
        let by0 = (y0 as f32 + j(bh)).clamp(0.0, h as f32 - 1.0);
        let bx1 = ((x1 + 1) as f32 + j(bw)).clamp(bx0 + 1.0, w as f32);
        let by1 = ((y1 + 1) as f32 + j(bh)).clamp(by0 + 1.0, h as f32);
        return Some(InitialPrompt::Box([bx0, by0, bx1, by1]));
    }
    Some(InitialPrompt::Mask)
}

/// A correction click from the error region of `pred` against `gt`: a positive click in a
/// false negative, a negative one in a false positive, drawn uniformly over the union of
/// both (as `sample_random_points_from_errors`). `None` when the prediction is exact.
pub fn correction_click(
    pred: &[bool],
    gt: &[bool],
    w: usize,
    rng: &mut Pcg32,
) -> Option<(f32, f32, PointLabel)> {
    let err: Vec<bool> = pred.iter().zip(gt).map(|(p, g)| p != g).collect();
    let (x, y) = random_pixel(&err, w, rng)?;
    let i = (y as usize) * w + x as usize;
    Some((
        x,
        y,
        if gt[i] {
            PointLabel::Positive
        } else {
            PointLabel::Negative
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correction_click_labels_follow_the_error_type() {
        // 4x1: gt = [1,1,0,0], pred = [1,0,1,0] → FN at 1 (positive), FP at 2 (negative).
        let gt = [true, true, false, false];
        let pred = [true, false, true, false];
        let mut rng = Pcg32::new(3);
        for _ in 0..50 {
            let (x, _, l) = correction_click(&pred, &gt, 4, &mut rng).unwrap();
            match x as usize {
                1 => assert_eq!(l, PointLabel::Positive),
                2 => assert_eq!(l, PointLabel::Negative),
                other => panic!("click outside the error region at {other}"),
            }
        }
        assert!(correction_click(&gt, &gt, 4, &mut rng).is_none());
    }

    #[test]
    fn points_lie_inside_and_boxes_cover() {
        let (w, h) = (10, 8);
        let mut mask = vec![false; w * h];
        for y in 2..5 {
            for x in 3..7 {
                mask[y * w + x] = true;
            }
        }
        let mut rng = Pcg32::new(1);
        let cfg = PromptConfig {
            box_noise: 0.0,
            ..Default::default()
        };
        for _ in 0..100 {
            match sample_initial(&mask, w, h, &cfg, &mut rng).unwrap() {
                InitialPrompt::Point(x, y) => assert!(mask[y as usize * w + x as usize]),
                InitialPrompt::Box(b) => assert_eq!(b, [3.0, 2.0, 7.0, 5.0]),
                InitialPrompt::Mask => {}
            }
        }
    }
}
