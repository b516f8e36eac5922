//! How a Rust error becomes a Python exception. The message is always the Rust message.
//!
//! | ruac-core error | Python exception |
//! |---|---|
//! | `Io` (opening or reading a file) | `FileNotFoundError`, `PermissionError`, `IsADirectoryError` by the OS error, else `OSError` |
//! | `CheckpointFormat`, `CheckpointMismatch`, `CheckpointDtype`, `NonFiniteWeights`, `UnknownConfig` (the file was read, its content is not a usable checkpoint) | `ValueError` |
//! | `Image`, `ImageSize`, `Prompt`, `Invalid` (bad input) | `ValueError` |
//! | `NoImage` (`predict` before `set_image`, as `SAM2ImagePredictor`) | `RuntimeError` |
//! | `Diverged` (a training step's loss or gradient is not finite) | `RuntimeError` |
//! | `Candle` (a tensor operation failed: a bug, not an input problem) | `RuntimeError` |
//!
//! Arguments of the wrong type or dtype (a float image, a string where an array belongs) are
//! `TypeError`s; arrays of the wrong shape or with values out of range are `ValueError`s.
use pyo3::exceptions::{PyFileNotFoundError, PyIsADirectoryError, PyOSError, PyPermissionError, PyRuntimeError, PyValueError};
use pyo3::PyErr;
use ruac_core::Error;

/// The Python exception for a ruac-core error (see the module table).
pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match &e {
        Error::Io { source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
            std::io::ErrorKind::IsADirectory => PyIsADirectoryError::new_err(msg),
            _ => PyOSError::new_err(msg),
        },
        Error::NoImage | Error::Diverged(_) | Error::Device(_) | Error::Candle(_) => PyRuntimeError::new_err(msg),
        Error::CheckpointFormat { .. }
        | Error::CheckpointMismatch { .. }
        | Error::CheckpointDtype { .. }
        | Error::NonFiniteWeights { .. }
        | Error::UnknownConfig(_)
        | Error::Image(_)
        | Error::ImageSize { .. }
        | Error::Prompt(_)
        | Error::Invalid(_) => PyValueError::new_err(msg),
    }
}

/// A tensor error from the conversions of this crate (never caused by the input).
pub fn candle(e: candle_core::Error) -> PyErr {
    to_py(Error::Candle(e))
}
