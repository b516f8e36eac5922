//! `trainer`: RUAC's native command-line tool.
use anyhow::Result;
use clap::{Parser, Subcommand};

mod segment;

#[derive(Parser)]
#[command(name = "trainer", version, about = "RUAC (ICML 2026) in Rust: segment with per-pixel uncertainty")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Segment one image from point and box prompts; write the mask, the uncertainty map
    /// (PNG with legend and raw .npy) and the scores.
    Segment(segment::SegmentArgs),
}

fn main() {
    let cli = Cli::parse();
    let res: Result<()> = match cli.command {
        Command::Segment(a) => segment::run(a),
    };
    if let Err(e) = res {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
