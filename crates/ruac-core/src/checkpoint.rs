//! Loading checkpoints unmodified: the official SAM 2.1 `.pt` files (a PyTorch zip archive,
//! state dict under `"model"`, read by candle's pickle reader, which interprets the pickle
//! opcodes without executing code), safetensors conversions of them, and RUAC's released
//! `model.safetensors` (the same names plus `sam_mask_decoder.pixel_bndl.*`).
//!
//! Tensors of the video path and of RUAC's training-only attackers are recognised and
//! skipped; anything else missing, unexpected or of the wrong shape is one error naming
//! every offending tensor.
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

use crate::model::{BayesHeadConfig, Sam1Config, Sam1Model, Sam2Config, Sam2Model};
use crate::{Error, Result};

/// Prefixes that belong to SAM 2's video path (memory attention and encoder, object
/// pointers): present in every official checkpoint, unused for single images.
pub const VIDEO_ONLY_PREFIXES: &[&str] = &[
    "memory_attention.",
    "memory_encoder.",
    "maskmem_tpos_enc",
    "no_mem_pos_enc",
    "no_obj_ptr",
    "no_obj_embed_spatial",
    "obj_ptr_proj.",
    "obj_ptr_tpos_proj.",
    "mask_downsample.",
];

/// Training-only RUAC modules (`ruac/hub.py` drops the same prefixes).
pub const ATTACKER_PREFIXES: &[&str] = &["style_gcn.", "style_attacker.", "deform_attacker."];

/// In a RUAC checkpoint SAM's hypernetwork MLPs are kept for compatibility but unused.
pub const HYPERNETWORK_PREFIX: &str = "sam_mask_decoder.output_hypernetworks_mlps.";

/// Tensors the reference registers as buffers: stored in checkpoints, never trained (the
/// prompt encoder's random Fourier matrix, `PositionEmbeddingRandom`).
pub fn is_buffer(name: &str) -> bool {
    name.ends_with("positional_encoding_gaussian_matrix")
}

/// Marker tensor of a RUAC (Bayesian head) checkpoint.
pub const BAYES_HEAD_PREFIX: &str = "sam_mask_decoder.pixel_bndl.";

/// The same head in the SAM 1 family, whose decoder is `mask_decoder.`.
pub const SAM1_BAYES_HEAD_PREFIX: &str = "mask_decoder.pixel_bndl.";

/// Whether `name` is a tensor of RUAC's Bayesian pixel head, on either base.
pub fn is_bayes_head(name: &str) -> bool {
    name.starts_with(BAYES_HEAD_PREFIX) || name.starts_with(SAM1_BAYES_HEAD_PREFIX)
}

/// All tensors of a checkpoint, by name, as stored (any float dtype).
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub tensors: HashMap<String, Tensor>,
    pub source: String,
    /// The safetensors header's `__metadata__` (empty for `.pt`). `trainer export` records
    /// `ruac_config` and `ruac_image_size` there, since no tensor shape depends on the input
    /// resolution.
    pub metadata: HashMap<String, String>,
}

