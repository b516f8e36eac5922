//! Minimal SVG charts for evaluation reports: line charts (risk-coverage, reliability),
//! grouped bars (model A vs B per domain) and a 2-D histogram (uncertainty vs error).
//! Hand-written SVG keeps the reports dependency-free and diff-able.
use std::fmt::Write;

const W: f64 = 640.0;
const H: f64 = 420.0;
const ML: f64 = 64.0;
const MR: f64 = 150.0;
const MT: f64 = 36.0;
const MB: f64 = 56.0;
/// Colour-blind-safe palette (Okabe–Ito).
pub const PALETTE: [&str; 6] = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        ML + (x - self.x0) / (self.x1 - self.x0).max(1e-12) * (W - ML - MR)
    }
    fn py(&self, y: f64) -> f64 {
        H - MB - (y - self.y0) / (self.y1 - self.y0).max(1e-12) * (H - MT - MB)
    }
}

fn header(title: &str, xlabel: &str, ylabel: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<text transform="translate(16,{}) rotate(-90)" text-anchor="middle">{}</text>
"#,
        (W - MR + ML) / 2.0,
        esc(title),
        (W - MR + ML) / 2.0,
        H - 12.0,
        esc(xlabel),
        (H - MB + MT) / 2.0,
        esc(ylabel)
    );
    s
}

