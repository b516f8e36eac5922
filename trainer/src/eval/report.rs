//! Reports: Markdown tables like the paper's (domains x metrics, with the average row), CSV
//! and JSON of every number, and SVG plots.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use ruac_core::metrics::stats::{compare_paired, BootstrapConfig};

use ruac_core::eval::results::EvalResults;
use super::svg::{grouped_bars, histogram2d, line_chart, Series};

/// `trainer compare`: two `results.json` files and the report's options.
#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    /// results.json of model A (from `trainer eval`).
    #[arg(long)]
    pub a: PathBuf,
    /// results.json of model B.
    #[arg(long)]
    pub b: PathBuf,
    #[arg(long, default_value = "A")]
    pub name_a: String,
    #[arg(long, default_value = "B")]
    pub name_b: String,
    #[arg(long, default_value_t = 10000)]
    pub resamples: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub out: PathBuf,
}

/// The columns of the summary tables: (flattened metric key, header, higher is better).
pub const KEY_METRICS: &[(&str, &str, bool)] = &[
    ("segmentation.jf", "J&F", true),
    ("segmentation.j", "J", true),
    ("segmentation.f", "F", true),
    ("whole.uncertainty.pavpu.pavpu", "PAvPU", true),
    ("whole.uncertainty.auroc", "AUROC", true),
    ("whole.uncertainty.aupr", "AUPR", true),
    ("whole.uncertainty.aurc", "AURC", false),
    ("whole.uncertainty.eaurc", "E-AURC", false),
    ("whole.calibration.ece", "ECE", false),
    ("whole.calibration.brier", "Brier", false),
    ("whole.calibration.nll", "NLL", false),
    ("whole.uncertainty.spearman_wrong", "Spearman", true),
    ("per_image.spearman", "Spearman (per image)", true),
    ("near_gt.uncertainty.auroc", "AUROC (GT+4px)", true),
    // One score per mask against one uncertainty per pixel where the score has a chance
    // (per object a constant map has AUROC 0.5 by construction): pixels near the ground
    // truth pooled over the domain's objects, and object-level correlation with 1 − J.
    ("pooled.auroc_pixel", "AUROC pooled (pixel unc.)", true),
    ("pooled.auroc_mask_score", "AUROC pooled (1 − IoU score)", true),
    ("object.spearman_uncertainty_error", "UAC obj. (mean unc.)", true),
    ("object.spearman_score_error", "UAC obj. (1 − IoU score)", true),
];

fn fmt(v: Option<f64>) -> String {
    v.map_or("–".to_string(), |x| format!("{x:.4}"))
}

/// One CSV field per RFC 4180: enclosed in double quotes, inner quotes doubled, when it
/// holds a comma, a quote, a carriage return or a line feed; as is otherwise.
pub fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// A Markdown table cell: `|` escaped and line breaks folded, so a name cannot split a row.
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\r', '\n'], " ")
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn protocols(r: &EvalResults) -> Vec<String> {
    let mut ps: Vec<String> = r.domains.iter().flat_map(|d| d.protocols.keys().cloned()).collect();
    ps.sort();
    ps.dedup();
    ps
}

fn value(r: &EvalResults, domain: usize, protocol: &str, key: &str) -> Option<f64> {
    r.domains[domain].protocols.get(protocol).and_then(|p| p.metrics.get(key)).copied()
}