fn fmt_err(path: &str, reason: impl std::fmt::Display) -> Error {
    Error::CheckpointFormat {
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

impl Checkpoint {
    /// Reads a `.pt`/`.pth` (PyTorch zip) or `.safetensors` file, by content, not extension.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let mut head = [0u8; 8];
        {
            use std::io::Read;
            let mut f = std::fs::File::open(path).map_err(|e| Error::Io {
                path: name.clone(),
                source: e,
            })?;
            let n = f.read(&mut head).map_err(|e| Error::Io {
                path: name.clone(),
                source: e,
            })?;
            if n < 8 {
                return Err(fmt_err(&name, format!("file is only {n} bytes long")));
            }
        }
        if &head[..4] == b"PK\x03\x04" {
            Self::load_pth(path)
        } else {
            let bytes = std::fs::read(path).map_err(|e| Error::Io {
                path: name.clone(),
                source: e,
            })?;
            Self::from_safetensors_bytes(&bytes, &name)
        }
    }

    fn load_pth(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let f = std::fs::File::open(path).map_err(|e| Error::Io { path: name.clone(), source: e })?;
        let tensors = crate::checkpoint_pth::read_pth(std::io::BufReader::new(f), &name)?;
        Ok(Self { tensors, source: name, metadata: HashMap::new() })
    }

    /// Parses a PyTorch `.pt`/`.pth` zip archive from bytes (the web demo's path): the
    /// state dict under `"model"` (official SAM 2.1) or a bare one (SAM 1 `.pth`), read as
    /// files are (`checkpoint_pth`); no code is executed.
    pub fn from_pth_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        let tensors = crate::checkpoint_pth::read_pth(std::io::Cursor::new(bytes), name)?;
        Ok(Self { tensors, source: name.to_string(), metadata: HashMap::new() })
    }

    /// Parses safetensors bytes (the web demo's path: no file system there).
    pub fn from_safetensors_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        check_safetensors_header(bytes).map_err(|reason| fmt_err(name, reason))?;
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| {
            fmt_err(
                name,
                format!("not a valid safetensors or PyTorch zip file ({e})"),
            )
        })?;
        if st.len() > crate::limits::MAX_TENSORS {
            return Err(fmt_err(name, format!("{} tensors, over the limit of {}", st.len(), crate::limits::MAX_TENSORS)));
        }
        let mut tensors = HashMap::new();
        for (tname, view) in st.tensors() {
            let dtype = match view.dtype() {
                safetensors::Dtype::F32 => DType::F32,
                safetensors::Dtype::F16 => DType::F16,
                safetensors::Dtype::BF16 => DType::BF16,
                safetensors::Dtype::F64 => DType::F64,
                other => {
                    return Err(Error::CheckpointDtype {
                        name: tname,
                        dtype: format!("{other:?}"),
                    })
                }
            };
            let t = Tensor::from_raw_buffer(view.data(), dtype, view.shape(), &Device::Cpu)?;
            tensors.insert(tname, t);
        }
        let metadata = st_metadata(bytes);
        Ok(Self {
            tensors,
            source: name.to_string(),
            metadata,
        })
    }

    /// The input resolution recorded by `trainer export`, if any.
    pub fn metadata_image_size(&self) -> Option<usize> {
        self.metadata.get("ruac_image_size")?.parse().ok()
    }

    /// True for RUAC checkpoints (they carry the Bayesian pixel head).
    pub fn has_bayes_head(&self) -> bool {
        self.tensors
            .keys()
            .any(|k| k.starts_with(BAYES_HEAD_PREFIX))
    }

    fn dims(&self, name: &str) -> Option<Vec<usize>> {
        self.tensors.get(name).map(|t| t.dims().to_vec())
    }

    /// Infers the configuration from tensor shapes: the trunk (width and blocks per stage,
    /// told apart by which blocks project to a new width) is matched against the named
    /// configurations, whose head counts and windows cannot be read from shapes; the FPN
    /// width, decoder MLP width and IoU-head width are read directly.
    pub fn infer_config(&self) -> Result<Sam2Config> {
        let pe = self
            .dims("image_encoder.trunk.patch_embed.proj.weight")
            .ok_or_else(|| {
                Error::UnknownConfig(
                    "no image_encoder.trunk.patch_embed.proj.weight: not a SAM 2.1 checkpoint"
                        .into(),
                )
            })?;
        let embed_dim = pe[0];
        let mut n_blocks = 0;
        while self.tensors.contains_key(&format!(
            "image_encoder.trunk.blocks.{n_blocks}.norm1.weight"
        )) {
            n_blocks += 1;
        }
        let mut stages = vec![];
        let mut count = 0;
        for i in 0..n_blocks {
            if i > 0
                && self
                    .tensors
                    .contains_key(&format!("image_encoder.trunk.blocks.{i}.proj.weight"))
            {
                stages.push(count);
                count = 0;
            }
            count += 1;
        }
        stages.push(count);
        let mut cfg = Sam2Config::all_named()
            .into_iter()
            .find(|c| c.hiera.embed_dim == embed_dim && c.hiera.stages == stages)
            .ok_or_else(|| {
                Error::UnknownConfig(format!(
                    "Hiera trunk with embed_dim {embed_dim} and stages {stages:?} matches none of tiny, small, base_plus, large, micro; give the configuration explicitly"
                ))
            })?;
        if let Some(d) = self.dims("image_encoder.neck.convs.0.conv.weight") {
            cfg.d_model = d[0];
        }
        if let Some(d) = self.dims("sam_mask_decoder.transformer.layers.0.mlp.layers.0.weight") {
            cfg.decoder.transformer_mlp_dim = d[0];
        }
        if let Some(d) = self.dims("sam_mask_decoder.iou_prediction_head.layers.0.weight") {
            cfg.decoder.iou_head_hidden_dim = d[0];
        }
        if self.has_bayes_head() {
            cfg.bayes_head = Some(BayesHeadConfig::default());
        }
        if let Some(size) = self.metadata_image_size() {
            cfg.image_size = size;
        }
        Ok(cfg)
    }

    /// The configuration to build: the named one (with the Bayesian head when the checkpoint
    /// has it) or, without a name, the one inferred from the shapes; `image_size` overrides
    /// the input resolution.
    pub fn config_for(&self, name: Option<&str>, image_size: Option<usize>) -> Result<Sam2Config> {
        let mut cfg = match name {
            Some(n) => {
                let mut c = Sam2Config::by_name(n).ok_or_else(|| {
                    Error::UnknownConfig(format!(
                        "unknown configuration {n:?} (tiny, small, base_plus, large, micro)"
                    ))
                })?;
                c.bayes_head = self.has_bayes_head().then(BayesHeadConfig::default);
                if let Some(size) = self.metadata_image_size() {
                    c.image_size = size;
                }
                c
            }
            None => self.infer_config()?,
        };
        if let Some(s) = image_size {
            cfg.image_size = s;
        }
        Ok(cfg)
    }

    /// Whether a tensor is known and deliberately unused for this configuration.
    pub fn is_ignored(name: &str, cfg: &Sam2Config) -> bool {
        VIDEO_ONLY_PREFIXES
            .iter()
            .chain(ATTACKER_PREFIXES)
            .any(|p| name.starts_with(p))
            || (cfg.bayes_head.is_some() && name.starts_with(HYPERNETWORK_PREFIX))
    }

    /// Rejects integer tensors and NaN/infinite weights among the tensors the model uses.
    pub fn validate_values(&self, cfg: &Sam2Config) -> Result<()> {
        for (name, t) in &self.tensors {
            if Self::is_ignored(name, cfg) {
                continue;
            }
            if !t.dtype().is_float() {
                return Err(Error::CheckpointDtype {
                    name: name.clone(),
                    dtype: format!("{:?}", t.dtype()),
                });
            }
            let v = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            let bad = v.iter().filter(|x| !x.is_finite()).count();
            if bad > 0 {
                return Err(Error::NonFiniteWeights {
                    name: name.clone(),
                    count: bad,
                });
            }
        }
        Ok(())
    }

    /// Builds the model (inferring the configuration when `cfg` is `None`), checking that
    /// the checkpoint has exactly the tensors the configuration needs.
    pub fn build_model(&self, cfg: Option<Sam2Config>, device: &Device) -> Result<Sam2Model> {
        let cfg = match cfg {
            Some(c) => c,
            None => self.infer_config()?,
        };
        cfg.validate()?;
        self.validate_values(&cfg)?;
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        let backend = TrackingBackend {
            tensors: self.tensors.clone(),
            tracker: tracker.clone(),
        };
        let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone());
        let model = Sam2Model::new(&cfg, vb);
        let t = tracker
            .lock()
            .map_err(|_| Error::Invalid("checkpoint tracker poisoned".into()))?;
        let mut unexpected: Vec<String> = self
            .tensors
            .keys()
            .filter(|k| !t.used.contains(*k) && !Self::is_ignored(k, &cfg))
            .cloned()
            .collect();
        unexpected.sort();
        if !t.missing.is_empty() || !unexpected.is_empty() || !t.wrong_shape.is_empty() {
            return Err(Error::CheckpointMismatch {
                config: cfg.name.clone(),
                missing: t.missing.clone(),
                unexpected,
                wrong_shape: t.wrong_shape.clone(),
            });
        }
        Ok(model?)
    }
}

