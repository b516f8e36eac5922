//! `trainer`: RUAC's native command-line tool.
use anyhow::Result;
use clap::{Parser, Subcommand};

mod device;
mod eval;
mod gen;
mod segment;
mod train;

#[derive(Parser)]
#[command(
    name = "trainer",
    version,
    about = "RUAC (ICML 2026) in Rust: segment with per-pixel uncertainty, train, evaluate, export"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Segment one image from point and box prompts; write the mask, the uncertainty map
    /// (PNG with legend and raw .npy) and the scores.
    Segment(segment::SegmentArgs),
    /// Zero-shot evaluation over the domains of a manifest: J&F, PAvPU, AUROC, AUPR,
    /// AURC, ECE, ... per prompt protocol, with Markdown/CSV/JSON tables and SVG plots.
    Eval(eval::EvalArgs),
    /// Paired comparison of two evaluations across domains (Wilcoxon, bootstrap CIs).
    Compare(eval::CompareArgs),
    /// Train RUAC (or plain SAM 2.1) from a TOML config: clean and adversarial branches,
    /// atomic checkpoints, exact `--resume`, JSONL log.
    Train(train::TrainArgs),
    /// Write inference weights (safetensors, f32 or f16) from a training checkpoint.
    Export(train::ExportArgs),
    /// Write a procedural domain (training or a held-out shift) as a mask_folder dataset.
    GenDomain(gen::GenArgs),
    /// Write a checkpoint with seeded random weights in an official SAM 2.1 layout (tiny,
    /// small, base_plus, large; `--ruac` adds the head), for speed and memory checks.
    GenWeights(gen::WeightsArgs),
    /// List the devices `--device` can name: cpu, cuda:N (a `--features cuda` build) and the
    /// wgpu adapters (wgpu:N).
    Devices,
}

fn main() {
    // Large activations are reused rather than re-mapped (ruac_core::malloc).
    ruac_core::malloc::reuse_large_buffers();
    let cli = Cli::parse();
    let res: Result<()> = match cli.command {
        Command::Segment(a) => segment::run(a),
        Command::Eval(a) => eval::run_eval(a),
        Command::Compare(a) => eval::run_compare(a),
        Command::Train(a) => train::run(a),
        Command::Export(a) => train::export(a),
        Command::GenDomain(a) => gen::run(a),
        Command::GenWeights(a) => gen::weights(a),
        Command::Devices => device::list(),
    };
    if let Err(e) = res {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
