//! Metrics on cases small enough to work out by hand, the degenerate cases, bad input,
//! and the speed of `evaluate_object` on a 512x512 object.
use ruac_core::metrics::object::{
    evaluate_object, mask_level_uncertainty, near_gt_region, MetricConfig, ObjectInput, ObjectMetrics,
};
use ruac_core::metrics::pavpu::{PatchStats, PavpuConfig};
use ruac_core::metrics::ranking::ErrorRanking;
use ruac_core::metrics::segmentation::{boundary_f_measure, boundary_map, boundary_tolerance, dilate_disk, iou};
use ruac_core::Error;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[track_caller]
fn assert_close(name: &str, got: Option<f64>, want: f64, tol: f64) {
    let g = got.unwrap_or_else(|| panic!("{name}: None, expected {want}"));
    assert!(close(g, want, tol), "{name}: {g}, expected {want}");
}

/// 8x8 image, ground truth = the 4x4 square at rows/cols 2..6.
fn square_gt() -> Vec<bool> {
    (0..64).map(|i| (2..6).contains(&(i / 8)) && (2..6).contains(&(i % 8))).collect()
}

fn varied_uncertainty(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 37) % 11) as f32 / 20.0).collect()
}

fn eval(
    width: usize,
    height: usize,
    prob: &[f32],
    unc: &[f32],
    gt: &[bool],
    score: Option<f32>,
    cfg: &MetricConfig,
) -> ObjectMetrics {
    evaluate_object(&ObjectInput { width, height, prob, uncertainty: unc, gt, iou_score: score }, cfg).unwrap()
}

#[test]
fn perfect_predictor() {
    let gt = square_gt();
    let prob: Vec<f32> = gt.iter().map(|&g| if g { 0.9 } else { 0.1 }).collect();
    let unc = varied_uncertainty(64);
    let m = eval(8, 8, &prob, &unc, &gt, Some(0.95), &MetricConfig::default());
    assert_eq!((m.segmentation.j, m.segmentation.f, m.segmentation.jf), (1.0, 1.0, 1.0));
    for region in [&m.whole, &m.near_gt] {
        assert_eq!(region.n_wrong, 0);
        let u = &region.uncertainty;
        // no wrong pixel: nothing to detect
        assert_eq!((u.auroc, u.aupr, u.pearson_wrong, u.spearman_wrong), (None, None, None, None));
        assert_eq!((u.aurc, u.eaurc), (Some(0.0), Some(0.0)));
        // every pixel has confidence 0.9 and is right: ECE = 0.1, all in bin (13/15, 14/15]
        let c = &region.calibration;
        assert_close("ece", c.ece, 0.1, 1e-6);
        assert_close("brier", c.brier, 0.01, 1e-6);
        assert_close("nll", c.nll, -(0.9f64.ln()), 1e-6);
        assert_eq!(c.bins[13].count, region.n_pixels);
        assert_eq!(c.bins[13].accuracy, Some(1.0));
    }
    // near the gt: the 4x4 square dilated by a radius-4 disk covers the whole 8x8 image
    assert_eq!(m.near_gt.n_pixels, 64);
}

#[test]
fn inverted_predictor() {
    let gt = square_gt();
    let prob: Vec<f32> = gt.iter().map(|&g| if g { 0.2 } else { 0.7 }).collect();
    let unc = varied_uncertainty(64);
    let m = eval(8, 8, &prob, &unc, &gt, None, &MetricConfig::default());
    assert_eq!(m.segmentation.j, 0.0);
    // DAVIS boundaries are XORs of neighbours, identical for a mask and its complement
    assert_eq!(m.segmentation.f, 1.0);
    assert_eq!(m.whole.n_wrong, 64);
    let u = &m.whole.uncertainty;
    assert_eq!((u.auroc, u.aupr), (None, None));
    assert_eq!((u.aurc, u.eaurc), (Some(1.0), Some(0.0)));
    assert!(m.mask_level.is_none());
}

