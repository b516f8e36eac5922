//! The metrics against independent reference implementations: scikit-learn, SciPy, the
//! DAVIS 2017 boundary F-measure (OpenCV + scikit-image) and NumPy definitions, via the
//! fixtures of tools/make_metric_fixtures.py.
use std::path::PathBuf;

use ruac_core::metrics::correlation::{average_ranks, pearson, spearman};
use ruac_core::metrics::object::{evaluate_object, MetricConfig, ObjectInput};
use ruac_core::metrics::ranking::ErrorRanking;
use serde_json::Value;

const TOL: f64 = 1e-9;

fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture readable")).expect("fixture is JSON")
}

/// The f32 the fixture script used for an integer k in thousandths.
fn milli(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|k| (k.as_i64().unwrap() as f64 / 1000.0) as f32).collect()
}

fn bits(v: &Value) -> Vec<bool> {
    v.as_str().unwrap().bytes().map(|b| b == b'1').collect()
}

/// Every leaf of `expected` must be in `ours`: numbers within TOL (relative above 1),
/// null exactly where ours is null. Returns the number of numeric leaves compared.
fn compare(path: &str, ours: &Value, expected: &Value, errors: &mut Vec<String>) -> usize {
    match (ours, expected) {
        (_, Value::Object(e)) => {
            let Value::Object(o) = ours else {
                errors.push(format!("{path}: expected an object, got {ours}"));
                return 0;
            };
            e.iter()
                .map(|(k, ev)| match o.get(k) {
                    Some(ov) => compare(&format!("{path}.{k}"), ov, ev, errors),
                    None => {
                        errors.push(format!("{path}.{k}: missing"));
                        0
                    }
                })
                .sum()
        }
        (_, Value::Array(e)) => {
            let Value::Array(o) = ours else {
                errors.push(format!("{path}: expected an array, got {ours}"));
                return 0;
            };
            if o.len() != e.len() {
                errors.push(format!("{path}: {} entries, expected {}", o.len(), e.len()));
                return 0;
            }
            o.iter().zip(e).enumerate().map(|(i, (ov, ev))| compare(&format!("{path}[{i}]"), ov, ev, errors)).sum()
        }
        (_, Value::Null) => {
            if !ours.is_null() {
                errors.push(format!("{path}: {ours}, expected null"));
            }
            0
        }
        (Value::Number(o), Value::Number(e)) => {
            let (o, e) = (o.as_f64().unwrap(), e.as_f64().unwrap());
            if (o - e).abs() > TOL * e.abs().max(1.0) {
                errors.push(format!("{path}: {o}, expected {e} (diff {:e})", o - e));
            }
            1
        }
        _ => {
            errors.push(format!("{path}: {ours}, expected {expected}"));
            0
        }
    }
}

#[test]
fn objects_match_reference_implementations() {
    let fixture = load("objects.json");
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    let mut total = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (prob, unc, gt) = (milli(&case["prob_milli"]), milli(&case["uncertainty_milli"]), bits(&case["gt"]));
        let iou_score = (!case["iou_score_milli"].is_null())
            .then(|| (case["iou_score_milli"].as_i64().unwrap() as f64 / 1000.0) as f32);
        let config: MetricConfig = serde_json::from_value(case["config"].clone()).unwrap();
        let input = ObjectInput {
            width: case["width"].as_u64().unwrap() as usize,
            height: case["height"].as_u64().unwrap() as usize,
            prob: &prob,
            uncertainty: &unc,
            gt: &gt,
            iou_score,
        };
        let ours = serde_json::to_value(evaluate_object(&input, &config).unwrap()).unwrap();
        let mut errors = Vec::new();
        let n = compare(name, &ours, &case["expected"], &mut errors);
        assert!(errors.is_empty(), "{} mismatches:\n{}", errors.len(), errors.join("\n"));
        // the comparison really covered the metrics (not a vacuous pass)
        assert!(n > 300, "{name}: only {n} numbers compared");
        total += n;
    }
    eprintln!("compared {total} reference numbers");
}

#[test]
fn correlations_match_scipy() {
    let fixture = load("functions.json");
    for (k, case) in fixture["correlation"].as_array().unwrap().iter().enumerate() {
        let div = |v: &Value, d: f64| -> Vec<f64> {
            v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap() as f64 / d).collect()
        };
        let (x, y) = (div(&case["x_times_7"], 7.0), div(&case["y_times_3"], 3.0));
        let r = pearson(&x, &y).unwrap();
        let rho = spearman(&x, &y).unwrap();
        assert!((r - case["pearson"].as_f64().unwrap()).abs() < TOL, "case {k}: pearson {r}");
        assert!((rho - case["spearman"].as_f64().unwrap()).abs() < TOL, "case {k}: spearman {rho}");
        let ranks = average_ranks(&x);
        let expected: Vec<f64> = case["ranks_x"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(ranks, expected, "case {k}: ranks");
    }
}

#[test]
fn error_ranking_matches_sklearn() {
    let fixture = load("functions.json");
    let cases = fixture["ranking"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for (k, case) in cases.iter().enumerate() {
        let (score, label) = (milli(&case["score_milli"]), bits(&case["label"]));
        let r = ErrorRanking::new(&score, &label).unwrap();
        for (name, ours) in
            [("auroc", r.auroc()), ("aupr", r.average_precision()), ("aurc", r.aurc()), ("eaurc", r.eaurc())]
        {
            let (ours, expected) = (ours.unwrap(), case[name].as_f64().unwrap());
            assert!((ours - expected).abs() < TOL, "case {k}: {name} {ours}, expected {expected}");
        }
    }
}
