//! COCO instances JSON (`images`, `annotations` with polygon / RLE `segmentation`).
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::segm::{self, get_u64, Segm};
use super::{
    image_dims, list_dir, select_objects, DatasetSpec, ObjectMask, Sample, SampleEntry, Selection, Skip, SkipReason,
    SkipReport, Source,
};
use crate::limits::MAX_IMAGE_PIXELS;
use crate::{Error, Result};

#[derive(Debug)]
struct CocoImage {
    id: u64,
    file_name: String,
    height: usize,
    width: usize,
}

#[derive(Debug)]
struct CocoAnn {
    id: u64,
    image_id: u64,
    category: Option<u64>,
    crowd: bool,
    /// The parsed segmentation, or why it cannot be parsed (reported when loading).
    segm: std::result::Result<Segm, String>,
}

/// The parsed JSON: images and, per listed image, its candidate annotations.
#[derive(Debug, Clone)]
pub(crate) struct CocoIndex {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    images: Vec<CocoImage>,
    anns: Vec<CocoAnn>,
    /// Per image (same index as `images`): the annotations that are candidates objects.
    by_image: Vec<Vec<usize>>,
}

trait FromJson: Sized {
    fn from_json(v: Value) -> std::result::Result<Self, String>;
}

/// A JSON list whose elements are converted one at a time, so a bad element is an `Err` entry
/// (counted, skipped) instead of failing the whole file, and no element is kept as a `Value`.
struct Items<T>(Vec<std::result::Result<T, String>>);

impl<'de, T: FromJson> Deserialize<'de> for Items<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: FromJson> Visitor<'de> for V<T> {
            type Value = Items<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Items<T>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(v) = seq.next_element::<Value>()? {
                    out.push(T::from_json(v));
                }
                Ok(Items(out))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

#[derive(Deserialize)]
struct RawCoco {
    images: Option<Items<CocoImage>>,
    annotations: Option<Items<CocoAnn>>,
}

fn id_text(v: &Value) -> String {
    match v.get("id") {
        Some(id) => format!(" {id}"),
        None => String::new(),
    }
}

impl FromJson for CocoImage {
    fn from_json(v: Value) -> std::result::Result<Self, String> {
        let f = || -> std::result::Result<Self, String> {
            let id = get_u64(&v, "id")?.ok_or("no `id`")?;
            let file_name = v.get("file_name").and_then(Value::as_str).ok_or("no `file_name` string")?.to_owned();
            let height = get_u64(&v, "height")?.ok_or("no `height`")? as usize;
            let width = get_u64(&v, "width")?.ok_or("no `width`")? as usize;
            if height == 0 || width == 0 || height.saturating_mul(width) > MAX_IMAGE_PIXELS {
                return Err(format!("size {width}x{height} is empty or over {MAX_IMAGE_PIXELS} pixels"));
            }
            Ok(Self { id, file_name, height, width })
        };
        f().map_err(|e| format!("image{}: {e}", id_text(&v)))
    }
}

impl FromJson for CocoAnn {
    fn from_json(v: Value) -> std::result::Result<Self, String> {
        let f = || -> std::result::Result<Self, String> {
            let id = get_u64(&v, "id")?.ok_or("no `id`")?;
            let image_id = get_u64(&v, "image_id")?.ok_or("no `image_id`")?;
            let category = get_u64(&v, "category_id")?;
            let crowd = match v.get("iscrowd") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(x) => segm::as_u64(x).ok_or_else(|| format!("`iscrowd` is {x}"))? != 0,
            };
            let segm = match v.get("segmentation") {
                None => Err("no `segmentation`".to_owned()),
                Some(s) => segm::parse(s),
            };
            Ok(Self { id, image_id, category, crowd, segm })
        };
        f().map_err(|e| format!("annotation{}: {e}", id_text(&v)))
    }
}

