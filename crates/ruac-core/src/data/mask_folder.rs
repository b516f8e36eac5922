//! A folder of images with one binary mask PNG per object: `images/<name>.<ext>` and
//! `masks/<name>/<k>.png` or `masks/<name>_<k>.png`.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::label_png::decode_binary_mask_png;
use super::{
    image_dims, list_dir, read_mask_file, select_objects, split_ext, ObjectMask, Sample, SampleEntry, Selection, Skip,
    SkipReason, SkipReport, Source, IMAGE_EXTENSIONS,
};
use crate::{Error, Result};

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

pub(crate) fn list(root: &Path, report: &mut SkipReport) -> Result<Vec<SampleEntry>> {
    let (img_dir, mask_dir) = (root.join("images"), root.join("masks"));
    if !img_dir.is_dir() {
        return Err(Error::Invalid(format!(
            "mask_folder dataset {}: no images/ folder (expected images/<name>.jpg and masks/<name>/<k>.png or masks/<name>_<k>.png)",
            root.display()
        )));
    }
    // stem -> image file name (the first in sorted order when several extensions share a stem)
    let mut images: BTreeMap<String, String> = BTreeMap::new();
    for name in list_dir(&img_dir)? {
        if let Some((stem, ext)) = split_ext(&name) {
            if IMAGE_EXTENSIONS.contains(&ext) {
                images.entry(stem.to_owned()).or_insert(name.clone());
            }
        }
    }
    // stem -> [(id, path)]
    let mut masks: BTreeMap<String, Vec<(u64, PathBuf)>> = BTreeMap::new();
    let mut orphans: BTreeSet<String> = BTreeSet::new();
    let names = if mask_dir.is_dir() { list_dir(&mask_dir)? } else { Vec::new() };
    for name in names {
        let path = mask_dir.join(&name);
        if path.is_dir() {
            // nested: masks/<stem>/<k>.png
            let mut files: Vec<(String, String)> = list_dir(&path)?
                .into_iter()
                .filter_map(|f| {
                    let (s, e) = split_ext(&f)?;
                    matches!(e, "png" | "PNG").then(|| (s.to_owned(), f.clone()))
                })
                .collect();
            // numeric stems in numeric order first, then the others by name
            files.sort_by_key(|(s, _)| (!is_digits(s), s.parse::<u64>().unwrap_or(0), s.clone()));
            let list = masks.entry(name.clone()).or_default();
            for (pos, (s, f)) in files.into_iter().enumerate() {
                let id = s.parse::<u64>().unwrap_or(pos as u64 + 1);
                list.push((id, path.join(f)));
            }
            continue;
        }
        let Some((stem, "png" | "PNG")) = split_ext(&name) else { continue };
        match stem.rfind('_') {
            Some(u) if is_digits(&stem[u + 1..]) => {
                let id = stem[u + 1..].parse::<u64>().unwrap_or(u64::MAX);
                masks.entry(stem[..u].to_owned()).or_default().push((id, path));
            }
            _ => report.record(
                SkipReason::Malformed,
                format!("{}: mask file name is not <image>_<k>.png", path.display()),
            ),
        }
    }
    let mut entries = Vec::new();
    for (stem, mut list) in masks {
        if !images.contains_key(&stem) {
            orphans.insert(stem);
            continue;
        }
        list.sort_by_key(|(id, _)| *id);
        let mut seen = BTreeSet::new();
        list.retain(|(id, p)| {
            let first = seen.insert(*id);
            if !first {
                report.record(SkipReason::Malformed, format!("{stem}: duplicate mask id {id} ({})", p.display()));
            }
            first
        });
        let file = images.remove(&stem).expect("checked above");
        entries.push(SampleEntry {
            name: stem,
            image_path: img_dir.join(file),
            source: Source::MaskFolder { masks: list },
        });
    }
    for stem in orphans {
        report.record(SkipReason::MissingImage, format!("{stem}: masks without an image in {}", img_dir.display()));
    }
    for stem in images.keys() {
        report.record(SkipReason::NoObjects, format!("{stem}: image without masks"));
    }
    Ok(entries)
}

pub(crate) fn load(
    entry: &SampleEntry,
    masks: &[(u64, PathBuf)],
    selection: &mut Selection,
    report: &mut SkipReport,
) -> std::result::Result<Sample, Skip> {
    let name = &entry.name;
    let (w, h) = image_dims(&entry.image_path)?;
    let objects = select_objects(masks.len(), selection, report, name, |k| {
        let (id, path) = &masks[k];
        let bytes = read_mask_file(path)?;
        let (mw, mh, mask) = decode_binary_mask_png(&bytes)
            .map_err(|e| Skip::new(SkipReason::UnreadableMask, format!("{name}: {}: {e}", path.display())))?;
        if (mw, mh) != (w, h) {
            return Err(Skip::new(
                SkipReason::SizeMismatch,
                format!("{name}: mask {} is {mw}x{mh} but the image is {w}x{h}", path.display()),
            ));
        }
        Ok(ObjectMask::new(*id, mask))
    });
    Ok(Sample::of(entry, w, h, objects))
}
