//! Dataset readers shared by training and evaluation.
//!
//! One API over four on-disk layouts ([`DatasetFormat`]): every reader *lists* its samples
//! cheaply when opened ([`Dataset::open`]) and decodes a sample's masks only when asked
//! ([`Dataset::load`]), choosing at most N objects before decoding ([`Selection`]; training
//! uses at most 3). The result is a [`Sample`]: image path and size plus one row-major binary
//! [`ObjectMask`] per object. The image itself is decoded on demand ([`Sample::load_image`]).
//!
//! **Malformed input never aborts the dataset and never panics**: a missing image file, a mask
//! of the wrong size, an RLE whose runs do not cover `h * w` pixels, an undecodable JSON field,
//! an empty object... is skipped, counted by [`SkipReason`] and described (first few messages)
//! in the caller's [`SkipReport`]. Only an unusable *dataset* (root folder missing, COCO JSON
//! not parseable at all) is an `Err` from [`Dataset::open`].
//!
//! # Layouts
//!
//! * **`sam2`** (aliases `davis`, `mose`): `JPEGImages/<seq>/<frame>.jpg` and
//!   `Annotations/<seq>/<frame>.png`, as SAM 2's training loaders, DAVIS 2017 and MOSE use
//!   (DAVIS's `JPEGImages/480p/...` level is found automatically when both folders have it).
//!   Every annotated frame is a sample named `<seq>/<frame>` (a one-frame video, the paper's
//!   23-domain protocol); frames without an annotation PNG are not samples. The PNG's stored
//!   values are object ids: palette **indices** of a mode-P PNG (not its colours), or the values
//!   of an 8/16-bit grayscale PNG. 0 is background. In 8-bit PNGs **255 is DAVIS's "void"**:
//!   never an object, returned as [`Sample::ignore`] (evaluation excludes those pixels, as the
//!   DAVIS toolkit does); 16-bit PNGs have no void value. Colour (RGB) annotations are refused.
//! * **`coco`**: a COCO instances JSON ([`DatasetSpec::annotations`], or `root` itself when it
//!   is the JSON file) and images at `root/<file_name>` (`root` defaults to the JSON's folder).
//!   Segmentations: polygons (a list of `[x0, y0, x1, y1, ...]` parts, rasterised exactly as
//!   pycocotools `frPyObjects` + `merge` + `decode`), uncompressed RLE (`counts` a list of
//!   ints) and compressed RLE (`counts` a string), column-major as pycocotools. The samples are
//!   the images with at least one usable annotation; `id` is the annotation id and `category`
//!   its `category_id`. **Crowd** annotations (`iscrowd: 1`) are skipped by default (counted
//!   once, as [`SkipReason::Crowd`], when the dataset is opened), since they mark groups, not
//!   objects; with [`DatasetSpec::include_crowd`] they are objects with `crowd = true`.
//!   Annotations whose `image_id` is not in `images` are counted when the dataset is opened.
//!   An RLE's `size` must equal the image's `[height, width]` (pycocotools would decode it at
//!   its own size). A polygon part with fewer than 3 points is dropped (pycocotools reads a
//!   4-number first part as a box, a known quirk we do not copy); an odd number of coordinates
//!   or a non-number makes the annotation malformed.
//! * **`sa1b`**: SA-1B's `sa_<n>.jpg` + `sa_<n>.json` pairs in one folder; the JSON holds
//!   `image: {file_name, height, width}` and `annotations: [{id, segmentation: {size, counts},
//!   ...}]` with compressed RLE (uncompressed RLE and polygons are accepted too). The image is
//!   `image.file_name` next to the JSON (else `<stem>.jpg`); the sample is named after the
//!   JSON's stem. JSONs are parsed lazily, when the sample is loaded.
//! * **`mask_folder`**: `images/<name>.<ext>` (jpg, jpeg, png, bmp, webp, tif, tiff) with one
//!   PNG per object, either `masks/<name>/<k>.png` or `masks/<name>_<k>.png` (`<k>` digits,
//!   split at the *last* underscore). The object id is `<k>`; in the nested layout a
//!   non-numeric file stem gets its 1-based position in the sorted folder. A pixel is
//!   foreground when its stored value is non-zero (palette index, gray value, or any RGB
//!   channel; with alpha, not fully transparent). Images without masks and masks without an
//!   image are counted when the dataset is opened.
//!
//! # Conventions
//!
//! Masks are row-major `Vec<bool>`, pixel `(x, y)` at `y * width + x`, at the image's full
//! resolution. Objects are returned in ascending id order (sam2, mask_folder) or annotation
//! order (coco, sa1b), also after a random [`Selection`]. [`ObjectMask::area`] is counted from
//! the decoded mask (COCO's `area` field is not trusted). Objects of area 0 are skipped.
//!
//! # What is counted
//!
//! Object-level problems count once per object; sample-level problems (missing or unreadable
//! image, unreadable annotation PNG, size mismatch of a whole sample) once per sample, and a
//! sample left with no usable object also counts one [`SkipReason::NoObjects`]. Problems found
//! when listing count once per [`Dataset::open`]; problems found when loading count on each
//! [`Dataset::load`] (so repeated epochs count again: keep one report per pass). With a
//! [`Selection`] limit, only the objects examined to fill it are checked.
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::image_io::RgbImage;
use crate::rng::Pcg32;
use crate::{Error, Result};

