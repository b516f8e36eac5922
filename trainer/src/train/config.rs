//! The training configuration (TOML). The defaults reproduce
//! `ruac/configs/sam2_ruac_train.yaml` where it applies; `configs/*.toml` list deviations.
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use ruac_core::data::augment::AugmentConfig;
use ruac_core::method::step::BranchConfig;

pub use ruac_core::method::optim::Group;
pub use ruac_core::method::schedule::WeightSchedule;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub model: ModelSection,
    pub data: DataSection,
    #[serde(default)]
    pub train: TrainSection,
    #[serde(default)]
    pub lr: LrSection,
    #[serde(default)]
    pub loss: BranchConfig,
    #[serde(default)]
    pub weights: WeightSchedule,
    #[serde(default)]
    pub attack: AttackSection,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Named configuration: SAM 2.1 (micro, tiny, small, base_plus, large) or SAM 1 (vit_b,
    /// vit_l, vit_h, mobile_sam, lite_medsam; `sam1`: the one `init` names). See `base.rs`.
    pub config: String,
    pub image_size: Option<usize>,
    /// Starting weights (SAM 2.1 or SAM 1 `.pt`/`.pth`/`.safetensors`, or an exported model);
    /// absent: fresh.
    pub init: Option<PathBuf>,
    /// Train RUAC's Bayesian pixel head (otherwise plain SAM 2.1's hypernetwork head).
    #[serde(default)]
    pub bayes_head: bool,
    /// RUAC freezes the whole image encoder.
    #[serde(default = "yes")]
    pub freeze_image_encoder: bool,
    /// How the Bayesian head starts: `fresh` (the release) or `hypernetwork` (fitted to the
    /// init checkpoint's hypernetwork heads, `head_init.rs`).
    #[serde(default = "fresh")]
    pub head_init: String,
    /// Training samples the `hypernetwork` fit decodes.
    #[serde(default = "sixteen")]
    pub head_init_samples: usize,
}

fn fresh() -> String {
    "fresh".into()
}
fn sixteen() -> usize {
    16
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// `procedural`, or a dataset format (`sam2`, `coco`, `sa1b`, `mask_folder`).
    pub source: String,
    pub root: Option<PathBuf>,
    pub annotations: Option<PathBuf>,
    /// Objects per sample (3 in the release).
    #[serde(default = "three")]
    pub max_objects: usize,
    #[serde(default)]
    pub augment: Option<AugmentConfig>,
    #[serde(default = "two")]
    pub procedural_min_objects: usize,
    #[serde(default = "five")]
    pub procedural_max_objects: usize,
}

fn two() -> usize {
    2
}
fn three() -> usize {
    3
}
fn five() -> usize {
    5
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    pub steps: usize,
    /// Samples per optimiser step (batch 2 × accumulation 2 per GPU in the release).
    pub grad_accum: usize,
    pub seed: u64,
    pub clip_grad_norm: f64,
    pub weight_decay: f64,
    pub checkpoint_every: usize,
    pub keep_checkpoints: usize,
    /// Folder of cached image embeddings (`embed_cache.rs`): with a frozen SAM 1 encoder and
    /// no augmentation, the clean branch encodes each training image once. Runs on the same
    /// data and base may share it. Absent: encode every step.
    pub embed_cache: Option<PathBuf>,
}

impl Default for TrainSection {
    fn default() -> Self {
        Self {
            steps: 1000,
            grad_accum: 4,
            seed: 123,
            clip_grad_norm: 0.1,
            weight_decay: 0.1,
            checkpoint_every: 100,
            keep_checkpoints: 3,
            embed_cache: None,
        }
    }
}

/// `[start, end]` of each group's cosine schedule.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LrSection {
    pub base: [f64; 2],
    pub head: [f64; 2],
    pub attackers: [f64; 2],
    pub vision: [f64; 2],
    /// Linear warm-up steps for every group (0, as the release; a model trained from
    /// scratch needs some).
    pub warmup: usize,
}

impl Default for LrSection {
    fn default() -> Self {
        Self {
            base: [1e-6, 1e-7],
            head: [1e-4, 1e-5],
            attackers: [1e-3, 1e-4],
            vision: [1e-7, 1e-8],
            warmup: 0,
        }
    }
}

