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
