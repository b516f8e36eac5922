//! The one error type of `ruac-core`. Every failure a user can cause (a bad image, a bad
//! checkpoint, a prompt outside the image) maps to a variant that names the problem.
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),

    #[error("i/o error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot read checkpoint {path}: {reason}")]
    CheckpointFormat { path: String, reason: String },

    #[error("checkpoint does not match the {config} configuration: {}", describe_mismatch(.missing, .unexpected, .wrong_shape))]
    CheckpointMismatch {
        config: String,
        missing: Vec<String>,
        unexpected: Vec<String>,
        wrong_shape: Vec<String>,
    },

    #[error("checkpoint tensor {name} has unsupported dtype {dtype} (expected a floating-point tensor)")]
    CheckpointDtype { name: String, dtype: String },

    #[error("checkpoint tensor {name} contains {count} non-finite values (NaN or infinity)")]
    NonFiniteWeights { name: String, count: usize },

    #[error("cannot infer the model configuration: {0}")]
    UnknownConfig(String),

    #[error("cannot decode image: {0}")]
    Image(String),

    #[error("image of {width}x{height} is not supported: {reason}")]
    ImageSize { width: usize, height: usize, reason: String },

    #[error("invalid prompt: {0}")]
    Prompt(String),

    #[error("no image set: call set_image before predict")]
    NoImage,

    #[error("invalid argument: {0}")]
    Invalid(String),

    /// A failure of another compute backend driving the same model (ruac-gpu's wgpu device,
    /// through the trainer's `--device wgpu`).
    #[error("device: {0}")]
    Device(String),

    /// A training step whose loss or gradient is not finite.
    #[error("training diverged: {0}")]
    Diverged(String),
}

fn describe_mismatch(missing: &[String], unexpected: &[String], wrong_shape: &[String]) -> String {
    fn list(label: &str, names: &[String]) -> Option<String> {
        if names.is_empty() {
            return None;
        }
        const SHOW: usize = 12;
        let shown: Vec<&str> = names.iter().take(SHOW).map(String::as_str).collect();
        let more = if names.len() > SHOW { format!(" and {} more", names.len() - SHOW) } else { String::new() };
        Some(format!("{} {label} ({}{more})", names.len(), shown.join(", ")))
    }
    [list("missing", missing), list("unexpected", unexpected), list("with the wrong shape", wrong_shape)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ")
}

pub type Result<T> = std::result::Result<T, Error>;