#[test]
fn constant_uncertainty_ranks_nothing() {
    let gt = square_gt();
    // 6 wrong pixels out of 64
    let prob: Vec<f32> = (0..64).map(|i| if gt[i] ^ (i % 11 == 0) { 0.8 } else { 0.3 }).collect();
    let n_wrong = (0..64).filter(|i| i % 11 == 0).count();
    assert_eq!(n_wrong, 6);
    let unc = vec![0.25f32; 64];
    let m = eval(8, 8, &prob, &unc, &gt, Some(0.8), &MetricConfig::default());
    let rate = 6.0 / 64.0;
    let u = &m.whole.uncertainty;
    assert_close("auroc", u.auroc, 0.5, 1e-15);
    assert_close("aupr", u.aupr, rate, 1e-15);
    assert_close("aurc", u.aurc, rate, 1e-12);
    // oracle: 58 correct first, then risk (k-58)/k for k = 59..64
    let oracle: f64 = (59..=64).map(|k| (k - 58) as f64 / k as f64).sum::<f64>() / 64.0;
    assert_close("eaurc", u.eaurc, rate - oracle, 1e-12);
    assert_eq!(
        (u.pearson_wrong, u.spearman_wrong, u.pearson_abs_error, u.spearman_abs_error),
        (None, None, None, None)
    );
    // the mask-level baseline is the same computation with 1 - 0.8 everywhere
    let ml = m.mask_level.as_ref().unwrap();
    assert_eq!(ml.uncertainty_value, (1.0f32 - 0.8f32) as f64);
    assert_eq!(ml.whole.auroc, u.auroc);
    assert_eq!(ml.whole.aurc, u.aurc);
    assert_eq!(mask_level_uncertainty(0.8, 3), vec![1.0f32 - 0.8; 3]);
    // and equals evaluate_object with that map passed as the pixel map
    let constant = mask_level_uncertainty(0.8, 64);
    let direct = eval(8, 8, &prob, &constant, &gt, None, &MetricConfig::default());
    assert_eq!(direct.whole.uncertainty, ml.whole);
    assert_eq!(direct.near_gt.uncertainty, ml.near_gt);
}

#[test]
fn ranking_by_hand() {
    // u = 0.1 (right), 0.2 (wrong), 0.2 (right), 0.9 (wrong)
    let r = ErrorRanking::new(&[0.1, 0.2, 0.2, 0.9], &[false, true, false, true]).unwrap();
    // AUROC: wrong-vs-right pairs 0.2>0.1, 0.2=0.2 (half), 0.9>0.1, 0.9>0.2 -> 3.5 / 4
    assert_close("auroc", r.auroc(), 0.875, 1e-15);
    // AP: threshold 0.9 -> P 1, R 1/2; threshold 0.2 -> P 2/3, R 1
    assert_close("ap", r.average_precision(), 0.5 + 0.5 * 2.0 / 3.0, 1e-15);
    // AURC: k=1 keeps 0.1 -> 0; the tie {0.2 wrong, 0.2 right} in random order ->
    // k=2: 0.5/2, k=3: 1/3; k=4: 2/4.  Mean over k.
    let aurc = (0.0 + 0.25 + 1.0 / 3.0 + 0.5) / 4.0;
    assert_close("aurc", r.aurc(), aurc, 1e-15);
    // oracle keeps both right pixels first: 0, 0, 1/3, 2/4
    assert_close("optimal", r.optimal_aurc(), (1.0 / 3.0 + 0.5) / 4.0, 1e-15);
    assert_close("eaurc", r.eaurc(), aurc - (1.0 / 3.0 + 0.5) / 4.0, 1e-15);
    // a perfect detector: AUROC 1, AP 1, E-AURC 0
    let p = ErrorRanking::new(&[0.1, 0.2, 0.7, 0.8], &[false, false, true, true]).unwrap();
    assert_eq!((p.auroc(), p.average_precision(), p.eaurc()), (Some(1.0), Some(1.0), Some(0.0)));
    // an inverted one: AUROC 0
    let q = ErrorRanking::new(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]).unwrap();
    assert_eq!(q.auroc(), Some(0.0));
    // -0.0 and 0.0 are one tie
    let z = ErrorRanking::new(&[-0.0, 0.0], &[true, false]).unwrap();
    assert_eq!((z.n_distinct(), z.auroc()), (1, Some(0.5)));
    assert!(ErrorRanking::new(&[f32::NAN], &[true]).is_err());
    assert!(ErrorRanking::new(&[0.1], &[true, false]).is_err());
}

