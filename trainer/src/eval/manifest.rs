//! The evaluation manifest: a TOML list of domains.
//!
//! ```toml
//! [[domain]]
//! name = "TrashCan"
//! path = "data/trashcan"        # relative paths are relative to the manifest
//! format = "sam2"               # sam2 (davis, mose), coco, sa1b, mask_folder; detected if omitted
//! annotations = "ann.json"      # coco: the instances JSON when `path` is the image folder
//! ```
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ruac_core::data::{DatasetFormat, DatasetSpec};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    pub name: String,
    pub path: PathBuf,
    #[serde(default)]
    pub format: Option<DatasetFormat>,
    #[serde(default)]
    pub annotations: Option<PathBuf>,
    #[serde(default)]
    pub include_crowd: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(rename = "domain")]
    pub domains: Vec<Domain>,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Self> {
        let text = ruac_core::limits::read_text(path).with_context(|| format!("reading manifest {}", path.display()))?;
        Self::parse(&text, path)
    }

    /// Parses manifest text; `path` names it in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let mut m: Manifest = toml::from_str(text).with_context(|| format!("parsing manifest {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut seen = std::collections::HashSet::new();
        for d in &mut m.domains {
            if !seen.insert(d.name.clone()) {
                bail!("manifest {}: domain {:?} appears twice", path.display(), d.name);
            }
            if d.name.is_empty() || d.name.contains(['/', '\\']) {
                bail!("manifest {}: domain name {:?} must be non-empty and contain no slashes", path.display(), d.name);
            }
            if d.path.is_relative() {
                d.path = base.join(&d.path);
            }
            if let Some(a) = &d.annotations {
                if a.is_relative() {
                    d.annotations = Some(base.join(a));
                }
            }
        }
        if m.domains.is_empty() {
            bail!("manifest {} lists no [[domain]]", path.display());
        }
        Ok(m)
    }
}

impl Domain {
    pub fn spec(&self) -> Result<DatasetSpec> {
        let format = match self.format {
            Some(f) => f,
            None => DatasetFormat::detect(&self.path)
                .with_context(|| format!("domain {}: cannot tell the format of {}; set `format`", self.name, self.path.display()))?,
        };
        let mut spec = DatasetSpec::new(format, &self.path);
        spec.annotations = self.annotations.clone();
        spec.include_crowd = self.include_crowd;
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_resolves_and_rejects() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.toml");
        std::fs::write(&p, "[[domain]]\nname = \"a\"\npath = \"data/a\"\nformat = \"davis\"\n[[domain]]\nname = \"b\"\npath = \"/abs/b.json\"\n").unwrap();
        let m = Manifest::load(&p).unwrap();
        assert_eq!(m.domains.len(), 2);
        assert_eq!(m.domains[0].path, dir.path().join("data/a"));
        assert_eq!(m.domains[0].format, Some(DatasetFormat::Sam2));
        assert_eq!(m.domains[1].path, PathBuf::from("/abs/b.json"));
        std::fs::write(&p, "[[domain]]\nname = \"a\"\npath = \"x\"\n[[domain]]\nname = \"a\"\npath = \"y\"\n").unwrap();
        assert!(Manifest::load(&p).unwrap_err().to_string().contains("twice"));
        std::fs::write(&p, "[[domain]]\nname = \"a\"\npath = \"x\"\nformt = \"coco\"\n").unwrap();
        assert!(format!("{:#}", Manifest::load(&p).unwrap_err()).contains("formt"));
    }
}
