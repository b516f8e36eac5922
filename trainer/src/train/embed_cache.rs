//! Cached image embeddings for a frozen encoder (`train.embed_cache`). With the image encoder
//! frozen and no augmentation, the clean branch's encoding of dataset image `i` is the same at
//! every step, so it is computed once and kept on disk as f32 (bit-exact: a resumed or a
//! twin run reads what an encoder pass would give). The adversarial branch still encodes its
//! attacked image with the graph, since the attackers learn through the encoder.
//!
//! The folder holds `key.json` (what the embeddings depend on: the init weights' size and
//! modification time, the data root, the input size) and `<i>.safetensors` per image;
//! opening a folder made for another base or dataset is refused. Files are written to a
//! per-process temporary name and renamed, so runs sharing the folder never see a partial file.
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use ruac_core::method::base::Encoded;
use ruac_core::predictor::BaseModel;

use super::config::TrainConfig;

pub struct EmbedCache {
    dir: PathBuf,
}

fn describe(path: &Path) -> Result<String> {
    let m = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let modified = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(format!("{} ({} bytes, modified {modified})", path.display(), m.len()))
}

impl EmbedCache {
    /// Opens (creating) the cache folder of `cfg.train.embed_cache`; `None` when not configured.
    pub fn open(cfg: &TrainConfig, model: &BaseModel) -> Result<Option<Self>> {
        let Some(dir) = &cfg.train.embed_cache else {
            return Ok(None);
        };
        if !matches!(model, BaseModel::Sam1(_)) {
            bail!("train.embed_cache needs a SAM 1 base: SAM 2.1's skip features pass through the trained conv_s0/conv_s1");
        }
        let key = serde_json::json!({
            "init": match &cfg.model.init { Some(p) => describe(p)?, None => "fresh".into() },
            "config": cfg.model.config,
            "data_source": cfg.data.source,
            "data_root": cfg.data.root.as_ref().map(|p| p.display().to_string()),
            "annotations": cfg.data.annotations.as_ref().map(|p| p.display().to_string()),
            "image_size": model.image_size(),
        });
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let key_path = dir.join("key.json");
        match std::fs::read_to_string(&key_path) {
            Ok(text) => {
                let old: serde_json::Value = serde_json::from_str(&text)
                    .with_context(|| format!("reading {}", key_path.display()))?;
                if old != key {
                    bail!(
                        "train.embed_cache {}: made for {old}, this run is {key}; use another folder",
                        dir.display()
                    );
                }
            }
            Err(_) => std::fs::write(&key_path, serde_json::to_string_pretty(&key)?)
                .with_context(|| format!("writing {}", key_path.display()))?,
        }
        Ok(Some(Self { dir: dir.clone() }))
    }

    fn path(&self, index: usize) -> PathBuf {
        self.dir.join(format!("{index:07}.safetensors"))
    }

    /// The encoding of dataset image `index` (preprocessed as `image`), from the cache or
    /// from the encoder (then stored). Returns whether it was a cache hit.
    pub fn encode(&self, model: &BaseModel, index: usize, image: &Tensor) -> Result<(Encoded, bool)> {
        let path = self.path(index);
        let dev = image.device();
        if let Ok(bytes) = std::fs::read(&path) {
            match read(&bytes, dev) {
                Ok(t) => return Ok((Encoded::sam1(t), true)),
                Err(e) => eprintln!("embedding cache {}: {e}; encoding again", path.display()),
            }
        }
        let enc = model.encode(&image.detach())?;
        let embed = enc
            .encoder_only()
            .ok_or_else(|| anyhow!("this base's encoding cannot be cached"))?
            .detach();
        write_atomic(&path, &embed)?;
        Ok((Encoded::sam1(embed), false))
    }
}

fn read(bytes: &[u8], dev: &Device) -> Result<Tensor> {
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| anyhow!("{e}"))?;
    let v = st.tensor("image_embed").map_err(|e| anyhow!("{e}"))?;
    if v.dtype() != safetensors::Dtype::F32 {
        bail!("image_embed is {:?}, expected F32", v.dtype());
    }
    let data: Vec<f32> = v
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(Tensor::from_vec(data, v.shape(), dev)?)
}

fn write_atomic(path: &Path, embed: &Tensor) -> Result<()> {
    let t = embed.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
    let bytes = safetensors::tensor::serialize([("image_embed", &t)], None::<HashMap<String, String>>)
        .map_err(|e| anyhow!("serialising {}: {e}", path.display()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(&bytes).with_context(|| format!("writing {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}