pub mod augment;
mod coco;
pub mod label_png;
mod mask_folder;
pub mod procedural;
pub mod rle;
mod sa1b;
mod sam2;
mod segm;
mod skip;

pub use label_png::{decode_binary_mask_png, decode_label_png, LabelMap};
pub use rle::Rle;
pub use sam2::VOID_ID as DAVIS_VOID_ID;

pub use skip::{SkipReason, SkipReport, MAX_SKIP_MESSAGES};

/// The on-disk layout of a dataset (see the module docs). Parses from, and (de)serialises
/// as, `"sam2"` (aliases `"davis"`, `"mose"`), `"coco"`, `"sa1b"` (`"sa-1b"`) and
/// `"mask_folder"` (`"mask-folder"`, `"masks"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetFormat {
    #[serde(alias = "davis", alias = "mose")]
    Sam2,
    Coco,
    #[serde(alias = "sa-1b", alias = "sa_1b")]
    Sa1b,
    #[serde(alias = "mask-folder", alias = "masks")]
    MaskFolder,
}

impl DatasetFormat {
    pub const ALL: [DatasetFormat; 4] = [Self::Sam2, Self::Coco, Self::Sa1b, Self::MaskFolder];

    /// The canonical name (`"sam2"`, `"coco"`, `"sa1b"`, `"mask_folder"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sam2 => "sam2",
            Self::Coco => "coco",
            Self::Sa1b => "sa1b",
            Self::MaskFolder => "mask_folder",
        }
    }

    /// Guesses the layout of `path`: a `.json` file is COCO; a folder with `JPEGImages/` and
    /// `Annotations/` is sam2; with `images/` and `masks/`, mask_folder; with `sa_*.json`,
    /// sa1b. `None` when nothing matches.
    pub fn detect(path: impl AsRef<Path>) -> Option<Self> {
        let p = path.as_ref();
        if p.is_file() {
            return (p.extension().and_then(|e| e.to_str()) == Some("json")).then_some(Self::Coco);
        }
        if p.join("JPEGImages").is_dir() && p.join("Annotations").is_dir() {
            return Some(Self::Sam2);
        }
        if p.join("images").is_dir() && p.join("masks").is_dir() {
            return Some(Self::MaskFolder);
        }
        let names = list_dir(p).ok()?;
        if names
            .iter()
            .any(|n| n.starts_with("sa_") && n.ends_with(".json"))
        {
            return Some(Self::Sa1b);
        }
        None
    }
}

impl fmt::Display for DatasetFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sam2" | "davis" | "mose" => Ok(Self::Sam2),
            "coco" => Ok(Self::Coco),
            "sa1b" | "sa-1b" | "sa_1b" => Ok(Self::Sa1b),
            "mask_folder" | "mask-folder" | "masks" => Ok(Self::MaskFolder),
            _ => Err(Error::Invalid(format!(
                "unknown dataset format {s:?}: expected sam2 (davis, mose), coco, sa1b or mask_folder"
            ))),
        }
    }
}