/// SAM 1 family (`model::sam1`): tensors a checkpoint carries that the model does not use:
/// batch-norm step counters (integers) and MobileSAM's ImageNet classifier head.
pub fn sam1_is_ignored(name: &str, cfg: &Sam1Config) -> bool {
    name.ends_with(".num_batches_tracked")
        || name.starts_with("image_encoder.norm_head.")
        || name.starts_with("image_encoder.head.")
        || (cfg.decoder.bayes_head && name.starts_with("mask_decoder.output_hypernetworks_mlps."))
}

impl Checkpoint {
    /// The SAM 1 configuration: the JSON of the safetensors metadata entry
    /// `ruac_sam1_config` when present, else from tensor shapes: a TinyViT patch embedding
    /// with 1x1 kernels is LiteMedSAM, with 3x3 kernels MobileSAM; a ViT is B, L or H by its
    /// width. `mask_decoder.pixel_bndl.*` turns on the Bayesian head.
    pub fn infer_sam1_config(&self) -> Result<Sam1Config> {
        let has_head = self.tensors.keys().any(|k| k.starts_with(SAM1_BAYES_HEAD_PREFIX));
        if let Some(json) = self.metadata.get(crate::model::sam1::SAM1_CONFIG_METADATA) {
            let cfg: Sam1Config = serde_json::from_str(json).map_err(|e| {
                Error::UnknownConfig(format!("metadata {}: {e}", crate::model::sam1::SAM1_CONFIG_METADATA))
            })?;
            return Ok(cfg.with_bayes_head(has_head));
        }
        let mut cfg = if let Some(d) = self.dims("image_encoder.patch_embed.seq.0.c.weight") {
            match d.get(2) {
                Some(1) => Sam1Config::lite_medsam(),
                Some(3) => Sam1Config::mobile_sam(),
                _ => {
                    return Err(Error::UnknownConfig(format!(
                        "TinyViT patch embedding with shape {d:?}: neither LiteMedSAM (1x1) nor MobileSAM (3x3)"
                    )))
                }
            }
        } else if let Some(d) = self.dims("image_encoder.patch_embed.proj.weight") {
            match d[0] {
                768 => Sam1Config::vit_b(),
                1024 => Sam1Config::vit_l(),
                1280 => Sam1Config::vit_h(),
                w => return Err(Error::UnknownConfig(format!("SAM ViT of width {w} is none of vit_b, vit_l, vit_h"))),
            }
        } else {
            return Err(Error::UnknownConfig(
                "neither image_encoder.patch_embed.seq.0.c.weight (TinyViT) nor image_encoder.patch_embed.proj.weight \
                 (ViT): not a SAM 1 checkpoint"
                    .into(),
            ));
        };
        cfg.decoder.bayes_head = self.tensors.keys().any(|k| k.starts_with(SAM1_BAYES_HEAD_PREFIX));
        Ok(cfg)
    }

