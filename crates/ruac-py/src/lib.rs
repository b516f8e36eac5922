//! `ruac-py`: the Python bindings of ruac, the `ruac` module (built into a wheel by maturin).
//!
//! * `ruac.Predictor`: [`ruac_core::predictor::Predictor`] behind `SAM2ImagePredictor`'s
//!   argument names, shapes and defaults (`set_image`, `predict`), returning numpy arrays:
//!   masks, IoU predictions, low-resolution logits and RUAC's per-pixel uncertainty.
//! * `ruac.metrics`: [`ruac_core::metrics`] (the code `trainer eval` scores with) on numpy
//!   arrays.
//! * `ruac.load_state_dict`: the tensors of any checkpoint the trainer loads, as numpy.
//!
//! Bindings only: every number comes from ruac-core; this crate converts arguments, checks
//! their shapes, releases the GIL around the work, and maps errors (`src/errors.rs` has the
//! exception each error becomes).
//!
//! The bindings are behind the `python` feature, which maturin enables
//! (`pyproject.toml`); without it the crate is empty, so that `cargo build --workspace` and
//! `cargo test --workspace` need no Python interpreter or libpython.
#[cfg(feature = "python")]
mod convert;
#[cfg(feature = "python")]
pub mod errors;
#[cfg(feature = "python")]
mod metrics;
#[cfg(feature = "python")]
mod predictor;

#[cfg(feature = "python")]
use pyo3::prelude::*;

/// The compiled part of the `ruac` package; import `ruac` instead.
#[cfg(feature = "python")]
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<predictor::PyPredictor>()?;
    m.add_class::<predictor::PyPrediction>()?;
    m.add_function(wrap_pyfunction!(predictor::load_state_dict, m)?)?;
    metrics::register(m)?;
    Ok(())
}