/// Where a dataset is and how to read it; embeddable in a training / evaluation config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSpec {
    pub format: DatasetFormat,
    /// The dataset folder (sam2, sa1b, mask_folder); for coco, the image folder (or the JSON).
    pub root: PathBuf,
    /// coco only: the instances JSON (default: `root` when it is a `.json` file, else the only
    /// `.json` file in `root`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<PathBuf>,
    /// coco only: keep `iscrowd` annotations as objects (default: skip them).
    #[serde(default)]
    pub include_crowd: bool,
}

impl DatasetSpec {
    pub fn new(format: DatasetFormat, root: impl Into<PathBuf>) -> Self {
        Self {
            format,
            root: root.into(),
            annotations: None,
            include_crowd: false,
        }
    }
}

/// One object of a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMask {
    /// Object id: the pixel value (sam2), annotation id (coco, sa1b), mask number (mask_folder).
    /// 64-bit because COCO's crowd annotation ids exceed `u32`.
    pub id: u64,
    /// Row-major, `width * height` of the sample.
    pub mask: Vec<bool>,
    /// Number of `true` pixels (> 0).
    pub area: usize,
    /// COCO `iscrowd` (only with [`DatasetSpec::include_crowd`]); false elsewhere.
    pub crowd: bool,
    /// COCO `category_id`, when given.
    pub category: Option<u64>,
}

impl ObjectMask {
    pub fn new(id: u64, mask: Vec<bool>) -> Self {
        let area = mask.iter().filter(|&&v| v).count();
        Self {
            id,
            mask,
            area,
            crowd: false,
            category: None,
        }
    }

    /// Tight box `[x_min, y_min, x_max, y_max]`, inclusive pixel indices; `None` if empty.
    pub fn bbox(&self, width: usize) -> Option<[usize; 4]> {
        let mut b: Option<[usize; 4]> = None;
        for (i, _) in self.mask.iter().enumerate().filter(|(_, &v)| v) {
            let (x, y) = (i % width, i / width);
            b = Some(match b {
                None => [x, y, x, y],
                Some([x0, y0, x1, y1]) => [x0.min(x), y0.min(y), x1.max(x), y1.max(y)],
            });
        }
        b
    }
}

/// A loaded sample: the image's location and size and its objects' masks.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Unique within the dataset: `<seq>/<frame>` (sam2), COCO `file_name`, SA-1B JSON stem,
    /// mask-folder image stem.
    pub name: String,
    pub image_path: PathBuf,
    pub width: usize,
    pub height: usize,
    pub objects: Vec<ObjectMask>,
    /// Pixels to ignore in evaluation (DAVIS void, value 255), row-major; `None` when there are
    /// none.
    pub ignore: Option<Vec<bool>>,
    /// The video a sam2 frame belongs to.
    pub sequence: Option<String>,
}

impl Sample {
    /// A sample of `entry` with its decoded objects; no void mask, no sequence.
    pub(crate) fn of(
        entry: &SampleEntry,
        width: usize,
        height: usize,
        objects: Vec<ObjectMask>,
    ) -> Self {
        Sample {
            name: entry.name.clone(),
            image_path: entry.image_path.clone(),
            width,
            height,
            objects,
            ignore: None,
            sequence: None,
        }
    }

    /// Decodes the image (any format `image_io` reads) and checks it has the sample's size.
    pub fn load_image(&self) -> Result<RgbImage> {
        let img = RgbImage::open(&self.image_path)?;
        if (img.width, img.height) != (self.width, self.height) {
            return Err(Error::Invalid(format!(
                "{}: image is {}x{} but its masks are {}x{}",
                self.image_path.display(),
                img.width,
                img.height,
                self.width,
                self.height
            )));
        }
        Ok(img)
    }
}

/// Which objects of a sample to decode.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Every object.
    All,
    /// The first `n` usable objects (ascending id or annotation order).
    First(usize),
    /// At most `max` usable objects, drawn uniformly without replacement with `rng` (its state
    /// advances, so one `Selection` gives a reproducible sequence over an epoch). The chosen
    /// objects are returned in their natural order.
    Random { max: usize, rng: Pcg32 },
}

