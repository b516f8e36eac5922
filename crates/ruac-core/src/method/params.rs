//! The trainable state of a model: every named tensor, either a variable (trained) or a
//! plain tensor (frozen, so the autograd graph never records it).
use std::collections::BTreeMap;
use std::sync::Arc;

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

use crate::{Error, Result};

#[derive(Debug, Clone)]
pub enum Param {
    Trained(Var),
    Frozen(Tensor),
}

impl Param {
    pub fn tensor(&self) -> &Tensor {
        match self {
            Param::Trained(v) => v.as_tensor(),
            Param::Frozen(t) => t,
        }
    }
}

/// Named parameters, all on one device; cloning shares the variables.
#[derive(Debug, Clone)]
pub struct ParamStore {
    pub params: BTreeMap<String, Param>,
    device: Device,
}

impl Default for ParamStore {
    fn default() -> Self {
        Self { params: BTreeMap::new(), device: Device::Cpu }
    }
}

impl ParamStore {
    /// Each tensor becomes a variable when `trained(name)` says so, else stays frozen; on the CPU.
    pub fn new(tensors: BTreeMap<String, Tensor>, trained: impl Fn(&str) -> bool) -> Result<Self> {
        Self::new_on(tensors, trained, &Device::Cpu)
    }

    /// [`ParamStore::new`] on `device` (a CUDA device for `trainer train --device cuda:N`):
    /// the model built from [`ParamStore::vb`] then computes there.
    pub fn new_on(tensors: BTreeMap<String, Tensor>, trained: impl Fn(&str) -> bool, device: &Device) -> Result<Self> {
        let mut params = BTreeMap::new();
        for (name, t) in tensors {
            let t = t.to_dtype(DType::F32)?.to_device(device)?;
            let p = if trained(&name) { Param::Trained(Var::from_tensor(&t)?) } else { Param::Frozen(t) };
            params.insert(name, p);
        }
        Ok(Self { params, device: device.clone() })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The trained variables, by name.
    pub fn trained(&self) -> Vec<(&str, &Var)> {
        self.params
            .iter()
            .filter_map(|(n, p)| match p {
                Param::Trained(v) => Some((n.as_str(), v)),
                Param::Frozen(_) => None,
            })
            .collect()
    }

    /// A builder serving these tensors under `prefix` (`""` for the whole store); asking for
    /// a missing name or a wrong shape is an error naming it.
    pub fn vb(&self, prefix: &str) -> VarBuilder<'static> {
        let backend = StoreBackend(Arc::new(
            self.params
                .iter()
                .map(|(k, v)| (k.clone(), v.tensor().clone()))
                .collect(),
        ));
        let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, self.device.clone());
        if prefix.is_empty() {
            vb
        } else {
            vb.pp(prefix)
        }
    }

    /// Current values of every tensor (for checkpoints and export).
    pub fn values(&self) -> BTreeMap<String, Tensor> {
        self.params
            .iter()
            .map(|(k, v)| (k.clone(), v.tensor().detach()))
            .collect()
    }

    /// Overwrites values from `src` (same names and shapes), e.g. when resuming.
    pub fn assign(&self, src: &BTreeMap<String, Tensor>) -> Result<()> {
        for (name, p) in &self.params {
            let t = src
                .get(name)
                .ok_or_else(|| Error::Invalid(format!("checkpoint lacks parameter {name}")))?;
            if t.dims() != p.tensor().dims() {
                return Err(Error::Invalid(format!(
                    "parameter {name}: checkpoint shape {:?}, model {:?}",
                    t.dims(),
                    p.tensor().dims()
                )));
            }
            if let Param::Trained(v) = p {
                v.set(&t.to_dtype(DType::F32)?.to_device(&self.device)?)?;
            }
        }
        Ok(())
    }
}

struct StoreBackend(Arc<BTreeMap<String, Tensor>>);

impl SimpleBackend for StoreBackend {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _h: candle_nn::Init,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let t = self
            .0
            .get(name)
            .ok_or_else(|| candle_core::Error::Msg(format!("parameter {name} is missing")))?;
        if t.dims() != s.dims() {
            candle_core::bail!(
                "parameter {name}: have shape {:?}, model wants {:?}",
                t.dims(),
                s.dims()
            );
        }
        Ok(t.clone())
    }
    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| candle_core::Error::Msg(format!("parameter {name} is missing")))
    }
    fn contains_tensor(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}