/// Parses the JSON and lists the images that have candidate annotations.
pub(crate) fn open(spec: &DatasetSpec, report: &mut SkipReport) -> Result<(Vec<SampleEntry>, CocoIndex)> {
    let (json_path, image_root) = locate(spec)?;
    let bytes = std::fs::read(&json_path).map_err(|e| Error::Io { path: json_path.display().to_string(), source: e })?;
    let raw: RawCoco = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Invalid(format!("{}: not a COCO instances JSON: {e}", json_path.display())))?;
    drop(bytes);
    let src = json_path.display();
    let Some(Items(raw_images)) = raw.images else {
        return Err(Error::Invalid(format!("{src}: no `images` list")));
    };
    let Some(Items(raw_anns)) = raw.annotations else {
        return Err(Error::Invalid(format!("{src}: no `annotations` list")));
    };

    let mut images = Vec::with_capacity(raw_images.len());
    let mut index_of: HashMap<u64, usize> = HashMap::with_capacity(raw_images.len());
    for im in raw_images {
        match im {
            Ok(im) if index_of.contains_key(&im.id) => {
                report.record(SkipReason::Malformed, format!("{src}: duplicate image id {}", im.id))
            }
            Ok(im) => {
                index_of.insert(im.id, images.len());
                images.push(im);
            }
            Err(m) => report.record(SkipReason::Malformed, format!("{src}: {m}")),
        }
    }
    let mut anns = Vec::with_capacity(raw_anns.len());
    let mut by_image: Vec<Vec<usize>> = vec![Vec::new(); images.len()];
    for a in raw_anns {
        let a = match a {
            Ok(a) => a,
            Err(m) => {
                report.record(SkipReason::Malformed, format!("{src}: {m}"));
                continue;
            }
        };
        let Some(&img) = index_of.get(&a.image_id) else {
            report.record(SkipReason::UnknownImage, format!("{src}: annotation {} has unknown image_id {}", a.id, a.image_id));
            continue;
        };
        if a.crowd && !spec.include_crowd {
            report.record(SkipReason::Crowd, format!("annotation {} is a crowd annotation", a.id));
            continue;
        }
        by_image[img].push(anns.len());
        anns.push(a);
    }
    let entries = images
        .iter()
        .enumerate()
        .filter(|(i, _)| !by_image[*i].is_empty())
        .map(|(i, im)| SampleEntry {
            name: im.file_name.clone(),
            image_path: image_root.join(&im.file_name),
            source: Source::Coco { image: i },
        })
        .collect();
    Ok((entries, CocoIndex { inner: Arc::new(Inner { images, anns, by_image }) }))
}

/// The JSON file and the image folder of a spec.
fn locate(spec: &DatasetSpec) -> Result<(PathBuf, PathBuf)> {
    let root = &spec.root;
    if let Some(a) = &spec.annotations {
        let images = if root.is_file() { parent(root) } else { root.clone() };
        return Ok((a.clone(), images));
    }
    if root.is_file() {
        return Ok((root.clone(), parent(root)));
    }
    let jsons: Vec<String> = list_dir(root)?.into_iter().filter(|n| n.ends_with(".json")).collect();
    match jsons.as_slice() {
        [one] => Ok((root.join(one), root.clone())),
        [] => Err(Error::Invalid(format!(
            "coco dataset {}: no annotations JSON given and none in the folder",
            root.display()
        ))),
        many => Err(Error::Invalid(format!(
            "coco dataset {}: several JSON files ({}); name the instances JSON in `annotations`",
            root.display(),
            many.join(", ")
        ))),
    }
}

fn parent(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

impl CocoIndex {
    pub(crate) fn load(
        &self,
        entry: &SampleEntry,
        image: usize,
        selection: &mut Selection,
        report: &mut SkipReport,
    ) -> std::result::Result<Sample, Skip> {
        let inner = &*self.inner;
        let im = &inner.images[image];
        let (w, h) = image_dims(&entry.image_path)?;
        if (w, h) != (im.width, im.height) {
            return Err(Skip::new(
                SkipReason::SizeMismatch,
                format!(
                    "{}: image file is {w}x{h} but the JSON says {}x{} (image id {})",
                    entry.name, im.width, im.height, im.id
                ),
            ));
        }
        let cands = &inner.by_image[image];
        let objects = select_objects(cands.len(), selection, report, &entry.name, |k| {
            let a = &inner.anns[cands[k]];
            let what = format!("{}: annotation {}", entry.name, a.id);
            let segm = a.segm.as_ref().map_err(|m| Skip::new(SkipReason::Malformed, format!("{what}: {m}")))?;
            let mut obj = ObjectMask::new(a.id, segm::decode(segm, h, w, &what)?);
            obj.crowd = a.crowd;
            obj.category = a.category;
            Ok(obj)
        });
        Ok(Sample::of(entry, w, h, objects))
    }
}
