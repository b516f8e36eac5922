//! Percentile bootstrap CI of a mean difference, and the per-metric comparison record.
use ruac_core::metrics::stats::{bootstrap_mean_ci, compare_paired, BootstrapConfig};
use ruac_core::rng::Pcg32;
use ruac_core::Error;

/// Standard normal draws (Box–Muller on the crate's generator, f64 uniforms from 2 × 32 bits).
fn normals(seed: u64, n: usize, mean: f64, sd: f64) -> Vec<f64> {
    let mut rng = Pcg32::new(seed);
    let mut u = move || ((rng.next_u32() as u64) << 21 ^ (rng.next_u32() as u64 >> 11)) as f64 / (1u64 << 53) as f64;
    (0..n)
        .map(|_| {
            let (u1, u2) = (1.0 - u(), u());
            mean + sd * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        })
        .collect()
}

#[test]
fn constant_difference_gives_a_point_interval() {
    for c in [0.0, 0.1, -0.37, 3.0] {
        let d = vec![c; 17];
        let ci = bootstrap_mean_ci(&d, &BootstrapConfig { resamples: 500, ..Default::default() }).unwrap();
        assert_eq!(ci.lower, ci.estimate);
        assert_eq!(ci.upper, ci.estimate);
        assert!((ci.estimate - c).abs() <= 1e-15, "{ci:?}");
    }
}

#[test]
fn normal_sample_interval_contains_the_mean_with_the_expected_width() {
    let d = normals(2026, 200, 1.0, 1.0);
    let ci = bootstrap_mean_ci(&d, &BootstrapConfig::default()).unwrap();
    assert!(ci.lower < 1.0 && 1.0 < ci.upper, "{ci:?}");
    assert!(ci.lower < ci.estimate && ci.estimate < ci.upper);
    let width = ci.upper - ci.lower;
    let expected = 2.0 * 1.96 / 200f64.sqrt();
    assert!((width / expected - 1.0).abs() < 0.2, "width {width}, expected about {expected}");
}

#[test]
fn coverage_is_near_nominal() {
    // 300 samples of 40 N(0.5, 2) draws; the percentile interval is a little narrow for small
    // n (it ignores the t correction), so expect roughly 0.90..0.97 coverage of 0.5.
    let reps = 300;
    let mut covered = 0;
    for r in 0..reps {
        let d = normals(10_000 + r, 40, 0.5, 2.0);
        let ci = bootstrap_mean_ci(&d, &BootstrapConfig { resamples: 1000, confidence: 0.95, seed: r }).unwrap();
        if ci.lower <= 0.5 && 0.5 <= ci.upper {
            covered += 1;
        }
    }
    let rate = covered as f64 / reps as f64;
    assert!((0.88..=0.98).contains(&rate), "coverage {rate}");
}

#[test]
fn same_seed_same_interval_other_seed_differs() {
    let d = normals(7, 60, 0.2, 0.5);
    let cfg = BootstrapConfig { resamples: 2000, confidence: 0.9, seed: 42 };
    let a = bootstrap_mean_ci(&d, &cfg).unwrap();
    let b = bootstrap_mean_ci(&d, &cfg).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.lower.to_bits(), b.lower.to_bits());
    let c = bootstrap_mean_ci(&d, &BootstrapConfig { seed: 43, ..cfg.clone() }).unwrap();
    assert_ne!((a.lower, a.upper), (c.lower, c.upper));
    // a narrower confidence gives a nested interval for the same resamples
    let n80 = bootstrap_mean_ci(&d, &BootstrapConfig { confidence: 0.8, ..cfg }).unwrap();
    assert!(a.lower <= n80.lower && n80.upper <= a.upper);
}

#[test]
fn rejects_bad_input() {
    let ok = [1.0, 2.0];
    for (d, cfg) in [
        (&[][..], BootstrapConfig::default()),
        (&[1.0, f64::NAN][..], BootstrapConfig::default()),
        (&ok[..], BootstrapConfig { resamples: 0, ..Default::default() }),
        (&ok[..], BootstrapConfig { confidence: 1.0, ..Default::default() }),
        (&ok[..], BootstrapConfig { confidence: 0.0, ..Default::default() }),
        (&ok[..], BootstrapConfig { confidence: f64::NAN, ..Default::default() }),
    ] {
        assert!(matches!(bootstrap_mean_ci(d, &cfg), Err(Error::Invalid(_))));
    }
    let cfg = BootstrapConfig::default();
    assert!(matches!(compare_paired("m", &[1.0, 2.0], &[1.0], &cfg), Err(Error::Invalid(_))));
    assert!(matches!(compare_paired("m", &[], &[], &cfg), Err(Error::Invalid(_))));
    assert!(matches!(compare_paired("m", &[f64::NAN], &[1.0], &cfg), Err(Error::Invalid(_))));
}

#[test]
fn compare_paired_record() {
    // two models' mIoU on 8 domains; A better on 7
    let a = [0.71, 0.64, 0.80, 0.55, 0.62, 0.77, 0.69, 0.58];
    let b = [0.66, 0.60, 0.79, 0.57, 0.55, 0.70, 0.61, 0.52];
    let cfg = BootstrapConfig { resamples: 4000, ..Default::default() };
    let c = compare_paired("mIoU", &a, &b, &cfg).unwrap();
    assert_eq!(c.n, 8);
    assert!((c.mean_diff - (c.mean_a - c.mean_b)).abs() < 1e-12);
    assert_eq!(c.bootstrap.estimate, c.mean_diff);
    assert!(c.bootstrap.lower > 0.0 && c.bootstrap.upper > c.bootstrap.lower);
    assert!(c.wilcoxon.r_plus > c.wilcoxon.r_minus);
    let json = serde_json::to_string(&c).unwrap();
    let back: ruac_core::metrics::stats::PairedComparison = serde_json::from_str(&json).unwrap();
    assert_eq!(back.metric, "mIoU");
    // (serde_json's default float parser may differ from the printed value in the last bit)
    assert!((back.bootstrap.lower - c.bootstrap.lower).abs() <= 1e-15);
    assert!((back.wilcoxon.p_value - c.wilcoxon.p_value).abs() <= 1e-15);
    assert_eq!(back.bootstrap.resamples, 4000);
}
