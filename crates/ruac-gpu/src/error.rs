//! [`GpuError`]: everything that can go wrong on the GPU path, with ruac-core's own
//! checkpoint and prompt errors passed through.

/// Everything that can go wrong on the GPU path.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU adapter found ({0}); natively, install a driver (on Debian/Ubuntu `apt-get install mesa-vulkan-drivers` gives a software Vulkan adapter); in a browser, WebGPU must be enabled")]
    NoAdapter(String),
    #[error("requesting the GPU device failed: {0}")]
    Device(String),
    #[error("the GPU adapter's {limit} is {have}, the kernels need {need}")]
    LimitTooSmall { limit: &'static str, need: u64, have: u64 },
    #[error("WGSL kernel {kernel} failed to compile: {message}")]
    Shader { kernel: &'static str, message: String },
    #[error("GPU validation error: {0}")]
    Validation(String),
    #[error("mapping a GPU buffer for reading failed: {0}")]
    Mapping(String),
    #[error("not supported on the GPU path: {0}")]
    Unsupported(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Core(#[from] ruac_core::Error),
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, GpuError>;
