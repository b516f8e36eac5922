//! The model a run trains: SAM 2.1 (the paper's base) or a SAM 1 family model (issue #6:
//! SAM ViT, MobileSAM, LiteMedSAM), named by `model.config`.
use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, bail, Context, Result};
use candle_core::{Device, Tensor};
use ruac_core::checkpoint::Checkpoint;
use ruac_core::image_io::Preprocessing;
use ruac_core::method::base::AttackGeometry;
use ruac_core::method::params::ParamStore;
use ruac_core::model::config::Sam2Config;
use ruac_core::model::init::{init_params, init_tensor};
use ruac_core::model::sam1::{parameter_shapes, Sam1Config, Sam1Model, SAM1_CONFIG_METADATA};
use ruac_core::model::Sam2Model;
use ruac_core::predictor::BaseModel;
use ruac_core::rng::Pcg32;

use super::config::TrainConfig;

#[derive(Debug, Clone)]
pub enum BaseConfig {
    Sam2(Sam2Config),
    Sam1(Sam1Config),
}

impl BaseConfig {
    /// `model.config`: a SAM 2.1 size (micro, tiny, small, base_plus, large), a SAM 1 model
    /// (vit_b, vit_l, vit_h, mobile_sam, lite_medsam), or `sam1`: the SAM 1 configuration the
    /// `model.init` checkpoint names (`Checkpoint::infer_sam1_config`: its metadata, else its
    /// shapes). `model.image_size` resizes SAM 2.1 only.
    pub fn from_train(cfg: &TrainConfig) -> Result<Self> {
        let m = &cfg.model;
        if m.config == "sam1" {
            let path = m.init.as_ref().ok_or_else(|| anyhow!("model.config = \"sam1\" takes its configuration from model.init, which is not set"))?;
            let ck = Checkpoint::load(path).with_context(|| format!("loading init weights {}", path.display()))?;
            let c = ck.infer_sam1_config().with_context(|| format!("init weights {}", path.display()))?;
            return Ok(BaseConfig::Sam1(c.with_bayes_head(m.bayes_head)));
        }
        if let Some(mut c) = Sam2Config::by_name(&m.config) {
            if let Some(s) = m.image_size {
                c.image_size = s;
            }
            c.bayes_head = m.bayes_head.then(Default::default);
            c.validate()?;
            return Ok(BaseConfig::Sam2(c));
        }
        if let Some(c) = Sam1Config::by_name(&m.config) {
            if let Some(s) = m.image_size.filter(|&s| s != c.image_size()) {
                bail!("model.image_size = {s}: the SAM 1 model {} only runs at {}", m.config, c.image_size());
            }
            return Ok(BaseConfig::Sam1(c.with_bayes_head(m.bayes_head)));
        }
        Err(anyhow!(
            "unknown model config {:?} (SAM 2.1: micro, tiny, small, base_plus, large; SAM 1: vit_b, vit_l, vit_h, \
             mobile_sam, lite_medsam, or sam1 to take it from model.init)",
            m.config
        ))
    }

    pub fn name(&self) -> &str {
        match self {
            BaseConfig::Sam2(c) => &c.name,
            BaseConfig::Sam1(c) => &c.name,
        }
    }

    pub fn image_size(&self) -> usize {
        match self {
            BaseConfig::Sam2(c) => c.image_size,
            BaseConfig::Sam1(c) => c.image_size(),
        }
    }

    pub fn geometry(&self) -> AttackGeometry {
        match self {
            BaseConfig::Sam2(c) => AttackGeometry::sam2(c),
            BaseConfig::Sam1(c) => AttackGeometry::sam1(c),
        }
    }

    /// Each family's own input pipeline (`Preprocessing`), so that training sees what
    /// inference will.
    pub fn preprocessing(&self) -> Preprocessing {
        match self {
            BaseConfig::Sam2(_) => Preprocessing::Sam2,
            BaseConfig::Sam1(c) => c.preprocessing(),
        }
    }

    /// Fresh values for every parameter, seeded (PyTorch's default rules, `model::init`).
    pub fn fresh_params(&self, seed: u64) -> Result<BTreeMap<String, Tensor>> {
        Ok(match self {
            BaseConfig::Sam2(c) => init_params(c, seed)?,
            BaseConfig::Sam1(c) => {
                let mut rng = Pcg32::new(seed);
                let mut out = BTreeMap::new();
                for (name, dims) in parameter_shapes(c)? {
                    let t = init_tensor(&name, &dims, &mut rng)?;
                    out.insert(name, t);
                }
                out
            }
        })
    }

    /// The model over a run's parameters.
    pub fn build(&self, store: &ParamStore) -> Result<BaseModel> {
        let vb = store.vb("");
        Ok(match self {
            BaseConfig::Sam2(c) => BaseModel::Sam2(Sam2Model::new(c, vb)?),
            BaseConfig::Sam1(c) => BaseModel::Sam1(Sam1Model::new(c, vb)?),
        })
    }

    /// What an exported file records so that ruac-core and the web demo rebuild this model.
    pub fn export_metadata(&self) -> Result<HashMap<String, String>> {
        let mut md = HashMap::new();
        match self {
            BaseConfig::Sam2(c) => {
                md.insert("ruac_config".to_string(), c.name.clone());
                md.insert("ruac_image_size".to_string(), c.image_size.to_string());
            }
            BaseConfig::Sam1(c) => {
                md.insert(SAM1_CONFIG_METADATA.to_string(), serde_json::to_string(c)?);
            }
        }
        Ok(md)
    }

    /// The same model with SAM's hypernetwork head, built from `ck` (for `head_init`).
    pub fn build_plain(&self, ck: &Checkpoint) -> Result<BaseModel> {
        Ok(match self {
            BaseConfig::Sam2(c) => {
                let mut c = c.clone();
                c.bayes_head = None;
                BaseModel::Sam2(ck.build_model(Some(c), &Device::Cpu)?)
            }
            BaseConfig::Sam1(c) => BaseModel::Sam1(ck.build_sam1(Some(c.clone().with_bayes_head(false)), &Device::Cpu)?),
        })
    }

    /// Builds the model from an exported file, as its users will.
    pub fn check_loads(&self, ck: &Checkpoint) -> Result<()> {
        match self {
            BaseConfig::Sam2(c) => drop(ck.build_model(Some(c.clone()), &Device::Cpu)?),
            BaseConfig::Sam1(c) => drop(ck.build_sam1(Some(c.clone()), &Device::Cpu)?),
        }
        Ok(())
    }
}