/// 4x4 image, patch 2, gt all background, so wrong = (p >= 0.5):
/// ```text
/// prob            uncertainty          patch   accuracy  mean u
/// .1 .1 | .8 .8   .1 .1 | .2 .6        TL      4/4       0.10
/// .1 .1 | .1 .1   .1 .1 | .4 .4        TR      2/4       0.40
/// ------+------   ------+------        BL      1/4       0.15
/// .8 .8 | .8 .8   .1 .1 | .9 .9        BR      0/4       0.90
/// .8 .1 | .8 .8   .2 .2 | .9 .9
/// ```
/// Accurate (>= 0.5): TL, TR. At threshold 0.5, certain (< 0.5): TL, TR, BL, so
/// n_ac = 2 (TL, TR), n_ic = 1 (BL), n_iu = 1 (BR), n_au = 0:
/// PAvPU = (2 + 1) / 4 = 0.75, p(accurate | certain) = 2 / 3, p(uncertain | inaccurate) = 1 / 2.
/// At 0.3: TR is uncertain too: n_ac 1, n_au 1, n_ic 1, n_iu 1 -> 0.5, 1/2, 1/2.
/// At 0: nothing certain -> 0.5, None, 1. At 1: everything certain -> 0.5, 1/2, 0.
#[test]
fn pavpu_by_hand() {
    #[rustfmt::skip]
    let prob: Vec<f32> = vec![
        0.1, 0.1, 0.8, 0.8,
        0.1, 0.1, 0.1, 0.1,
        0.8, 0.8, 0.8, 0.8,
        0.8, 0.1, 0.8, 0.8,
    ];
    #[rustfmt::skip]
    let unc: Vec<f32> = vec![
        0.1, 0.1, 0.2, 0.6,
        0.1, 0.1, 0.4, 0.4,
        0.1, 0.1, 0.9, 0.9,
        0.2, 0.2, 0.9, 0.9,
    ];
    let gt = vec![false; 16];
    let cfg = MetricConfig {
        pavpu: PavpuConfig {
            patch_size: 2,
            accuracy_threshold: 0.5,
            uncertainty_threshold: 0.5,
            curve_thresholds: vec![0.0, 0.3, 0.5, 1.0],
        },
        ..MetricConfig::default()
    };
    let m = eval(4, 4, &prob, &unc, &gt, None, &cfg);
    let p = &m.whole.uncertainty.pavpu;
    assert_eq!((p.n_ac, p.n_au, p.n_ic, p.n_iu), (2, 0, 1, 1));
    assert_eq!(
        (p.pavpu, p.p_accurate_given_certain, p.p_uncertain_given_inaccurate),
        (Some(0.75), Some(2.0 / 3.0), Some(0.5))
    );
    let curve: Vec<_> = m
        .whole
        .uncertainty
        .pavpu_curve
        .iter()
        .map(|c| (c.pavpu, c.p_accurate_given_certain, c.p_uncertain_given_inaccurate))
        .collect();
    assert_eq!(
        curve,
        vec![
            (Some(0.5), None, Some(1.0)),
            (Some(0.5), Some(0.5), Some(0.5)),
            (Some(0.75), Some(2.0 / 3.0), Some(0.5)),
            (Some(0.5), Some(0.5), Some(0.0)),
        ]
    );
    // restricted to the left half only TL (accurate, certain) and BL (inaccurate, certain) count
    let correct: Vec<bool> = prob.iter().map(|&p| p < 0.5).collect();
    let left: Vec<bool> = (0..16).map(|i| i % 4 < 2).collect();
    let s = PatchStats::new(4, 4, &correct, &unc, Some(&left), 2, 0.5).unwrap();
    let p = s.at(0.5);
    assert_eq!((p.n_ac, p.n_au, p.n_ic, p.n_iu, p.pavpu), (1, 0, 1, 0, Some(0.5)));
    // a 5x5 image in 2x2 windows: 3x3 windows, the edge ones partial
    let s = PatchStats::new(5, 5, &[true; 25], &[0.0; 25], None, 2, 0.5).unwrap();
    assert_eq!((s.accurate.len(), s.mean_uncertainty.len()), (9, 9));
}

