//! SAM 2 / DAVIS / MOSE video-object folders: `JPEGImages/<seq>/<frame>.jpg` +
//! `Annotations/<seq>/<frame>.png` (palette or grayscale PNG, values = object ids).
use std::collections::HashMap;
use std::path::Path;

use super::label_png::decode_label_png;
use super::{
    image_dims, list_dir, read_mask_file, select_objects, split_ext, ObjectMask, Sample, SampleEntry, Selection, Skip,
    SkipReason, SkipReport, Source, IMAGE_EXTENSIONS,
};
use crate::{Error, Result};

/// DAVIS's "void" label in 8-bit annotation PNGs.
pub const VOID_ID: u16 = 255;

pub(crate) fn list(root: &Path, report: &mut SkipReport) -> Result<Vec<SampleEntry>> {
    let (mut ann_root, mut img_root) = (root.join("Annotations"), root.join("JPEGImages"));
    if !ann_root.is_dir() {
        return Err(Error::Invalid(format!(
            "sam2 dataset {}: no Annotations/ folder (expected JPEGImages/<seq>/<frame>.jpg and Annotations/<seq>/<frame>.png)",
            root.display()
        )));
    }
    // DAVIS: JPEGImages/480p/<seq>/..., Annotations/480p/<seq>/...
    if ann_root.join("480p").is_dir() && img_root.join("480p").is_dir() {
        ann_root = ann_root.join("480p");
        img_root = img_root.join("480p");
    }
    let mut entries = Vec::new();
    for seq in list_dir(&ann_root)? {
        let seq_dir = ann_root.join(&seq);
        if !seq_dir.is_dir() {
            continue;
        }
        // Image files of the sequence by stem (one directory listing, not a stat per frame).
        let mut images: HashMap<String, String> = HashMap::new();
        for name in list_dir(&img_root.join(&seq)).unwrap_or_default() {
            if let Some((stem, ext)) = split_ext(&name) {
                if IMAGE_EXTENSIONS.contains(&ext) {
                    images.entry(stem.to_owned()).or_insert(name.clone());
                }
            }
        }
        for name in list_dir(&seq_dir)? {
            let Some((stem, "png" | "PNG")) = split_ext(&name) else { continue };
            let Some(img) = images.get(stem) else {
                report.record(
                    SkipReason::MissingImage,
                    format!("{seq}/{stem}: no image {}/{seq}/{stem}.jpg for annotation {name}", img_root.display()),
                );
                continue;
            };
            entries.push(SampleEntry {
                name: format!("{seq}/{stem}"),
                image_path: img_root.join(&seq).join(img),
                source: Source::Sam2 { annotation: seq_dir.join(&name), sequence: seq.clone() },
            });
        }
    }
    Ok(entries)
}

pub(crate) fn load(
    entry: &SampleEntry,
    annotation: &Path,
    sequence: &str,
    selection: &mut Selection,
    report: &mut SkipReport,
) -> std::result::Result<Sample, Skip> {
    let name = &entry.name;
    let bytes = read_mask_file(annotation)?;
    let labels = decode_label_png(&bytes).map_err(|e| match e {
        Error::Invalid(m) => Skip::new(SkipReason::UnsupportedMask, format!("{name}: {}: {m}", annotation.display())),
        other => Skip::new(SkipReason::UnreadableMask, format!("{name}: {}: {other}", annotation.display())),
    })?;
    let (w, h) = image_dims(&entry.image_path)?;
    if (labels.width, labels.height) != (w, h) {
        return Err(Skip::new(
            SkipReason::SizeMismatch,
            format!("{name}: annotation is {}x{} but the image is {w}x{h}", labels.width, labels.height),
        ));
    }
    let void = labels.bit_depth <= 8;
    let mut present = vec![false; 1 << 16];
    for &v in &labels.values {
        present[v as usize] = true;
    }
    let ids: Vec<u16> = (1..=u16::MAX).filter(|&v| present[v as usize] && !(void && v == VOID_ID)).collect();
    let ignore = (void && present[VOID_ID as usize]).then(|| labels.values.iter().map(|&v| v == VOID_ID).collect());
    let objects = select_objects(ids.len(), selection, report, name, |k| {
        let id = ids[k];
        Ok(ObjectMask::new(id as u64, labels.values.iter().map(|&v| v == id).collect()))
    });
    Ok(Sample { ignore, sequence: Some(sequence.to_owned()), ..Sample::of(entry, w, h, objects) })
}