impl Selection {
    /// Random selection of at most `max` objects, seeded.
    pub fn random(max: usize, seed: u64) -> Self {
        Self::Random {
            max,
            rng: Pcg32::new(seed),
        }
    }

    /// The order in which to try `n` candidates and how many usable ones to keep.
    pub(crate) fn plan(&mut self, n: usize) -> (Vec<usize>, usize) {
        match self {
            Selection::All => ((0..n).collect(), n),
            Selection::First(k) => ((0..n).collect(), *k),
            Selection::Random { max, rng } => {
                let mut order: Vec<usize> = (0..n).collect();
                // Fisher-Yates (the modulo bias is below 1e-6 for any realistic n).
                for i in (1..n).rev() {
                    let j = (rng.next_u32() as usize) % (i + 1);
                    order.swap(i, j);
                }
                (order, *max)
            }
        }
    }
}

/// One listed sample, before its masks are decoded.
#[derive(Debug, Clone)]
pub struct SampleEntry {
    pub name: String,
    /// The image file (for sa1b, the expected `<stem>.jpg`; the JSON's `file_name` wins at load).
    pub image_path: PathBuf,
    pub(crate) source: Source,
}

#[derive(Debug, Clone)]
pub(crate) enum Source {
    Sam2 {
        annotation: PathBuf,
        sequence: String,
    },
    Coco {
        image: usize,
    },
    Sa1b {
        json: PathBuf,
    },
    MaskFolder {
        masks: Vec<(u64, PathBuf)>,
    },
}

/// A skip of one item: why, and a message naming it.
#[derive(Debug, Clone)]
pub(crate) struct Skip {
    pub reason: SkipReason,
    pub message: String,
}

impl Skip {
    pub fn new(reason: SkipReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// A listed dataset of any [`DatasetFormat`].
#[derive(Debug, Clone)]
pub struct Dataset {
    format: DatasetFormat,
    entries: Vec<SampleEntry>,
    coco: Option<coco::CocoIndex>,
}

impl Dataset {
    /// Lists the samples (no mask is decoded; the COCO JSON is parsed). Problems found while
    /// listing are recorded in `report`; only an unusable dataset is an error.
    pub fn open(spec: &DatasetSpec, report: &mut SkipReport) -> Result<Self> {
        let (entries, coco) = match spec.format {
            DatasetFormat::Sam2 => (sam2::list(&spec.root, report)?, None),
            DatasetFormat::Coco => {
                let (entries, index) = coco::open(spec, report)?;
                (entries, Some(index))
            }
            DatasetFormat::Sa1b => (sa1b::list(&spec.root)?, None),
            DatasetFormat::MaskFolder => (mask_folder::list(&spec.root, report)?, None),
        };
        Ok(Self {
            format: spec.format,
            entries,
            coco,
        })
    }

    pub fn format(&self) -> DatasetFormat {
        self.format
    }

    /// Number of listed samples (some may still be skipped when loaded).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[SampleEntry] {
        &self.entries
    }

    /// Decodes sample `index` with the objects `selection` picks. `None` when the sample is
    /// skipped (the reason is recorded in `report`) or `index >= len()`.
    pub fn load(
        &self,
        index: usize,
        selection: &mut Selection,
        report: &mut SkipReport,
    ) -> Option<Sample> {
        let entry = self.entries.get(index)?;
        let result = match &entry.source {
            Source::Sam2 {
                annotation,
                sequence,
            } => sam2::load(entry, annotation, sequence, selection, report),
            Source::Coco { image } => match &self.coco {
                Some(index) => index.load(entry, *image, selection, report),
                None => Err(Skip::new(
                    SkipReason::Malformed,
                    "COCO entry without a COCO index",
                )),
            },
            Source::Sa1b { json } => sa1b::load(entry, json, selection, report),
            Source::MaskFolder { masks } => mask_folder::load(entry, masks, selection, report),
        };
        match result {
            Ok(sample) if sample.objects.is_empty() => {
                report.record(
                    SkipReason::NoObjects,
                    format!("{}: no usable object", entry.name),
                );
                None
            }
            Ok(sample) => Some(sample),
            Err(skip) => {
                report.record(skip.reason, skip.message);
                None
            }
        }
    }

    /// Loads every sample with all objects and returns what was skipped (a data check).
    pub fn check(&self) -> SkipReport {
        let mut report = SkipReport::new();
        for i in 0..self.len() {
            self.load(i, &mut Selection::All, &mut report);
        }
        report
    }
}

// ---------------------------------------------------------------- helpers shared by readers

/// Sorted file names of a folder.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::Io {
        path: dir.display().to_string(),
        source: e,
    })?;
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    Ok(names)
}

