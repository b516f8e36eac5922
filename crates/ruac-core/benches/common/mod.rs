//! What the bench binaries share: the benchmark image (which `tools/bench_compare.py` and
//! `tools/bench_train.py` rebuild byte for byte), the thread setting, timing and `/proc`
//! memory readings.
#![allow(dead_code)] // each bench binary uses a different subset

use std::time::Instant;

use ruac_core::image_io::RgbImage;
use serde_json::{json, Value};

pub type Res<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The bench binaries' flags: `--weights`, `--config`, `--image-size`, `--threads`, `--reps`,
/// `--warmup`, `--json` (each binary's `usage` names the ones it takes).
pub struct Args {
    pub weights: String,
    pub config: String,
    pub image_size: Option<usize>,
    pub threads: usize,
    pub reps: usize,
    pub warmup: usize,
    pub json: Option<String>,
}

impl Default for Args {
    fn default() -> Self {
        Self { weights: String::new(), config: String::new(), image_size: None, threads: 1, reps: 5, warmup: 1, json: None }
    }
}

impl Args {
    /// Parses the command line over `defaults`. A flag `usage` does not mention is refused;
    /// `cargo bench` appends `--bench`, which is ignored.
    pub fn parse(usage: &str, defaults: Args) -> Res<Args> {
        let mut a = defaults;
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            if flag == "--bench" {
                continue;
            }
            if flag == "-h" || flag == "--help" {
                println!("{usage}");
                std::process::exit(0);
            }
            if !usage.split(|c: char| c.is_whitespace() || c == '[' || c == ']').any(|w| w == flag) {
                return Err(format!("unknown argument {flag}\n{usage}").into());
            }
            let val = it.next().ok_or_else(|| format!("{flag} needs a value\n{usage}"))?;
            match flag.as_str() {
                "--weights" => a.weights = val,
                "--config" => a.config = val,
                "--image-size" => a.image_size = Some(val.parse()?),
                "--threads" => a.threads = val.parse()?,
                "--reps" => a.reps = val.parse()?,
                "--warmup" => a.warmup = val.parse()?,
                "--json" => a.json = Some(val),
                other => return Err(format!("unknown argument {other}\n{usage}").into()),
            }
        }
        if a.weights.is_empty() || (usage.contains("--config NAME") && a.config.is_empty()) {
            return Err(usage.into());
        }
        if a.reps == 0 || a.threads == 0 || a.image_size.is_some_and(|s| s < 16) {
            return Err("--reps and --threads must be at least 1, --image-size at least 16".into());
        }
        Ok(a)
    }
}

/// Sets RAYON_NUM_THREADS (read by candle's CPU kernels and gemm) to `threads` before any
/// candle call; refuses a different value already in the environment.
pub fn setup_process(threads: usize) -> Res<()> {
    // As the trainer: large buffers reused, not re-mapped (ruac_core::malloc).
    ruac_core::malloc::reuse_large_buffers();
    match std::env::var("RAYON_NUM_THREADS") {
        Ok(v) if v.parse::<usize>().ok() != Some(threads) => {
            Err(format!("RAYON_NUM_THREADS={v} but --threads {threads}: set them alike").into())
        }
        Ok(_) => Ok(()),
        // No candle (or rayon) call has run yet, so the variable takes effect everywhere.
        Err(_) => {
            std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
            Ok(())
        }
    }
}

/// The benchmark image: gradients, a red disc (the click target, centre `(2s/5, 2s/5)`,
/// radius `s/6`) and a blue rectangle; integer formulas so that Python builds the same bytes.
pub fn bench_image(s: usize) -> RgbImage {
    let (w, h) = (s, s);
    let (cx, cy, r) = (w * 2 / 5, h * 2 / 5, w / 6);
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let dx = x as i64 - cx as i64;
            let dy = y as i64 - cy as i64;
            let px = if dx * dx + dy * dy <= (r * r) as i64 {
                [220, 30, 40]
            } else if x >= w * 3 / 5 && x <= w * 9 / 10 && y >= h / 10 && y <= h / 2 {
                [25, 60, 210]
            } else {
                [(x * 255 / (w - 1)) as u8, (y * 255 / (h - 1)) as u8, (255 - (x + y) * 255 / (w + h - 2)) as u8]
            };
            data.extend_from_slice(&px);
        }
    }
    RgbImage::new(w, h, data).expect("valid benchmark image")
}

pub fn fnv1a(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// A field of /proc/self/status, in kB (Linux only).
pub fn proc_status_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok())
}

pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Runs `f` `warmup` times untimed, then `reps` times; returns the times in seconds.
pub fn time_it(warmup: usize, reps: usize, mut f: impl FnMut() -> Res<()>) -> Res<Vec<f64>> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(times)
}

pub fn stats(times: &[f64]) -> Value {
    let mut v = times.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) };
    json!({ "median_s": median, "min_s": v[0], "max_s": v[n - 1], "times_s": times })
}
