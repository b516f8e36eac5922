//! Cost of the evaluation metrics: `evaluate_object` (every metric, both regions, the
//! mask-level baseline) on 512x512 objects. `cargo bench -p ruac-core --bench metrics`
//! (`-- --objects N`, default 1000). Prints ms per object and objects per second.
use ruac_core::metrics::object::{evaluate_object, MetricConfig, ObjectInput};

fn object(seed: u64) -> (Vec<f32>, Vec<f32>, Vec<bool>) {
    let (w, h) = (512usize, 512usize);
    let mut rng = ruac_core::rng::Pcg32::new(seed);
    let (cx, cy, r) = (200.0 + 100.0 * rng.uniform() as f64, 200.0 + 100.0 * rng.uniform() as f64, 80.0 + 80.0 * rng.uniform() as f64);
    let mut prob = Vec::with_capacity(w * h);
    let mut unc = Vec::with_capacity(w * h);
    let mut gt = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let d = (((x as f64 - cx).powi(2) + (y as f64 - cy).powi(2)).sqrt() - r) / 8.0;
            let logit = -d + 2.0 * (rng.uniform() as f64 - 0.5);
            let p = 1.0 / (1.0 + (-logit).exp());
            prob.push(p as f32);
            let ent = -(p * p.max(1e-9).ln() + (1.0 - p) * (1.0 - p).max(1e-9).ln());
            unc.push(ent as f32);
            gt.push(d < 0.0);
        }
    }
    (prob, unc, gt)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.iter().position(|a| a == "--objects").and_then(|i| args.get(i + 1)).and_then(|s| s.parse().ok()).unwrap_or(1000);
    // A pool of 8 distinct objects, cycled, keeps input generation out of the timing.
    let pool: Vec<_> = (0..8).map(object).collect();
    let cfg = MetricConfig::default();
    let t = std::time::Instant::now();
    let mut sink = 0.0;
    for i in 0..n {
        let (p, u, g) = &pool[i % pool.len()];
        let input = ObjectInput { width: 512, height: 512, prob: p, uncertainty: u, gt: g, iou_score: Some(0.8) };
        let m = evaluate_object(&input, &cfg).expect("valid input");
        sink += m.segmentation.jf;
    }
    let s = t.elapsed().as_secs_f64();
    println!("evaluate_object 512x512: {n} objects in {s:.2} s = {:.1} ms/object ({:.0} objects/s) [checksum {sink:.3}]", 1e3 * s / n as f64, n as f64 / s);
}