impl LrSection {
    pub fn group(&self, which: [f64; 2], wd: f64) -> Group {
        Group {
            lr_start: which[0],
            lr_end: which[1],
            weight_decay: wd,
            warmup: self.warmup,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttackSection {
    pub style: bool,
    pub deform: bool,
    /// ε of the style attacker (0.3) and of the deformation attacker (0.15).
    pub eps_style: f64,
    pub eps_deform: f64,
}

impl Default for AttackSection {
    fn default() -> Self {
        Self {
            style: true,
            deform: true,
            eps_style: 0.3,
            eps_deform: 0.15,
        }
    }
}

impl TrainConfig {
    /// Reads a config and applies `--set KEY=VALUE` overrides (dotted keys, TOML values; a
    /// value that is not TOML is taken as a string), as SAM 2's trainer takes Hydra overrides.
    pub fn load(path: &std::path::Path, overrides: &[String]) -> Result<Self> {
        let text = ruac_core::limits::read_text(path).with_context(|| format!("reading config {}", path.display()))?;
        Self::parse(&text, path, overrides)
    }

    /// Parses config text and applies the overrides; `path` names it in errors.
    pub fn parse(text: &str, path: &std::path::Path, overrides: &[String]) -> Result<Self> {
        let mut table: toml::Table =
            toml::from_str(text).with_context(|| format!("parsing config {}", path.display()))?;
        for o in overrides {
            set(&mut table, o)?;
        }
        let cfg: TrainConfig = table.try_into().with_context(|| {
            let with = if overrides.is_empty() { String::new() } else { format!(" with --set {}", overrides.join(" ")) };
            format!("config {}{with}", path.display())
        })?;
        cfg.check()?;
        Ok(cfg)
    }

    pub fn check(&self) -> Result<()> {
        if self.train.steps == 0 || self.train.grad_accum == 0 {
            bail!("train.steps and train.grad_accum must be at least 1");
        }
        if self.train.keep_checkpoints == 0 || self.train.checkpoint_every == 0 {
            bail!("train.keep_checkpoints and train.checkpoint_every must be at least 1");
        }
        match self.model.head_init.as_str() {
            "fresh" => {}
            "hypernetwork" if self.model.bayes_head && self.model.init.is_some() && self.model.head_init_samples > 0 => {}
            "hypernetwork" => bail!("model.head_init = \"hypernetwork\" needs model.bayes_head = true, model.init and head_init_samples > 0"),
            other => bail!("model.head_init = {other:?}: use fresh or hypernetwork"),
        }
        if self.weights.adv_every == 0 {
            bail!("weights.adv_every must be at least 1");
        }
        if self.train.embed_cache.is_some() {
            if !self.model.freeze_image_encoder {
                bail!("train.embed_cache needs model.freeze_image_encoder = true (a trained encoder changes the embeddings)");
            }
            if self.data.source == "procedural" || self.data.augment.is_some() {
                bail!("train.embed_cache needs a dataset source without [data.augment] (each index must always give the same image)");
            }
        }
        if self.data.max_objects == 0 {
            bail!("data.max_objects must be at least 1");
        }
        if (self.attack.style || self.attack.deform)
            && !self.model.bayes_head
            && self.weights.adv_from < 1.0
        {
            bail!("the adversarial branch trains RUAC's Bayesian head: set model.bayes_head = true or disable [attack]");
        }
        Ok(())
    }

    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string(self)?)
    }
}

/// Applies one `KEY=VALUE` override to a parsed config, creating missing tables.
fn set(table: &mut toml::Table, spec: &str) -> Result<()> {
    let Some((key, raw)) = spec.split_once('=') else {
        bail!("--set {spec:?}: expected KEY=VALUE, e.g. train.steps=8");
    };
    let path: Vec<&str> = key.trim().split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        bail!("--set {spec:?}: empty key segment");
    }
    let value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").expect("the key just parsed"),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let (last, parents) = path.split_last().expect("split yields one segment at least");
    let mut t = table;
    for (i, p) in parents.iter().enumerate() {
        let entry = t.entry(p.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry
            .as_table_mut()
            .ok_or_else(|| anyhow::anyhow!("--set {spec:?}: {} is not a table", path[..=i].join(".")))?;
    }
    t.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micro() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs/ruac-micro.toml")
    }

    fn load(overrides: &[&str]) -> Result<TrainConfig> {
        TrainConfig::load(&micro(), &overrides.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn overrides_replace_values_and_create_missing_tables() {
        let base = load(&[]).unwrap();
        assert_eq!(base.train.steps, 1200);
        assert_eq!(base.weights.adv_from, 7.0 / 20.0);
        let c = load(&[
            "train.steps=8",
            // ruac-micro.toml has no [weights] table: the override creates it.
            "weights.adv_from = 0.5",
            "model.init=models/other.safetensors",
            "lr.head=[1e-3, 1e-4]",
            "attack.deform=false",
        ])
        .unwrap();
        assert_eq!(c.train.steps, 8);
        assert_eq!(c.weights.adv_from, 0.5);
        assert_eq!(c.weights.kl_from, base.weights.kl_from);
        assert_eq!(c.model.init, Some(PathBuf::from("models/other.safetensors")));
        assert_eq!(c.lr.head, [1e-3, 1e-4]);
        assert!(!c.attack.deform && c.attack.style);
        assert_eq!(c.train.seed, base.train.seed);
        assert_eq!(c.lr.base, base.lr.base);
    }

    #[test]
    fn every_committed_config_parses() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let text = std::fs::read_to_string(&p).unwrap();
            // Evaluation manifests list [[domain]]s; the rest are training configs.
            if p.extension().is_some_and(|x| x == "toml") && !text.contains("[[domain]]") {
                TrainConfig::load(&p, &[]).unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
                n += 1;
            }
        }
        assert!(n >= 10, "{n} configs");
        let paper = TrainConfig::load(&dir.join("ruac-sam2.1-bplus-paper.toml"), &[]).unwrap();
        assert_eq!((paper.train.grad_accum * 8, paper.train.seed, paper.lr.head), (32, 123, [1e-4, 1e-5]));
    }

    #[test]
    fn bad_overrides_name_the_problem() {
        let msg = |o: &str| format!("{:#}", load(&[o]).unwrap_err());
        assert!(msg("train.steps").contains("expected KEY=VALUE"), "{}", msg("train.steps"));
        assert!(msg("train..steps=1").contains("empty key segment"));
        assert!(msg("train.steps.x=1").contains("train.steps is not a table"));
        assert!(msg("train.stepz=3").contains("stepz"), "{}", msg("train.stepz=3"));
        assert!(msg("train.steps=eight").contains("steps"), "{}", msg("train.steps=eight"));
        assert!(msg("train.steps=0").contains("at least 1"));
    }
}
