//! Writes the demo's stand-in default model, `web/models/ruac-micro.safetensors`: the micro
//! SAM 2.1 parity checkpoint plus the RUAC Bayesian head fixture (random weights, real
//! pipeline), with the tensors the image model never reads (video path, attackers, unused
//! hypernetworks) left out. The trained `ruac-micro` replaces this file under the same name.
//!
//! `cargo run -p ruac-web --example assemble_default_model [-- OUT]`
use std::path::PathBuf;

use ruac_core::checkpoint::Checkpoint;

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let fixtures = root.join("crates/ruac-core/tests/fixtures");
    let out = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| root.join("web/models/ruac-micro.safetensors"));
    let mut ck = Checkpoint::load(fixtures.join("sam2.1_micro.pt"))?;
    ck.tensors.extend(Checkpoint::load(fixtures.join("ruac_micro_head.safetensors"))?.tensors);
    let cfg = ck.infer_config()?;
    anyhow::ensure!(cfg.bayes_head.is_some(), "the assembled checkpoint lacks the Bayesian head");
    ck.tensors.retain(|k, _| !Checkpoint::is_ignored(k, &cfg));
    // Check it builds before writing it.
    ck.build_model(Some(cfg.clone()), &candle_core::Device::Cpu)?;
    candle_core::safetensors::save(&ck.tensors, &out)?;
    println!("wrote {} ({} tensors, config {}, image size {})", out.display(), ck.tensors.len(), cfg.name, cfg.image_size);
    Ok(())
}
