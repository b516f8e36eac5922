//! The training data stream: the procedural source domain or a dataset on disk, one sample
//! per index, at the model's square input size, with at most `max_objects` objects.
use anyhow::{anyhow, bail, Context, Result};
use ruac_core::data::augment::{augment, AugmentConfig};
use ruac_core::data::procedural::{generate, Domain, ProceduralConfig};
use ruac_core::data::{Dataset, DatasetFormat, DatasetSpec, Selection, SkipReport};
use ruac_core::image_io::RgbImage;
use ruac_core::rng::Pcg32;

use super::config::TrainConfig;

pub enum Source {
    Procedural(ProceduralConfig),
    Dataset(Box<Dataset>),
}

pub struct Stream {
    source: Source,
    /// Seeds the per-epoch order of a dataset's samples.
    shuffle_seed: u64,
    size: usize,
    max_objects: usize,
    augment: Option<AugmentConfig>,
}

impl Source {
    pub fn open(cfg: &TrainConfig, size: usize) -> Result<Stream> {
        let d = &cfg.data;
        let source = if d.source == "procedural" {
            Source::Procedural(ProceduralConfig {
                size,
                min_objects: d.procedural_min_objects,
                max_objects: d.procedural_max_objects,
                min_area: 64,
                domain: Domain::Train,
            })
        } else {
            let format: DatasetFormat = serde_json::from_value(serde_json::Value::String(
                d.source.clone(),
            ))
            .map_err(|_| {
                anyhow!(
                    "data.source {:?}: use procedural, sam2, coco, sa1b or mask_folder",
                    d.source
                )
            })?;
            let root = d
                .root
                .clone()
                .ok_or_else(|| anyhow!("data.root is required for data.source = {:?}", d.source))?;
            let mut spec = DatasetSpec::new(format, root);
            spec.annotations = d.annotations.clone();
            let mut report = SkipReport::new();
            let ds = Dataset::open(&spec, &mut report)
                .with_context(|| "opening the training dataset".to_string())?;
            if ds.is_empty() {
                bail!(
                    "the training dataset has no usable sample ({} skipped)",
                    report.total()
                );
            }
            if !report.is_empty() {
                eprintln!(
                    "training data: skipped {} entries ({:?})",
                    report.total(),
                    report.count_by_reason
                );
            }
            Source::Dataset(Box::new(ds))
        };
        Ok(Stream {
            source,
            shuffle_seed: cfg.train.seed,
            size,
            max_objects: d.max_objects,
            augment: d.augment,
        })
    }
}

fn resize_square(img: &RgbImage, s: usize) -> Result<RgbImage> {
    if img.width == s && img.height == s {
        return Ok(img.clone());
    }
    let buf = image::RgbImage::from_raw(img.width as u32, img.height as u32, img.data.clone())
        .ok_or_else(|| anyhow!("image buffer size"))?;
    let r = image::imageops::resize(
        &buf,
        s as u32,
        s as u32,
        image::imageops::FilterType::Triangle,
    );
    Ok(RgbImage::new(s, s, r.into_raw())?)
}

fn resize_mask(m: &[bool], w: usize, h: usize, s: usize) -> Vec<bool> {
    let mut out = Vec::with_capacity(s * s);
    for y in 0..s {
        for x in 0..s {
            out.push(m[((y * h) / s) * w + (x * w) / s]);
        }
    }
    out
}

impl Stream {
    /// The dataset sample at stream position `k`: every epoch (`len` positions) visits each
    /// sample once, in an order drawn from `(shuffle_seed, epoch)` (Fisher-Yates), so files
    /// sorted by name (one kind after another) are mixed.
    fn dataset_position(&self, k: u64, len: usize) -> usize {
        let (epoch, pos) = (k / len as u64, (k % len as u64) as usize);
        let mut rng = Pcg32::new(self.shuffle_seed ^ 0x5eed_0f0e ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut order: Vec<usize> = (0..len).collect();
        for i in (1..len).rev() {
            order.swap(i, (rng.next_u32() as usize) % (i + 1));
        }
        order[pos]
    }

    /// Sample `index`: a square image, its objects' masks (non-empty) and, for a dataset
    /// without augmentation, the dataset image's position (the same image whenever it comes
    /// back: the key of `embed_cache`). Dataset samples that fail to load are skipped with a
    /// message, moving on to the next index.
    pub fn sample(&self, index: u64, rng: &mut Pcg32) -> Result<(RgbImage, Vec<Vec<bool>>, Option<usize>)> {
        let s = self.size;
        for attempt in 0..64u64 {
            let mut image_key = None;
            let (mut img, mut masks) = match &self.source {
                Source::Procedural(p) => {
                    let scene = generate(p, rng.next_u32() as u64, index)?;
                    let mut objs: Vec<Vec<bool>> =
                        scene.objects.into_iter().map(|o| o.mask).collect();
                    // A random subset of at most max_objects.
                    while objs.len() > self.max_objects {
                        let i = (rng.next_u32() as usize) % objs.len();
                        objs.remove(i);
                    }
                    (scene.image, objs)
                }
                Source::Dataset(ds) => {
                    let i = self.dataset_position(index + attempt * 7919, ds.len());
                    let mut sel = Selection::random(self.max_objects, rng.next_u32() as u64);
                    let mut report = SkipReport::new();
                    let Some(sample) = ds.load(i, &mut sel, &mut report) else {
                        eprintln!(
                            "skipping training sample {i}: {}",
                            report.messages.join("; ")
                        );
                        continue;
                    };
                    let img = match sample.load_image() {
                        Ok(img) => img,
                        Err(e) => {
                            eprintln!("skipping training sample {}: {e}", sample.name);
                            continue;
                        }
                    };
                    let masks = sample
                        .objects
                        .iter()
                        .map(|o| resize_mask(&o.mask, sample.width, sample.height, s))
                        .collect();
                    if self.augment.is_none() {
                        image_key = Some(i);
                    }
                    (resize_square(&img, s)?, masks)
                }
            };
            if let Some(a) = &self.augment {
                augment(&mut img, &mut masks, a, rng);
            }
            masks.retain(|m| m.iter().any(|&v| v));
            if !masks.is_empty() {
                return Ok((img, masks, image_key));
            }
        }
        bail!("64 consecutive training samples from index {index} had no usable object")
    }
}