#[test]
fn boundary_and_region_by_hand() {
    // a single pixel dilated by a radius-4 disk: 9 + 2 (7 + 7 + 5 + 1) = 49 pixels
    let mut one = vec![false; 121];
    one[60] = true;
    assert_eq!(dilate_disk(&one, 11, 11, 4.0).unwrap().iter().filter(|&&b| b).count(), 49);
    assert_eq!(dilate_disk(&one, 11, 11, 1.0).unwrap().iter().filter(|&&b| b).count(), 5);
    let near = near_gt_region(&one, 11, 11, 4.0).unwrap();
    assert!(near[60 + 4] && near[60 - 4 * 11] && !near[60 + 5] && !near[60 + 3 * 11 + 3]);
    assert!(near[60 + 2 * 11 + 3]); // 4 + 9 = 13 <= 16
                                    // DAVIS boundaries: a 2x2 square at rows/cols 1..3 in 4x4
    let sq: Vec<bool> = (0..16).map(|i| (1..3).contains(&(i / 4)) && (1..3).contains(&(i % 4))).collect();
    #[rustfmt::skip]
    let expected = [
        true,  true,  true,  false,
        true,  false, true,  false,
        true,  true,  true,  false,
        false, false, false, false,
    ];
    assert_eq!(boundary_map(&sq, 4, 4).unwrap(), expected);
    // 20x20: diagonal 28.3, tolerance ceil(0.226) = 1 px
    assert_eq!(boundary_tolerance(20, 20, 0.008), 1.0);
    assert_eq!(boundary_tolerance(512, 512, 0.008), 6.0);
    assert_eq!(boundary_tolerance(512, 512, 3.0), 3.0);
    let rect = |c0: usize| -> Vec<bool> {
        (0..400).map(|i| (5..15).contains(&(i / 20)) && (c0..c0 + 10).contains(&(i % 20))).collect()
    };
    let (gt, shifted) = (rect(5), rect(6));
    assert!(close(iou(&shifted, &gt).unwrap(), 90.0 / 110.0, 1e-15));
    // every boundary pixel is within 1 px of the other boundary
    assert_eq!(boundary_f_measure(&shifted, &gt, 20, 20, 0.008).unwrap(), 1.0);
    // 3 px off: the vertical edges no longer match (the DAVIS code gives 0.5)
    assert_eq!(boundary_f_measure(&rect(8), &gt, 20, 20, 0.008).unwrap(), 0.5);
    // but they do with a 3 px tolerance
    assert_eq!(boundary_f_measure(&rect(8), &gt, 20, 20, 3.0).unwrap(), 1.0);
    // empty prediction and ground truth: J = F = 1 (DAVIS)
    let empty = vec![false; 400];
    assert_eq!((iou(&empty, &empty).unwrap(), boundary_f_measure(&empty, &empty, 20, 20, 0.008).unwrap()), (1.0, 1.0));
    // one of them empty: F = 0
    assert_eq!(boundary_f_measure(&empty, &gt, 20, 20, 0.008).unwrap(), 0.0);
}

#[test]
fn empty_ground_truth_has_an_empty_near_region() {
    let gt = vec![false; 64];
    let prob: Vec<f32> = (0..64).map(|i| if i < 10 { 0.7 } else { 0.2 }).collect();
    let m = eval(8, 8, &prob, &varied_uncertainty(64), &gt, Some(0.5), &MetricConfig::default());
    assert_eq!(m.segmentation.j, 0.0);
    assert_eq!(m.near_gt.n_pixels, 0);
    let u = &m.near_gt.uncertainty;
    assert_eq!((u.auroc, u.aurc, u.mean_uncertainty, u.pavpu.pavpu), (None, None, None, None));
    assert_eq!((m.near_gt.calibration.ece, m.near_gt.error_rate), (None, None));
    assert!(m.whole.uncertainty.auroc.is_some());
}

