//! `trainer gen-domain`: writes a procedural domain (the training domain or a held-out
//! shift) as a `mask_folder` dataset, for `trainer eval` and the model card.
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ruac_core::data::procedural::{generate, Domain, ProceduralConfig};

#[derive(Args, Debug)]
pub struct GenArgs {
    /// train, unseen-textures, colour-shift or elastic.
    #[arg(long)]
    pub domain: String,
    #[arg(long, default_value_t = 32)]
    pub count: u64,
    /// Stream seed; the training config uses other seeds, so the samples are unseen.
    #[arg(long, default_value_t = 9001)]
    pub seed: u64,
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: GenArgs) -> Result<()> {
    let domain = Domain::parse(&a.domain)?;
    let cfg = ProceduralConfig { size: a.size, domain, ..Default::default() };
    let (img_dir, mask_dir) = (a.out.join("images"), a.out.join("masks"));
    std::fs::create_dir_all(&img_dir).with_context(|| format!("creating {}", img_dir.display()))?;
    for i in 0..a.count {
        let scene = generate(&cfg, a.seed, i)?;
        let name = format!("{}_{i:04}", domain.name());
        let (w, h) = (scene.image.width as u32, scene.image.height as u32);
        image::save_buffer(img_dir.join(format!("{name}.png")), &scene.image.data, w, h, image::ExtendedColorType::Rgb8)?;
        let dir = mask_dir.join(&name);
        std::fs::create_dir_all(&dir)?;
        for o in &scene.objects {
            let px: Vec<u8> = o.mask.iter().map(|&v| if v { 255 } else { 0 }).collect();
            image::save_buffer(dir.join(format!("{}.png", o.id)), &px, w, h, image::ExtendedColorType::L8)?;
        }
    }
    eprintln!("wrote {} {} samples to {}", a.count, domain.name(), a.out.display());
    Ok(())
}

#[derive(Args, Debug)]
pub struct WeightsArgs {
    /// tiny, small, base_plus or large (micro: the test configuration).
    #[arg(long)]
    pub config: String,
    /// Add RUAC's Bayesian head.
    #[arg(long)]
    pub ruac: bool,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The official checkpoints' tensor names and shapes (the reference's list).
    #[arg(long, default_value = "crates/ruac-core/tests/fixtures/sam2.1_shapes.json")]
    pub shapes: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
}

/// `trainer gen-weights`: a checkpoint with seeded random weights in an official SAM 2.1
/// configuration's layout (every tensor of the official file, video-memory modules included,
/// `model::init::init_official_layout`), for speed and memory checks at the real sizes where
/// the released weights cannot be downloaded. Masks from these weights mean nothing.
pub fn weights(a: WeightsArgs) -> Result<()> {
    use ruac_core::model::config::{BayesHeadConfig, Sam2Config};
    use std::collections::BTreeMap;
    let mut cfg = Sam2Config::by_name(&a.config).ok_or_else(|| anyhow::anyhow!("unknown configuration {:?}: tiny, small, base_plus, large or micro", a.config))?;
    if a.ruac {
        cfg = cfg.with_bayes_head(Some(BayesHeadConfig::default()));
    }
    let official = if cfg.name == "micro" {
        BTreeMap::new()
    } else {
        let text = std::fs::read_to_string(&a.shapes).with_context(|| format!("reading {} (run from the repository, or pass --shapes)", a.shapes.display()))?;
        let mut all: BTreeMap<String, BTreeMap<String, Vec<usize>>> = serde_json::from_str(&text).with_context(|| format!("{}", a.shapes.display()))?;
        all.remove(&cfg.name).with_context(|| format!("{} has no {}", a.shapes.display(), cfg.name))?
    };
    let tensors: Vec<(String, candle_core::Tensor)> = ruac_core::model::init::init_official_layout(&cfg, &official, a.seed)?.into_iter().collect();
    let params: usize = tensors.iter().map(|(_, t)| t.elem_count()).sum();
    let metadata = [("ruac_config".to_string(), cfg.name.clone()), ("ruac_image_size".to_string(), cfg.image_size.to_string())].into_iter().collect();
    let bytes = safetensors::serialize(tensors, Some(metadata))?;
    std::fs::write(&a.out, &bytes).with_context(|| format!("writing {}", a.out.display()))?;
    println!("{}: {} ({}RUAC head), {:.1} M parameters, {:.0} MB, seed {}", a.out.display(), cfg.name, if a.ruac { "" } else { "no " }, params as f64 / 1e6, bytes.len() as f64 / 1e6, a.seed);
    Ok(())
}
