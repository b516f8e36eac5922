//! Wilcoxon signed-rank test against `scipy.stats.wilcoxon` (fixtures from
//! tools/make_stats_fixtures.py) and hand-worked cases.
use ruac_core::metrics::stats::{signed_rank_pmf, wilcoxon, wilcoxon_diffs, WilcoxonMethod};
use ruac_core::Error;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    scipy: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    x: Vec<f64>,
    y: Vec<f64>,
    correction: bool,
    method: String,
    n_used: usize,
    statistic: f64,
    pvalue: f64,
}

fn load() -> Fixture {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/stats/wilcoxon.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn method_name(m: WilcoxonMethod) -> &'static str {
    match m {
        WilcoxonMethod::Exact => "exact",
        WilcoxonMethod::Permutation => "permutation",
        WilcoxonMethod::Asymptotic => "asymptotic",
    }
}

#[test]
fn matches_scipy_fixtures() {
    let fx = load();
    assert!(fx.cases.len() >= 20, "fixture from scipy {}", fx.scipy);
    let mut routes = std::collections::BTreeMap::new();
    for c in &fx.cases {
        let d: Vec<f64> = c.x.iter().zip(&c.y).map(|(a, b)| a - b).collect();
        let r = if c.correction { wilcoxon_diffs(&d, true).unwrap() } else { wilcoxon(&c.x, &c.y).unwrap() };
        assert_eq!(method_name(r.method), c.method, "{}: route", c.name);
        assert_eq!(r.n, c.n_used, "{}: n", c.name);
        assert_eq!(r.statistic, c.statistic, "{}: statistic", c.name);
        let tol = 1e-10 * c.pvalue + 1e-15;
        assert!(
            (r.p_value - c.pvalue).abs() <= tol,
            "{}: p = {:e}, scipy {:e} (diff {:e})",
            c.name,
            r.p_value,
            c.pvalue,
            r.p_value - c.pvalue
        );
        assert_eq!(r.z.is_some(), r.method == WilcoxonMethod::Asymptotic, "{}", c.name);
        *routes.entry(c.method.clone()).or_insert(0) += 1;
    }
    // every route is exercised
    assert!(routes.len() == 3 && routes.values().all(|&k| k >= 3), "{routes:?}");
}

#[test]
fn hand_worked_five_positive_differences() {
    // R+ = 15 is the largest of 32 equally likely sign patterns: one-sided 1/32.
    let r = wilcoxon(&[1.0, 2.0, 3.0, 4.0, 5.0], &[0.0; 5]).unwrap();
    assert_eq!(r.method, WilcoxonMethod::Exact);
    assert_eq!((r.statistic, r.r_plus, r.r_minus, r.n), (0.0, 15.0, 0.0, 5));
    assert_eq!(r.p_value, 2.0 / 32.0);
    // symmetric in the order of the models
    let s = wilcoxon(&[0.0; 5], &[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
    assert_eq!((s.statistic, s.p_value, s.r_plus), (0.0, 2.0 / 32.0, 0.0));
}

#[test]
fn hand_worked_ties_by_enumeration() {
    // d = [1, -1, 2]: mid-ranks 1.5, 1.5, 3; R+ = 4.5. Sign patterns (8): R+ in
    // {0, 1.5, 1.5, 3, 3, 4.5, 4.5, 6}; P(R+ >= 4.5) = 3/8, P(R+ <= 4.5) = 7/8 -> p = 6/8.
    let r = wilcoxon_diffs(&[1.0, -1.0, 2.0], false).unwrap();
    assert_eq!(r.method, WilcoxonMethod::Permutation);
    assert_eq!((r.r_plus, r.r_minus, r.statistic), (4.5, 1.5, 1.5));
    assert_eq!(r.p_value, 0.75);
}

#[test]
fn zeros_are_dropped() {
    let r = wilcoxon_diffs(&[0.0, 1.0, 2.0, 0.0, 3.0], false).unwrap();
    assert_eq!((r.n, r.n_zero), (3, 2));
    // zeros force the permutation route; with 3 untied ranks it equals the exact p = 2/8
    assert_eq!(r.method, WilcoxonMethod::Permutation);
    assert_eq!(r.p_value, 0.25);
    let all = wilcoxon(&[0.5, 0.25], &[0.5, 0.25]).unwrap();
    assert_eq!((all.n, all.statistic, all.p_value), (0, 0.0, 1.0));
}

#[test]
fn route_boundaries() {
    let distinct =
        |n: usize| -> Vec<f64> { (1..=n).map(|k| if k % 3 == 0 { -(k as f64) } else { k as f64 }).collect() };
    assert_eq!(wilcoxon_diffs(&distinct(50), false).unwrap().method, WilcoxonMethod::Exact);
    assert_eq!(wilcoxon_diffs(&distinct(51), false).unwrap().method, WilcoxonMethod::Asymptotic);
    let mut tied = distinct(13);
    tied[0] = 2.0;
    assert_eq!(wilcoxon_diffs(&tied, false).unwrap().method, WilcoxonMethod::Permutation);
    let mut tied14 = distinct(14);
    tied14[0] = 2.0;
    assert_eq!(wilcoxon_diffs(&tied14, false).unwrap().method, WilcoxonMethod::Asymptotic);
}

#[test]
fn exact_pmf_small_n() {
    // n = 3: R+ takes 0,1,2,3,3,4,5,6 over the 8 sign patterns
    let p = signed_rank_pmf(3);
    assert_eq!(p, vec![1.0 / 8.0, 1.0 / 8.0, 1.0 / 8.0, 2.0 / 8.0, 1.0 / 8.0, 1.0 / 8.0, 1.0 / 8.0]);
}

#[test]
fn rejects_bad_input() {
    for r in [
        wilcoxon(&[1.0, 2.0], &[1.0]),
        wilcoxon(&[], &[]),
        wilcoxon(&[1.0, f64::NAN], &[0.0, 0.0]),
        wilcoxon(&[1.0, 2.0], &[0.0, f64::INFINITY]),
        wilcoxon_diffs(&[], false),
    ] {
        assert!(matches!(r, Err(Error::Invalid(_))), "{r:?}");
    }
}

#[test]
fn wilcoxon_outcome_serialises() {
    let r = wilcoxon(&[0.75, 0.5, 0.625, 0.875], &[0.5, 0.4375, 0.75, 0.5]).unwrap();
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["method"], "exact");
    assert_eq!(json["n"], 4);
    let back: ruac_core::metrics::stats::WilcoxonResult = serde_json::from_value(json).unwrap();
    assert_eq!((back.method, back.n, back.statistic), (r.method, r.n, r.statistic));
    assert!((back.p_value - r.p_value).abs() <= 1e-15);
}
