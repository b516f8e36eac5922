//! SA-1B: `sa_<n>.jpg` + `sa_<n>.json` (`{"image": {...}, "annotations": [...]}`, compressed
//! RLE masks), parsed lazily.
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::segm::{self, get_u64};
use super::{
    image_dims, list_dir, select_objects, split_ext, ObjectMask, Sample, SampleEntry, Selection, Skip, SkipReason,
    SkipReport, Source,
};
use crate::limits::MAX_IMAGE_PIXELS;
use crate::{Error, Result};

pub(crate) fn list(root: &Path) -> Result<Vec<SampleEntry>> {
    if !root.is_dir() {
        return Err(Error::Invalid(format!("sa1b dataset {}: not a folder", root.display())));
    }
    Ok(list_dir(root)?
        .into_iter()
        .filter_map(|name| {
            let (stem, ext) = split_ext(&name)?;
            (ext == "json").then(|| SampleEntry {
                name: stem.to_owned(),
                image_path: root.join(format!("{stem}.jpg")),
                source: Source::Sa1b { json: root.join(&name) },
            })
        })
        .collect())
}

pub(crate) fn load(
    entry: &SampleEntry,
    json: &Path,
    selection: &mut Selection,
    report: &mut SkipReport,
) -> std::result::Result<Sample, Skip> {
    let name = &entry.name;
    let malformed = |m: String| Skip::new(SkipReason::Malformed, format!("{name}: {}: {m}", json.display()));
    let bytes =
        std::fs::read(json).map_err(|e| Skip::new(SkipReason::UnreadableMask, format!("{name}: {}: {e}", json.display())))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| malformed(format!("not JSON: {e}")))?;
    drop(bytes);
    let image = v.get("image").filter(|i| i.is_object()).ok_or_else(|| malformed("no `image` object".into()))?;
    let jh = get_u64(image, "height").map_err(&malformed)?.ok_or_else(|| malformed("no image `height`".into()))? as usize;
    let jw = get_u64(image, "width").map_err(&malformed)?.ok_or_else(|| malformed("no image `width`".into()))? as usize;
    if jh == 0 || jw == 0 || jh.saturating_mul(jw) > MAX_IMAGE_PIXELS {
        return Err(malformed(format!("image size {jw}x{jh} is empty or over {MAX_IMAGE_PIXELS} pixels")));
    }
    let anns = match v.get("annotations") {
        Some(Value::Array(a)) => a,
        Some(other) => return Err(malformed(format!("`annotations` is {}, not a list", segm::type_name(other)))),
        None => return Err(malformed("no `annotations` list".into())),
    };
    let dir = json.parent().map(Path::to_path_buf).unwrap_or_default();
    let image_path: PathBuf = match image.get("file_name").and_then(Value::as_str) {
        Some(f) if dir.join(f).is_file() => dir.join(f),
        _ => entry.image_path.clone(),
    };
    let (w, h) = image_dims(&image_path)?;
    if (w, h) != (jw, jh) {
        return Err(Skip::new(
            SkipReason::SizeMismatch,
            format!("{name}: image file is {w}x{h} but the JSON says {jw}x{jh}"),
        ));
    }
    let objects = select_objects(anns.len(), selection, report, name, |k| {
        let a = &anns[k];
        let id = get_u64(a, "id").ok().flatten();
        let what = match id {
            Some(id) => format!("{name}: annotation {id}"),
            None => format!("{name}: annotation #{k}"),
        };
        let id = id.ok_or_else(|| Skip::new(SkipReason::Malformed, format!("{what}: no integer `id`")))?;
        let s = a
            .get("segmentation")
            .ok_or_else(|| Skip::new(SkipReason::Malformed, format!("{what}: no `segmentation`")))?;
        let s = segm::parse(s).map_err(|m| Skip::new(SkipReason::Malformed, format!("{what}: {m}")))?;
        Ok(ObjectMask::new(id, segm::decode(&s, h, w, &what)?))
    });
    Ok(Sample { name: name.clone(), image_path, width: w, height: h, objects, ignore: None, sequence: None })
}