    /// Builds a SAM 1 family model (configuration inferred when `None`), checking that the
    /// checkpoint has exactly the tensors it needs, with finite float values.
    pub fn build_sam1(&self, cfg: Option<Sam1Config>, device: &Device) -> Result<Sam1Model> {
        let cfg = match cfg {
            Some(c) => c,
            None => self.infer_sam1_config()?,
        };
        for (name, t) in &self.tensors {
            if sam1_is_ignored(name, &cfg) {
                continue;
            }
            if !t.dtype().is_float() {
                return Err(Error::CheckpointDtype { name: name.clone(), dtype: format!("{:?}", t.dtype()) });
            }
            let bad = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?.iter().filter(|x| !x.is_finite()).count();
            if bad > 0 {
                return Err(Error::NonFiniteWeights { name: name.clone(), count: bad });
            }
        }
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        let backend = TrackingBackend { tensors: self.tensors.clone(), tracker: tracker.clone() };
        let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone());
        let model = Sam1Model::new(&cfg, vb);
        let t = tracker.lock().map_err(|_| Error::Invalid("checkpoint tracker poisoned".into()))?;
        let mut unexpected: Vec<String> =
            self.tensors.keys().filter(|k| !t.used.contains(*k) && !sam1_is_ignored(k, &cfg)).cloned().collect();
        unexpected.sort();
        if !t.missing.is_empty() || !unexpected.is_empty() || !t.wrong_shape.is_empty() {
            return Err(Error::CheckpointMismatch {
                config: cfg.name.clone(),
                missing: t.missing.clone(),
                unexpected,
                wrong_shape: t.wrong_shape.clone(),
            });
        }
        Ok(model?)
    }
}

impl Checkpoint {
    /// True for SAM 1 family checkpoints (SAM ViT, MobileSAM, LiteMedSAM): a patch embedding
    /// directly under `image_encoder` (SAM 2.1 has it under `image_encoder.trunk`).
    pub fn is_sam1(&self) -> bool {
        self.tensors.contains_key("image_encoder.patch_embed.seq.0.c.weight")
            || self.tensors.contains_key("image_encoder.patch_embed.proj.weight")
    }