fn axes(s: &mut String, f: &Frame, xticks: &[(f64, String)], yticks: &[(f64, String)]) {
    let _ = writeln!(s, r#"<rect x="{ML}" y="{MT}" width="{}" height="{}" fill="none" stroke="black"/>"#, W - ML - MR, H - MT - MB);
    for (x, l) in xticks {
        let px = f.px(*x);
        let _ = writeln!(s, r#"<line x1="{px:.1}" y1="{}" x2="{px:.1}" y2="{}" stroke="black"/><text x="{px:.1}" y="{}" text-anchor="middle">{}</text>"#, H - MB, H - MB + 5.0, H - MB + 18.0, esc(l));
    }
    for (y, l) in yticks {
        let py = f.py(*y);
        let _ = writeln!(s, r##"<line x1="{}" y1="{py:.1}" x2="{ML}" y2="{py:.1}" stroke="black"/><line x1="{ML}" y1="{py:.1}" x2="{}" y2="{py:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##, ML - 5.0, W - MR, ML - 8.0, py + 4.0, esc(l));
    }
}

fn ticks(lo: f64, hi: f64, n: usize) -> Vec<(f64, String)> {
    (0..=n).map(|i| {
        let v = lo + (hi - lo) * i as f64 / n as f64;
        (v, format!("{v:.2}"))
    }).collect()
}

fn legend(s: &mut String, names: &[String]) {
    for (i, n) in names.iter().enumerate() {
        let y = MT + 10.0 + i as f64 * 18.0;
        let _ = writeln!(s, r#"<rect x="{}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{}">{}</text>"#, W - MR + 10.0, y - 10.0, PALETTE[i % PALETTE.len()], W - MR + 27.0, y, esc(n));
    }
}

/// One named polyline.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A line chart over fixed axis ranges; `diagonal` draws the y = x reference (reliability).
pub fn line_chart(title: &str, xlabel: &str, ylabel: &str, series: &[Series], x: (f64, f64), y: (f64, f64), diagonal: bool) -> String {
    let f = Frame { x0: x.0, x1: x.1, y0: y.0, y1: y.1 };
    let mut s = header(title, xlabel, ylabel);
    axes(&mut s, &f, &ticks(x.0, x.1, 5), &ticks(y.0, y.1, 5));
    if diagonal {
        let _ = writeln!(s, r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="gray" stroke-dasharray="4 4"/>"#, f.px(x.0), f.py(y.0), f.px(x.1), f.py(y.1));
    }
    for (i, se) in series.iter().enumerate() {
        let pts: Vec<String> = se
            .points
            .iter()
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .map(|(a, b)| format!("{:.1},{:.1}", f.px(*a), f.py(*b)))
            .collect();
        let _ = writeln!(s, r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#, PALETTE[i % PALETTE.len()], pts.join(" "));
    }
    legend(&mut s, &series.iter().map(|x| x.name.clone()).collect::<Vec<_>>());
    s.push_str("</svg>\n");
    s
}

/// Grouped bars: `groups` along x (domains), one bar per model.
pub fn grouped_bars(title: &str, ylabel: &str, groups: &[String], models: &[String], values: &[Vec<Option<f64>>]) -> String {
    let ymax = values.iter().flatten().flatten().cloned().fold(0.0f64, f64::max).max(1e-9) * 1.1;
    let n = groups.len().max(1) as f64;
    let f = Frame { x0: 0.0, x1: n, y0: 0.0, y1: ymax };
    let mut s = header(title, "", ylabel);
    axes(&mut s, &f, &[], &ticks(0.0, ymax, 5));
    let bw = 0.8 / models.len().max(1) as f64;
    for (g, name) in groups.iter().enumerate() {
        for (m, _) in models.iter().enumerate() {
            if let Some(v) = values.get(m).and_then(|r| r.get(g)).cloned().flatten() {
                let x = g as f64 + 0.1 + m as f64 * bw;
                let (px0, px1) = (f.px(x), f.px(x + bw));
                let (py, py0) = (f.py(v), f.py(0.0));
                let _ = writeln!(s, r#"<rect x="{px0:.1}" y="{py:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#, px1 - px0, py0 - py, PALETTE[m % PALETTE.len()]);
            }
        }
        let cx = f.px(g as f64 + 0.5);
        let _ = writeln!(s, r#"<text transform="translate({cx:.1},{}) rotate(35)" font-size="10">{}</text>"#, H - MB + 12.0, esc(name));
    }
    legend(&mut s, models);
    s.push_str("</svg>\n");
    s
}

/// A 2-D histogram as a heat map (log counts), e.g. uncertainty (x) vs error (y).
pub fn histogram2d(title: &str, xlabel: &str, ylabel: &str, counts: &[Vec<u64>], x: (f64, f64), y: (f64, f64)) -> String {
    let f = Frame { x0: x.0, x1: x.1, y0: y.0, y1: y.1 };
    let mut s = header(title, xlabel, ylabel);
    let nx = counts.len().max(1);
    let ny = counts.first().map(|c| c.len()).unwrap_or(1).max(1);
    let maxc = counts.iter().flatten().cloned().max().unwrap_or(1).max(1) as f64;
    for (i, col) in counts.iter().enumerate() {
        for (j, &c) in col.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let t = ((c as f64).ln_1p() / maxc.ln_1p()) as f32;
            let [r, g, b] = ruac_core::viz::inferno(0.15 + 0.85 * t);
            let (xa, xb) = (x.0 + (x.1 - x.0) * i as f64 / nx as f64, x.0 + (x.1 - x.0) * (i + 1) as f64 / nx as f64);
            let (ya, yb) = (y.0 + (y.1 - y.0) * j as f64 / ny as f64, y.0 + (y.1 - y.0) * (j + 1) as f64 / ny as f64);
            let _ = writeln!(s, r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="rgb({r},{g},{b})"/>"#, f.px(xa), f.py(yb), f.px(xb) - f.px(xa), f.py(ya) - f.py(yb));
        }
    }
    axes(&mut s, &f, &ticks(x.0, x.1, 5), &ticks(y.0, y.1, 5));
    let _ = writeln!(s, r#"<text x="{}" y="{}">colour: log count</text>"#, W - MR + 10.0, MT + 10.0);
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_well_formed_and_place_points() {
        let s = line_chart("t", "x", "y", &[Series { name: "a<b".into(), points: vec![(0.0, 0.0), (1.0, 1.0)] }], (0.0, 1.0), (0.0, 1.0), true);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains("a&lt;b"));
        // (0,0) maps to the bottom-left corner of the plot area, (1,1) to the top-right.
        assert!(s.contains(&format!("{:.1},{:.1} {:.1},{:.1}", ML, H - MB, W - MR, MT)));
        let b = grouped_bars("t", "J&F", &["d1".into()], &["A".into(), "B".into()], &[vec![Some(0.5)], vec![None]]);
        // plot frame + the one present bar + two legend swatches (the missing value draws nothing)
        assert_eq!(b.matches("<rect x=").count(), 4);
        let h = histogram2d("t", "u", "e", &[vec![0, 3], vec![1, 0]], (0.0, 1.0), (0.0, 1.0));
        assert_eq!(h.matches("fill=\"rgb(").count(), 2);
    }
}
