//! [`Weights`]: checkpoint tensors read by name under a prefix and uploaded, in the manner
//! of candle's `VarBuilder::pp` (ruac-core builds every layer from a `VarBuilder`; ruac-gpu
//! builds the same layers from this, so each checkpoint name is written once, in the layer
//! that owns it). The layer constructors (`Weights::lin`, `Weights::norm`) are in
//! `layers.rs`.
use std::cell::{Cell, RefCell};
use std::fmt::Display;

use candle_core::DType;
use ruac_core::checkpoint::Checkpoint;

use crate::error::{GpuError, Result};
use crate::gpu::Gpu;

/// What every [`Weights`] of one upload shares.
pub(crate) struct Upload<'a> {
    pub ck: &'a Checkpoint,
    pub gpu: &'a Gpu,
    /// Names of the tensors stored as f16.
    f16_names: RefCell<Vec<String>>,
    uploaded_before: Cell<u64>,
}

impl<'a> Upload<'a> {
    pub fn new(ck: &'a Checkpoint, gpu: &'a Gpu) -> Self {
        Self { ck, gpu, f16_names: Default::default(), uploaded_before: Cell::new(gpu.uploaded_bytes()) }
    }

    /// The root scope (no prefix).
    pub fn root(&self) -> Weights<'_> {
        Weights { up: self, prefix: String::new() }
    }

    /// Bytes uploaded since [`Upload::new`] and the names of the tensors stored as f16.
    pub fn finish(self) -> (u64, Vec<String>) {
        (self.gpu.uploaded_bytes() - self.uploaded_before.get(), self.f16_names.take())
    }
}

/// A scope of checkpoint names (`image_encoder.trunk.blocks.3`, ...).
#[derive(Clone)]
pub(crate) struct Weights<'a> {
    up: &'a Upload<'a>,
    prefix: String,
}

impl<'a> Weights<'a> {
    /// The scope `prefix.name`.
    pub fn pp(&self, name: impl Display) -> Self {
        let prefix = if self.prefix.is_empty() { name.to_string() } else { format!("{}.{name}", self.prefix) };
        Self { up: self.up, prefix }
    }

    pub fn gpu(&self) -> &'a Gpu {
        self.up.gpu
    }

    /// This scope's own name.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full checkpoint name of `name` in this scope.
    pub fn path(&self, name: &str) -> String {
        self.pp(name).prefix
    }

    pub fn contains(&self, name: &str) -> bool {
        self.up.ck.tensors.contains_key(&self.path(name))
    }

    /// Tensor `name` of this scope as f32 values and its shape.
    pub fn host(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        let full = self.path(name);
        let t = self.up.ck.tensors.get(&full).ok_or_else(|| GpuError::Internal(format!("checkpoint tensor {full} missing")))?;
        Ok((t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?, t.dims().to_vec()))
    }

    /// Tensor `name` of this scope, uploaded as f32.
    pub fn buf(&self, name: &str) -> Result<wgpu::Buffer> {
        Ok(self.up.gpu.upload(&self.path(name), &self.host(name)?.0))
    }

    /// Notes that this scope's weight is stored as f16.
    pub fn record_f16(&self) {
        self.up.f16_names.borrow_mut().push(self.path("weight"));
    }
}