    /// The configuration of whichever family the checkpoint holds: `config` names it
    /// (inferred when `None`); `image_size` applies to SAM 2.1 only (SAM 1 encoders have
    /// fixed position tables). What every backend builds from (`build_base` here, ruac-gpu's
    /// `GpuPredictor::from_config`).
    pub fn model_config(&self, config: Option<&str>, image_size: Option<usize>) -> Result<crate::model::ModelConfig> {
        if !self.is_sam1() {
            return Ok(crate::model::ModelConfig::Sam2(self.config_for(config, image_size)?));
        }
        let cfg = match config {
            Some(name) => Sam1Config::by_name(name)
                .ok_or_else(|| {
                    Error::UnknownConfig(format!(
                        "{name:?} is no SAM 1 configuration (vit_b, vit_l, vit_h, mobile_sam, lite_medsam)"
                    ))
                })?
                .with_bayes_head(self.tensors.keys().any(|k| k.starts_with(SAM1_BAYES_HEAD_PREFIX))),
            None => self.infer_sam1_config()?,
        };
        if let Some(s) = image_size {
            if s != cfg.image_size() {
                return Err(Error::Invalid(format!(
                    "image size {s}: the SAM 1 model {} takes {} px only",
                    cfg.name,
                    cfg.image_size()
                )));
            }
        }
        Ok(crate::model::ModelConfig::Sam1(cfg))
    }

    /// Builds whichever family the checkpoint holds ([`Checkpoint::model_config`]), for
    /// either predictor.
    pub fn build_base(
        &self,
        config: Option<&str>,
        image_size: Option<usize>,
        device: &Device,
    ) -> Result<crate::model::BaseModel> {
        Ok(match self.model_config(config, image_size)? {
            crate::model::ModelConfig::Sam2(c) => self.build_model(Some(c), device)?.into(),
            crate::model::ModelConfig::Sam1(c) => self.build_sam1(Some(c), device)?.into(),
        })
    }
}

/// The `__metadata__` map of safetensors bytes (empty when absent or unreadable).
/// The 8-byte header length of a safetensors file against the limit and the file's size,
/// before the header is parsed (the safetensors crate's own cap is 100 MB).
fn check_safetensors_header(bytes: &[u8]) -> std::result::Result<(), String> {
    let Some(len) = bytes.get(..8) else {
        return Err(format!("not a valid safetensors or PyTorch zip file (only {} bytes)", bytes.len()));
    };
    let n = u64::from_le_bytes(len.try_into().unwrap_or_default());
    if n > crate::limits::MAX_HEADER_BYTES as u64 {
        return Err(format!(
            "not a valid safetensors or PyTorch zip file (header of {n} bytes, over the {}-byte limit)",
            crate::limits::MAX_HEADER_BYTES
        ));
    }
    if n > bytes.len() as u64 - 8 {
        return Err(format!(
            "not a valid safetensors or PyTorch zip file (header claims {n} bytes, the file holds {} after it; truncated?)",
            bytes.len() - 8
        ));
    }
    Ok(())
}

fn st_metadata(bytes: &[u8]) -> HashMap<String, String> {
    safetensors::SafeTensors::read_metadata(bytes)
        .ok()
        .and_then(|(_, m)| m.metadata().clone())
        .unwrap_or_default()
}

/// Loads a checkpoint file and builds the model in one call.
pub fn load_model(
    path: impl AsRef<Path>,
    cfg: Option<Sam2Config>,
    device: &Device,
) -> Result<Sam2Model> {
    Checkpoint::load(path)?.build_model(cfg, device)
}

#[derive(Default)]
struct Tracker {
    used: HashSet<String>,
    missing: Vec<String>,
    wrong_shape: Vec<String>,
}

/// A tensor source that records which names the model asked for, and answers missing or
/// mis-shaped ones with zeros, so that one load reports every problem at once.
struct TrackingBackend {
    tensors: HashMap<String, Tensor>,
    tracker: Arc<Mutex<Tracker>>,
}

impl SimpleBackend for TrackingBackend {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut t = self
            .tracker
            .lock()
            .map_err(|_| candle_core::Error::Msg("tracker poisoned".into()))?;
        match self.tensors.get(name) {
            None => {
                t.missing.push(name.to_string());
                Tensor::zeros(s, dtype, dev)
            }
            Some(x) if x.shape() != &s => {
                t.used.insert(name.to_string());
                t.wrong_shape.push(format!(
                    "{name}: expected {:?}, found {:?}",
                    s.dims(),
                    x.dims()
                ));
                Tensor::zeros(s, dtype, dev)
            }
            Some(x) => {
                t.used.insert(name.to_string());
                x.to_device(dev)?.to_dtype(dtype)
            }
        }
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let mut t = self
            .tracker
            .lock()
            .map_err(|_| candle_core::Error::Msg("tracker poisoned".into()))?;
        t.used.insert(name.to_string());
        match self.tensors.get(name) {
            Some(x) => x.to_device(dev)?.to_dtype(dtype),
            None => Err(candle_core::Error::CannotFindTensor {
                path: name.to_string(),
            }),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}