fn average(vals: &[Option<f64>]) -> Option<f64> {
    let v: Vec<f64> = vals.iter().flatten().cloned().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

pub fn write_eval_report(r: &EvalResults, out: &Path) -> Result<()> {
    let plots = out.join("plots");
    std::fs::create_dir_all(&plots).with_context(|| format!("creating {}", plots.display()))?;
    write(&out.join("results.json"), &serde_json::to_string_pretty(r)?)?;

    let mut md = format!("# Evaluation of `{}`\n\nSettings: `{}`\n\n", r.model, r.settings);
    let mut csv = String::from("domain,protocol,metric,value\n");
    for p in protocols(r) {
        let _ = writeln!(md, "## Prompt: {p}\n");
        let _ = writeln!(md, "| domain | images | objects | {} |", KEY_METRICS.iter().map(|m| m.1).collect::<Vec<_>>().join(" | "));
        let _ = writeln!(md, "|---|---|---|{}", "---|".repeat(KEY_METRICS.len()));
        for (di, d) in r.domains.iter().enumerate() {
            let Some(pr) = d.protocols.get(&p) else { continue };
            let cells: Vec<String> = KEY_METRICS.iter().map(|(k, _, _)| fmt(value(r, di, &p, k))).collect();
            let _ = writeln!(md, "| {} | {} | {} | {} |", md_cell(&d.name), pr.n_images, pr.n_objects, cells.join(" | "));
            for (k, v) in &pr.metrics {
                let _ = writeln!(csv, "{},{},{},{}", csv_field(&d.name), csv_field(&p), csv_field(k), v);
            }
        }
        let avg: Vec<String> = KEY_METRICS
            .iter()
            .map(|(k, _, _)| fmt(average(&(0..r.domains.len()).map(|di| value(r, di, &p, k)).collect::<Vec<_>>())))
            .collect();
        let _ = writeln!(md, "| **average** | | | {} |\n", avg.join(" | "));

        // Reliability (pooled over domains), risk-coverage and uncertainty-vs-error per domain.
        let mut rel = vec![];
        for d in &r.domains {
            if let Some(pr) = d.protocols.get(&p) {
                if rel.len() < pr.reliability.len() {
                    rel.resize(pr.reliability.len(), (0u64, 0.0, 0.0));
                }
                for (a, b) in rel.iter_mut().zip(&pr.reliability) {
                    a.0 += b.0;
                    a.1 += b.1;
                    a.2 += b.2;
                }
            }
        }
        let rel_pts: Vec<(f64, f64)> = rel.iter().filter(|b| b.0 > 0).map(|b| (b.1 / b.0 as f64, b.2 / b.0 as f64)).collect();
        write(
            &plots.join(format!("reliability_{p}.svg")),
            &line_chart(&format!("Reliability ({p}, all domains)"), "confidence", "accuracy", &[Series { name: "model".into(), points: rel_pts }], (0.5, 1.0), (0.0, 1.0), true),
        )?;
        let rc: Vec<Series> = r
            .domains
            .iter()
            .filter_map(|d| d.protocols.get(&p).map(|pr| Series { name: d.name.clone(), points: pr.risk_coverage.clone() }))
            .collect();
        let max_risk = rc.iter().flat_map(|s| s.points.iter().map(|x| x.1)).fold(0.0f64, f64::max).max(1e-3);
        write(&plots.join(format!("risk_coverage_{p}.svg")), &line_chart(&format!("Risk-coverage ({p})"), "coverage", "risk (error rate)", &rc, (0.0, 1.0), (0.0, max_risk * 1.05), false))?;
        let pv: Vec<Series> = r
            .domains
            .iter()
            .filter_map(|d| d.protocols.get(&p).map(|pr| Series { name: d.name.clone(), points: pr.pavpu_curve.clone() }))
            .collect();
        let tmax = pv.iter().flat_map(|s| s.points.iter().map(|x| x.0)).fold(0.0f64, f64::max).max(1e-3);
        write(&plots.join(format!("pavpu_{p}.svg")), &line_chart(&format!("PAvPU vs uncertainty threshold ({p})"), "uncertainty threshold", "PAvPU", &pv, (0.0, tmax), (0.0, 1.0), false))?;
        for d in &r.domains {
            if let Some(pr) = d.protocols.get(&p) {
                write(
                    &plots.join(format!("unc_vs_error_{}_{p}.svg", d.name)),
                    &histogram2d(&format!("{}: uncertainty vs error ({p})", d.name), "uncertainty", "|p - gt|", &pr.unc_vs_error, (0.0, pr.unc_max), (0.0, 1.0)),
                )?;
            }
        }
        let _ = writeln!(md, "![reliability](plots/reliability_{p}.svg) ![risk-coverage](plots/risk_coverage_{p}.svg) ![PAvPU](plots/pavpu_{p}.svg)\n");
    }
    let _ = writeln!(md, "## Skipped inputs\n");
    for d in &r.domains {
        let _ = writeln!(md, "- {}: {} skipped {}", d.name, d.skipped.total(), d.skipped.messages.iter().take(3).cloned().collect::<Vec<_>>().join("; "));
    }
    write(&out.join("summary.md"), &md)?;
    write(&out.join("results.csv"), &csv)
}

pub fn write_compare_report(a: &EvalResults, b: &EvalResults, args: &CompareArgs) -> Result<()> {
    let out = &args.out;
    std::fs::create_dir_all(out.join("plots")).with_context(|| format!("creating {}", out.display()))?;
    let cfg = BootstrapConfig { resamples: args.resamples, seed: args.seed, ..Default::default() };
    let mut md = format!(
        "# {} vs {}\n\nPaired over domains: Wilcoxon signed-rank (two-sided) and a {}-resample bootstrap 95% CI of the mean difference ({} − {}).\n\n",
        args.name_a, args.name_b, args.resamples, args.name_b, args.name_a
    );
    let mut json = serde_json::Map::new();
    for p in protocols(a) {
        let _ = writeln!(md, "## Prompt: {p}\n\n| metric | domains | {} | {} | diff | 95% CI | Wilcoxon p | better |\n|---|---|---|---|---|---|---|---|", args.name_a, args.name_b);
        let mut rows = serde_json::Map::new();
        for (key, label, higher) in KEY_METRICS {
            let mut va = vec![];
            let mut vb = vec![];
            for (ia, d) in a.domains.iter().enumerate() {
                let Some(ib) = b.domains.iter().position(|x| x.name == d.name) else { continue };
                if let (Some(x), Some(y)) = (value(a, ia, &p, key), value(b, ib, &p, key)) {
                    va.push(x);
                    vb.push(y);
                }
            }
            if va.is_empty() {
                continue;
            }
            // Differences as B − A.
            let c = match compare_paired(label, &vb, &va, &cfg) {
                Ok(c) => c,
                Err(_) => continue,
            };
            let better = if c.mean_diff == 0.0 { "=" } else if (c.mean_diff > 0.0) == *higher { args.name_b.as_str() } else { args.name_a.as_str() };
            let _ = writeln!(
                md,
                "| {label} | {} | {:.4} | {:.4} | {:+.4} | [{:+.4}, {:+.4}] | {:.4} | {better} |",
                c.n, c.mean_b, c.mean_a, c.mean_diff, c.bootstrap.lower, c.bootstrap.upper, c.wilcoxon.p_value
            );
            rows.insert(label.to_string(), serde_json::to_value(&c)?);
        }
        json.insert(p.clone(), serde_json::Value::Object(rows));
        let domains: Vec<String> = a.domains.iter().map(|d| d.name.clone()).collect();
        let get = |r: &EvalResults| -> Vec<Option<f64>> {
            domains.iter().map(|n| r.domains.iter().position(|d| &d.name == n).and_then(|i| value(r, i, &p, "segmentation.jf"))).collect()
        };
        std::fs::write(
            out.join("plots").join(format!("jf_by_domain_{p}.svg")),
            grouped_bars(&format!("J&F per domain ({p})"), "J&F", &domains, &[args.name_a.clone(), args.name_b.clone()], &[get(a), get(b)]),
        )?;
        let _ = writeln!(md, "\n![J&F per domain](plots/jf_by_domain_{p}.svg)\n");
    }
    write(&out.join("compare.md"), &md)?;
    write(&out.join("compare.json"), &serde_json::to_string_pretty(&serde_json::Value::Object(json))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruac_core::eval::results::{DomainResult, ProtocolResult};

    /// Splits RFC 4180 CSV into records of fields (quoted fields may hold `,`, `"` and newlines).
    fn parse_csv(text: &str) -> Vec<Vec<String>> {
        let (mut rows, mut row, mut field) = (vec![], vec![], String::new());
        let (mut quoted, mut chars) = (false, text.chars().peekable());
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                (true, '"') => quoted = false,
                (true, c) => field.push(c),
                (false, '"') => quoted = true,
                (false, ',') => row.push(std::mem::take(&mut field)),
                (false, '\n') => {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                (false, c) => field.push(c),
            }
        }
        rows
    }

    #[test]
    fn csv_quotes_a_domain_name_with_a_comma_and_a_quote() {
        let name = "north, \"new\" site\nline 2";
        let mut pr = ProtocolResult::default();
        pr.metrics.insert("segmentation.jf".into(), 0.5);
        let mut d = DomainResult { name: name.into(), ..Default::default() };
        d.protocols.insert("click1".into(), pr);
        let plain = DomainResult { name: "plain".into(), protocols: d.protocols.clone(), ..Default::default() };
        let r = EvalResults { model: "m".into(), settings: "s".into(), domains: vec![d, plain] };
        let dir = tempfile::tempdir().unwrap();
        write_eval_report(&r, dir.path()).unwrap();
        let csv = std::fs::read_to_string(dir.path().join("results.csv")).unwrap();
        assert!(csv.contains("\"north, \"\"new\"\" site\nline 2\",click1,segmentation.jf,0.5\n"), "{csv}");
        assert!(csv.contains("\nplain,click1,segmentation.jf,0.5\n"), "unquoted when plain: {csv}");
        let rows = parse_csv(&csv);
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r.len() == 4), "{rows:?}");
        assert_eq!(rows[1][0], name);
        let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
        assert!(md.contains("| north, \"new\" site line 2 | 0 | 0 |"), "{md}");
    }

    #[test]
    fn csv_field_follows_rfc_4180() {
        assert_eq!(csv_field("abc"), "abc");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("a\rb"), "\"a\rb\"");
        assert_eq!(csv_field(""), "");
    }
}
