//! Write a checkpoint with seeded random weights in an official SAM 2.1 configuration's
//! layout: every tensor of the official checkpoint (`tests/fixtures/sam2.1_shapes.json`, the
//! reference's list, video-memory modules included), optionally with RUAC's Bayesian head.
//! The real sizes for benchmarks and memory checks, where the released weights cannot be
//! downloaded; speed and memory do not depend on the values, and masks from these weights
//! mean nothing.
//!
//! ```sh
//! cargo run --release -p ruac-core --example random_checkpoint -- base_plus --ruac out.safetensors
//! ```
//!
//! Configurations: tiny, small, base_plus, large (and micro). Seed: `--seed N` (default 1).
use candle_core::Tensor;
use ruac_core::model::config::{BayesHeadConfig, Sam2Config};
use std::collections::BTreeMap;

use ruac_core::model::init::init_official_layout;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: random_checkpoint CONFIG [--ruac] [--seed N] OUT.safetensors (CONFIG: tiny, small, base_plus, large, micro)";
    let (mut config, mut out, mut ruac, mut seed) = (None, None, false, 1u64);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--ruac" => ruac = true,
            "--seed" => seed = it.next().ok_or(usage)?.parse().map_err(|e| format!("--seed: {e}"))?,
            s if config.is_none() => config = Some(s.to_string()),
            s if out.is_none() => out = Some(s.to_string()),
            s => return Err(format!("unexpected argument {s:?}; {usage}").into()),
        }
    }
    let (Some(config), Some(out)) = (config, out) else { return Err(usage.into()) };
    let mut cfg = Sam2Config::by_name(&config).ok_or_else(|| format!("unknown configuration {config:?}; {usage}"))?;
    if ruac {
        cfg = cfg.with_bayes_head(Some(BayesHeadConfig::default()));
    }
    let shapes = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sam2.1_shapes.json");
    let mut all: BTreeMap<String, BTreeMap<String, Vec<usize>>> = serde_json::from_str(&std::fs::read_to_string(shapes)?)?;
    let official = if config == "micro" { BTreeMap::new() } else { all.remove(&cfg.name).ok_or_else(|| format!("{shapes} lacks {}", cfg.name))? };
    let tensors: Vec<(String, Tensor)> = init_official_layout(&cfg, &official, seed)?.into_iter().collect();
    let params: usize = tensors.iter().map(|(_, t)| t.elem_count()).sum();
    let metadata = [("ruac_config".to_string(), cfg.name.clone()), ("ruac_image_size".to_string(), cfg.image_size.to_string())].into_iter().collect();
    std::fs::write(&out, safetensors::serialize(tensors, Some(metadata))?)?;
    println!("{out}: {} ({}RUAC head), {:.1} M parameters, seed {seed}", cfg.name, if ruac { "" } else { "no " }, params as f64 / 1e6);
    Ok(())
}