#[test]
fn bad_input_is_an_error() {
    let gt = square_gt();
    let prob = vec![0.5f32; 64];
    let unc = vec![0.1f32; 64];
    let cfg = MetricConfig::default();
    let run =
        |w: usize, h: usize, p: &[f32], u: &[f32], g: &[bool], s: Option<f32>, c: &MetricConfig| match evaluate_object(
            &ObjectInput { width: w, height: h, prob: p, uncertainty: u, gt: g, iou_score: s },
            c,
        ) {
            Err(Error::Invalid(msg)) => msg,
            other => panic!("expected Error::Invalid, got {other:?}"),
        };
    assert!(run(8, 7, &prob, &unc, &gt, None, &cfg).contains("has 64 values"));
    assert!(run(8, 8, &prob[..63], &unc, &gt, None, &cfg).contains("prob"));
    assert!(run(0, 8, &[], &[], &[], None, &cfg).contains("empty"));
    let mut bad = prob.clone();
    bad[5] = f32::NAN;
    assert!(run(8, 8, &bad, &unc, &gt, None, &cfg).contains("prob[5]"));
    bad[5] = 1.5;
    assert!(run(8, 8, &bad, &unc, &gt, None, &cfg).contains("prob[5]"));
    let mut bad_u = unc.clone();
    bad_u[7] = f32::INFINITY;
    assert!(run(8, 8, &prob, &bad_u, &gt, None, &cfg).contains("uncertainty[7]"));
    assert!(run(8, 8, &prob, &unc, &gt, Some(f32::NAN), &cfg).contains("IoU score"));
    let zero_patch =
        MetricConfig { pavpu: PavpuConfig { patch_size: 0, ..PavpuConfig::default() }, ..MetricConfig::default() };
    assert!(run(8, 8, &prob, &unc, &gt, None, &zero_patch).contains("patch"));
    let no_bins = MetricConfig { ece_bins: 0, ..MetricConfig::default() };
    assert!(run(8, 8, &prob, &unc, &gt, None, &no_bins).contains("ece_bins"));
    assert!(dilate_disk(&gt, 8, 7, 1.0).is_err());
    assert!(boundary_f_measure(&gt, &gt, 8, 8, f64::NAN).is_err());
}

#[test]
fn results_and_config_round_trip_through_json() {
    let gt = square_gt();
    let prob: Vec<f32> = (0..64).map(|i| ((i * 13) % 17) as f32 / 16.0).collect();
    let m = eval(8, 8, &prob, &varied_uncertainty(64), &gt, Some(0.7), &MetricConfig::default());
    let back: ObjectMetrics = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
    // serde_json's default float parser may be 1 ulp off, so compare the trees with a tolerance
    fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
        use serde_json::Value::*;
        match (a, b) {
            (Number(x), Number(y)) => {
                (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() <= 1e-15 * y.as_f64().unwrap().abs().max(1.0)
            }
            (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
            (Object(x), Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
            _ => a == b,
        }
    }
    assert!(same(&serde_json::to_value(&back).unwrap(), &serde_json::to_value(&m).unwrap()));
    assert_eq!(back.whole.n_wrong, m.whole.n_wrong);
    assert!(back.mask_level.is_some() && back.whole.uncertainty.pearson_wrong.is_some());
    let cfg: MetricConfig = serde_json::from_str(r#"{"pavpu": {"patch_size": 8}}"#).unwrap();
    assert_eq!(cfg.pavpu.patch_size, 8);
    assert_eq!(cfg.ece_bins, 15);
    assert_eq!(cfg.pavpu.curve_thresholds.len(), 21);
}

/// A 512x512 object with every uncertainty distinct-ish and a smooth probability field.
fn big_object() -> (Vec<f32>, Vec<f32>, Vec<bool>) {
    let (w, h) = (512usize, 512usize);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut prob = Vec::with_capacity(w * h);
    let mut unc = Vec::with_capacity(w * h);
    let mut gt = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let d = (((x as f64 - 250.0).powi(2) + (y as f64 - 260.0).powi(2)).sqrt() - 150.0) / 10.0;
            let logit = -d + 2.0 * (rnd() - 0.5) + (x as f64 / 40.0).sin();
            let p = 1.0 / (1.0 + (-logit).exp());
            prob.push(p as f32);
            let ent = -(p * p.max(1e-9).ln() + (1.0 - p) * (1.0 - p).max(1e-9).ln());
            unc.push((ent + 0.1 * rnd()) as f32);
            gt.push(d < 0.0);
        }
    }
    (prob, unc, gt)
}

#[test]
fn evaluate_object_512_is_deterministic_and_sensible() {
    // Speed is measured by `cargo bench -p ruac-core --bench metrics`, not here.
    let (prob, unc, gt) = big_object();
    let input = ObjectInput { width: 512, height: 512, prob: &prob, uncertainty: &unc, gt: &gt, iou_score: Some(0.9) };
    let cfg = MetricConfig::default();
    let first = evaluate_object(&input, &cfg).unwrap();
    assert_eq!(evaluate_object(&input, &cfg).unwrap(), first);
    let u = &first.whole.uncertainty;
    // Uncertainty is the entropy of p plus noise: it must find the wrong pixels well.
    assert!(u.auroc.unwrap() > 0.7 && first.segmentation.j > 0.8, "{:?} {}", u.auroc, first.segmentation.j);
}