pub(crate) const IMAGE_EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff", "JPG", "JPEG",
];

/// `(stem, extension)` of a file name.
pub(crate) fn split_ext(name: &str) -> Option<(&str, &str)> {
    let dot = name.rfind('.')?;
    (dot > 0).then(|| (&name[..dot], &name[dot + 1..]))
}

/// Width and height from the image file's header, without decoding it.
pub(crate) fn image_dims(path: &Path) -> std::result::Result<(usize, usize), Skip> {
    if !path.is_file() {
        return Err(Skip::new(
            SkipReason::MissingImage,
            format!("{}: image file not found", path.display()),
        ));
    }
    let dims = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| e.to_string())
        .and_then(|r| r.into_dimensions().map_err(|e| e.to_string()));
    match dims {
        Ok((w, h)) if w > 0 && h > 0 => Ok((w as usize, h as usize)),
        Ok((w, h)) => Err(Skip::new(
            SkipReason::UnreadableImage,
            format!("{}: image is {w}x{h}", path.display()),
        )),
        Err(e) => Err(Skip::new(
            SkipReason::UnreadableImage,
            format!("{}: cannot read the image header: {e}", path.display()),
        )),
    }
}

/// Reads a whole file, a missing or unreadable one being an `UnreadableMask` skip.
pub(crate) fn read_mask_file(path: &Path) -> std::result::Result<Vec<u8>, Skip> {
    std::fs::read(path).map_err(|e| {
        Skip::new(
            SkipReason::UnreadableMask,
            format!("{}: {e}", path.display()),
        )
    })
}

/// Applies `selection` to `n` candidates: tries them in the planned order with `decode`
/// (which returns `Err` for an unusable one, recorded in `report`), keeps up to the limit of
/// usable ones, and returns them in candidate order.
pub(crate) fn select_objects(
    n: usize,
    selection: &mut Selection,
    report: &mut SkipReport,
    sample: &str,
    mut decode: impl FnMut(usize) -> std::result::Result<ObjectMask, Skip>,
) -> Vec<ObjectMask> {
    let (order, limit) = selection.plan(n);
    if limit > crate::limits::MAX_OBJECTS && n > crate::limits::MAX_OBJECTS {
        report.record(
            SkipReason::TooManyObjects,
            format!("{sample}: {n} objects, only {} are decoded (the limit)", crate::limits::MAX_OBJECTS),
        );
    }
    let limit = limit.min(crate::limits::MAX_OBJECTS);
    let mut kept: Vec<(usize, ObjectMask)> = Vec::new();
    for i in order {
        if kept.len() >= limit {
            break;
        }
        match decode(i) {
            Ok(obj) if obj.area == 0 => {
                report.record(
                    SkipReason::EmptyObject,
                    format!("{sample}: object {} has area 0", obj.id),
                );
            }
            Ok(obj) => kept.push((i, obj)),
            Err(skip) => report.record(skip.reason, skip.message),
        }
    }
    kept.sort_by_key(|(i, _)| *i);
    kept.into_iter().map(|(_, o)| o).collect()
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn objects_beyond_the_limit_are_counted_not_decoded() {
        let mut report = SkipReport::new();
        let mut decoded = 0;
        let n = crate::limits::MAX_OBJECTS + 10;
        let objs = select_objects(n, &mut Selection::All, &mut report, "s", |i| {
            decoded += 1;
            Ok(ObjectMask::new(i as u64, vec![true]))
        });
        assert_eq!(objs.len(), crate::limits::MAX_OBJECTS);
        assert_eq!(decoded, crate::limits::MAX_OBJECTS);
        assert_eq!(report.count(SkipReason::TooManyObjects), 1);
        assert!(report.messages[0].contains("4106 objects, only 4096"), "{:?}", report.messages);
    }
}
