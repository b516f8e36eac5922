//! Training checkpoints: every parameter, the optimiser's moments and step, and the run's
//! position, in one safetensors file written atomically (temporary file, fsync, rename), so
//! an interrupted write never replaces a good checkpoint.
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use candle_core::{DType, Device, Tensor};

/// What a checkpoint stores besides tensors.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Meta {
    /// Optimiser steps completed; the next step to run.
    pub step: usize,
    pub seed: u64,
    /// Samples of the data stream consumed so far (the data position).
    pub samples_seen: u64,
    /// The run's configuration, as TOML, to refuse resuming with a different one.
    pub config: String,
}

pub struct Loaded {
    pub meta: Meta,
    pub params: BTreeMap<String, Tensor>,
    pub m: BTreeMap<String, Tensor>,
    pub v: BTreeMap<String, Tensor>,
}

/// Writes `tensors` plus `metadata` to `path` atomically.
pub fn write_safetensors_atomic(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    metadata: HashMap<String, String>,
) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("safetensors.tmp");
    let data: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let bytes =
        safetensors::tensor::serialize(data.iter().map(|(k, v)| (k.as_str(), v)), Some(metadata))
            .map_err(|e| anyhow!("serialising {}: {e}", path.display()))?;
    {
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

pub fn save(
    path: &Path,
    meta: &Meta,
    params: &BTreeMap<String, Tensor>,
    moments: &[(String, Tensor, Tensor)],
) -> Result<()> {
    let mut t = BTreeMap::new();
    for (k, v) in params {
        t.insert(format!("param.{k}"), v.clone());
    }
    for (k, m, v) in moments {
        t.insert(format!("adam_m.{k}"), m.clone());
        t.insert(format!("adam_v.{k}"), v.clone());
    }
    let mut md = HashMap::new();
    md.insert("ruac_train_meta".to_string(), serde_json::to_string(meta)?);
    write_safetensors_atomic(path, &t, md)
}

pub fn load(path: &Path) -> Result<Loaded> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| {
        anyhow!(
            "checkpoint {} is not a valid safetensors file: {e}",
            path.display()
        )
    })?;
    let meta_json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get("ruac_train_meta"))
        .ok_or_else(|| {
            anyhow!(
                "{} is not a training checkpoint (no ruac_train_meta)",
                path.display()
            )
        })?;
    let meta: Meta = serde_json::from_str(meta_json)?;
    let all = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| anyhow!("checkpoint {}: {e}", path.display()))?;
    let (mut params, mut m, mut v) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for (k, t) in all {
        let t = t.to_dtype(DType::F32)?;
        if let Some(n) = k.strip_prefix("param.") {
            params.insert(n.to_string(), t);
        } else if let Some(n) = k.strip_prefix("adam_m.") {
            m.insert(n.to_string(), t);
        } else if let Some(n) = k.strip_prefix("adam_v.") {
            v.insert(n.to_string(), t);
        }
    }
    Ok(Loaded { meta, params, m, v })
}

/// Checkpoint files of a run, oldest first.
pub fn list(dir: &Path) -> Vec<(usize, PathBuf)> {
    let mut out: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let step = name
                .strip_prefix("step_")?
                .strip_suffix(".safetensors")?
                .parse()
                .ok()?;
            Some((step, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// Keeps the newest `keep` checkpoints.
pub fn prune(dir: &Path, keep: usize) -> Result<()> {
    let all = list(dir);
    if all.len() > keep {
        for (_, p) in &all[..all.len() - keep] {
            std::fs::remove_file(p)
                .with_context(|| format!("removing old checkpoint {}", p.display()))?;
        }
    }
    Ok(())
}
