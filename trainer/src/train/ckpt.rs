//! Training checkpoints: every parameter, the optimiser's moments and step, and the run's
//! position, in one safetensors file written atomically (temporary file, fsync, rename,
//! fsync of the folder), so an interrupted write never replaces a good checkpoint. A CRC-32
//! over the metadata and every tensor (name, dtype, shape, bytes) is stored beside them;
//! [`load`] refuses a file whose contents do not match it, and [`load_latest`] then falls
//! back to the previous checkpoint, saying so.
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
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
    /// CRC-32 of this metadata (without this field) and every tensor; absent in checkpoints
    /// written before checksums existed. One metadata key keeps the file's bytes
    /// reproducible (safetensors writes its metadata map in hash order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32: Option<String>,
}

pub struct Loaded {
    pub meta: Meta,
    pub params: BTreeMap<String, Tensor>,
    pub m: BTreeMap<String, Tensor>,
    pub v: BTreeMap<String, Tensor>,
}

/// CRC-32 of the training metadata and of every tensor in name order: name, dtype, shape and
/// the bytes exactly as safetensors stores them.
fn checksum<'a>(meta: &str, tensors: impl IntoIterator<Item = (&'a str, String, Vec<usize>, std::borrow::Cow<'a, [u8]>)>) -> String {
    let mut h = crc32fast::Hasher::new();
    h.update(meta.as_bytes());
    for (name, dtype, shape, data) in tensors {
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update(dtype.as_bytes());
        h.update(&(shape.len() as u64).to_le_bytes());
        shape.iter().for_each(|d| h.update(&(*d as u64).to_le_bytes()));
        h.update(&(data.len() as u64).to_le_bytes());
        h.update(&data);
    }
    format!("{:08x}", h.finalize())
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename, fsync of
/// the folder. On failure (a full disk) the temporary file is removed and `path` keeps its
/// previous content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow!(
            "writing {} ({} bytes): {e}; nothing was replaced, earlier files are intact",
            path.display(),
            bytes.len()
        ));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    // The rename itself is durable only once the folder is.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes `tensors` plus `metadata` to `path` atomically (see [`write_atomic`]).
pub fn write_safetensors_atomic(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    metadata: HashMap<String, String>,
) -> Result<()> {
    let bytes = safetensors::tensor::serialize(tensors.iter().map(|(k, v)| (k.as_str(), v)), Some(metadata))
        .map_err(|e| anyhow!("serialising {}: {e}", path.display()))?;
    write_atomic(path, &bytes)
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
    let unsummed = Meta { crc32: None, ..meta.clone() };
    let sum = {
        use safetensors::View;
        let json = serde_json::to_string(&unsummed)?;
        checksum(&json, t.iter().map(|(k, v)| (k.as_str(), format!("{:?}", View::dtype(v)), v.dims().to_vec(), View::data(v))))
    };
    let mut md = HashMap::new();
    md.insert("ruac_train_meta".to_string(), serde_json::to_string(&Meta { crc32: Some(sum), ..unsummed })?);
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
    let meta: Meta = serde_json::from_str(meta_json)
        .with_context(|| format!("checkpoint {}: unreadable ruac_train_meta", path.display()))?;
    // Checkpoints written before checksums existed have none; they load as before.
    if let Some(want) = &meta.crc32 {
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| anyhow!("checkpoint {} is not a valid safetensors file: {e}", path.display()))?;
        let mut views = st.tensors();
        views.sort_by(|a, b| a.0.cmp(&b.0));
        let json = serde_json::to_string(&Meta { crc32: None, ..meta.clone() })?;
        let got = checksum(
            &json,
            views.iter().map(|(k, v)| (k.as_str(), format!("{:?}", v.dtype()), v.shape().to_vec(), std::borrow::Cow::Borrowed(v.data()))),
        );
        if &got != want {
            bail!("checkpoint {} is corrupted: checksum {got}, recorded {want}", path.display());
        }
    }
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

/// The newest checkpoint of `dir` that loads and matches its checksum. A newer one that does
/// not is renamed `*.corrupt` (kept for inspection, no longer listed) and `say` is told
/// which one was skipped and why. Leftover temporary files of an interrupted write are
/// removed first.
pub fn load_latest(dir: &Path, mut say: impl FnMut(String)) -> Result<(PathBuf, Loaded)> {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().ends_with(".safetensors.tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let all = list(dir);
    if all.is_empty() {
        bail!("--resume: no checkpoint in {}", dir.display());
    }
    let mut skipped = Vec::new();
    for (_, p) in all.iter().rev() {
        match load(p) {
            Ok(l) => return Ok((p.clone(), l)),
            Err(e) => {
                let mut aside = p.clone().into_os_string();
                aside.push(".corrupt");
                let aside = PathBuf::from(aside);
                let moved = std::fs::rename(p, &aside).is_ok();
                say(format!(
                    "checkpoint {} is unusable ({e:#}){}; falling back to the previous checkpoint",
                    p.display(),
                    if moved { format!(", set aside as {}", aside.display()) } else { String::new() }
                ));
                skipped.push(format!("{e:#}"));
            }
        }
    }
    bail!("--resume: no usable checkpoint in {}: {}", dir.display(), skipped.join("; "))
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
