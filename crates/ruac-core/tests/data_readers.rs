//! The dataset readers on the tiny fixtures of tools/make_data_fixtures.py: masks equal the
//! pycocotools / numpy references pixel for pixel, and every malformed item is skipped and
//! counted, never a panic.
use std::path::{Path, PathBuf};

use ruac_core::data::{
    Dataset, DatasetFormat, DatasetSpec, ObjectMask, Sample, Selection, SkipReason, SkipReport, MAX_SKIP_MESSAGES,
};
use serde_json::Value;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data")
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(data_dir().join("expected.json")).unwrap()).unwrap()
}

/// Row-major mask from uncompressed column-major counts, independent of the crate's RLE code.
fn mask_from_counts(counts: &Value, h: usize, w: usize) -> Vec<bool> {
    let mut m = vec![false; h * w];
    let mut pos = 0;
    for (i, c) in counts.as_array().unwrap().iter().enumerate() {
        let c = c.as_u64().unwrap() as usize;
        if i % 2 == 1 {
            for j in pos..pos + c {
                m[(j % h) * w + j / h] = true;
            }
        }
        pos += c;
    }
    assert_eq!(pos, h * w);
    m
}

fn open(format: DatasetFormat, root: impl AsRef<Path>) -> (Dataset, SkipReport) {
    let mut report = SkipReport::new();
    let ds = Dataset::open(&DatasetSpec::new(format, root.as_ref()), &mut report).expect("dataset opens");
    (ds, report)
}

/// Loads every sample with all objects: (loaded samples, load-time report).
fn load_all(ds: &Dataset) -> (Vec<Sample>, SkipReport) {
    let mut report = SkipReport::new();
    let samples = (0..ds.len()).filter_map(|i| ds.load(i, &mut Selection::All, &mut report)).collect();
    (samples, report)
}

fn counts(report: &SkipReport) -> Vec<(SkipReason, usize)> {
    report.count_by_reason.iter().map(|(r, n)| (*r, *n)).collect()
}

/// Compares a sample's objects with the expected `[{id, area, counts}]`.
fn check_objects(sample: &Sample, exp: &Value) {
    let exp = exp["objects"].as_array().unwrap();
    let ids: Vec<u64> = sample.objects.iter().map(|o| o.id).collect();
    let exp_ids: Vec<u64> = exp.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, exp_ids, "{}: object ids", sample.name);
    for (o, e) in sample.objects.iter().zip(exp) {
        let m = mask_from_counts(&e["counts"], sample.height, sample.width);
        let diff = o.mask.iter().zip(&m).filter(|(a, b)| a != b).count();
        assert_eq!(diff, 0, "{}: object {} differs from the reference in {diff} pixels", sample.name, o.id);
        assert_eq!(o.area, e["area"].as_u64().unwrap() as usize, "{}: object {} area", sample.name, o.id);
        assert_eq!(o.mask.len(), sample.width * sample.height);
    }
}

fn by_name<'a>(samples: &'a [Sample], name: &str) -> &'a Sample {
    samples.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("sample {name} not loaded"))
}

#[test]
fn davis_palette_pngs() {
    let exp = expected();
    let (ds, open_report) = open(DatasetFormat::Sam2, data_dir().join("davis"));
    // cat/00002.png has no JPEG; bear/00003.jpg has no annotation (not a sample, not a skip)
    assert_eq!(counts(&open_report), vec![(SkipReason::MissingImage, 1)], "{open_report}");
    assert_eq!(ds.len(), 8);
    let (samples, report) = load_all(&ds);
    let names: Vec<&str> = samples.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["bear/00000", "bear/00001", "cat/00000", "cat/00001"]);
    assert_eq!(
        counts(&report),
        vec![
            (SkipReason::UnreadableMask, 1),  // bear/00002: truncated PNG
            (SkipReason::UnsupportedMask, 1), // cat/00004: RGB annotation
            (SkipReason::SizeMismatch, 1),    // cat/00003: 26x32 annotation on a 24x32 image
            (SkipReason::NoObjects, 1),       // cat/00005: background only
        ],
        "{report}"
    );
    assert!(report.messages.iter().any(|m| m.contains("bear/00002")), "{report}");
    for s in &samples {
        assert_eq!((s.width, s.height), (32, 24));
        check_objects(s, &exp["davis"][&s.name]);
        assert_eq!(s.sequence.as_deref(), Some(s.name.split('/').next().unwrap()));
        assert!(s.image_path.ends_with(format!("JPEGImages/{}.jpg", s.name)));
    }
    // 255 is void: not an object, returned as the ignore mask
    let b0 = by_name(&samples, "bear/00000");
    let ignore = b0.ignore.as_ref().expect("bear/00000 has void pixels");
    assert_eq!(*ignore, mask_from_counts(&exp["davis"]["bear/00000"]["ignore_counts"], 24, 32));
    assert!(b0.objects.iter().all(|o| o.id != 255));
    assert!(by_name(&samples, "bear/00001").ignore.is_none());
    // the image decodes at the sample's size
    let img = b0.load_image().unwrap();
    assert_eq!((img.width, img.height), (32, 24));
}

#[test]
fn coco_polygons_rle_crowd_and_malformed() {
    let exp = expected();
    let json = data_dir().join("coco/instances.json");
    let mut open_report = SkipReport::new();
    let mut spec = DatasetSpec::new(DatasetFormat::Coco, data_dir().join("coco/images"));
    spec.annotations = Some(json.clone());
    let ds = Dataset::open(&spec, &mut open_report).unwrap();
    assert_eq!(counts(&open_report), vec![(SkipReason::UnknownImage, 1), (SkipReason::Crowd, 1)], "{open_report}");
    // images 1-4 have candidate annotations; 5 has none and is not listed
    let names: Vec<&str> = ds.entries().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["a.jpg", "b.jpg", "missing.jpg", "c.jpg"]);
    let (samples, report) = load_all(&ds);
    assert_eq!(samples.len(), 2);
    assert_eq!(
        counts(&report),
        vec![
            (SkipReason::MissingImage, 1), // missing.jpg
            (SkipReason::SizeMismatch, 1), // 109: RLE size [25, 32]
            (SkipReason::RleLength, 1),    // 106: runs sum to h*w + 5
            (SkipReason::Malformed, 3),    // 110 bad polygon, 111 bad counts string, 113 no segmentation
            (SkipReason::EmptyObject, 1),  // 112: polygon outside the image
            (SkipReason::NoObjects, 1),    // c.jpg: nothing usable left
        ],
        "{report}"
    );
    let mut exp_a = exp["coco"]["a.jpg"].clone();
    exp_a["objects"].as_array_mut().unwrap().retain(|o| !o["crowd"].as_bool().unwrap());
    check_objects(by_name(&samples, "a.jpg"), &exp_a);
    check_objects(by_name(&samples, "b.jpg"), &exp["coco"]["b.jpg"]);
    let b = by_name(&samples, "b.jpg");
    assert_eq!(b.objects.iter().map(|o| o.category).collect::<Vec<_>>(), [Some(1), Some(3)]);
    assert!(b.objects.iter().all(|o| !o.crowd));

    // with crowd annotations: the crowd object (id beyond u32) is kept and flagged
    spec.include_crowd = true;
    let mut open_report = SkipReport::new();
    let ds = Dataset::open(&spec, &mut open_report).unwrap();
    assert_eq!(open_report.count(SkipReason::Crowd), 0);
    let a = ds.load(0, &mut Selection::All, &mut SkipReport::new()).unwrap();
    check_objects(&a, &exp["coco"]["a.jpg"]);
    let crowd = a.objects.iter().find(|o| o.id == 900_100_000_105).unwrap();
    assert!(crowd.crowd);

    // the JSON as root: images relative to its folder (here the JSON's folder has no images)
    let mut r = SkipReport::new();
    let ds = Dataset::open(&DatasetSpec::new(DatasetFormat::Coco, &json), &mut r).unwrap();
    assert_eq!(ds.len(), 4);
    assert!(ds.entries()[0].image_path.ends_with("coco/a.jpg"));
}

#[test]
fn sa1b_json_next_to_jpeg() {
    let exp = expected();
    let (ds, open_report) = open(DatasetFormat::Sa1b, data_dir().join("sa1b"));
    assert!(open_report.is_empty());
    assert_eq!(ds.len(), 3);
    let (samples, report) = load_all(&ds);
    assert_eq!(samples.len(), 1);
    assert_eq!(
        counts(&report),
        vec![
            (SkipReason::MissingImage, 1), // sa_2.jpg
            (SkipReason::SizeMismatch, 1), // annotation 13: size [24, 30]
            (SkipReason::RleLength, 1),    // annotation 14: runs cover 20x29
            (SkipReason::Malformed, 1),    // sa_3.json: no width, annotations not a list
        ],
        "{report}"
    );
    let s = &samples[0];
    assert_eq!((s.name.as_str(), s.width, s.height), ("sa_1", 30, 20));
    check_objects(s, &exp["sa1b"]["sa_1"]);
}

#[test]
fn mask_folder_nested_and_flat() {
    let exp = expected();
    let (ds, open_report) = open(DatasetFormat::MaskFolder, data_dir().join("mask_folder"));
    assert_eq!(counts(&open_report), vec![(SkipReason::NoObjects, 1)], "z.jpg has no masks: {open_report}");
    assert_eq!(ds.len(), 2);
    let (samples, report) = load_all(&ds);
    assert_eq!(
        counts(&report),
        vec![(SkipReason::SizeMismatch, 1), (SkipReason::EmptyObject, 1)],
        "y_2.png is 35 wide, y_3.png is empty: {report}"
    );
    check_objects(by_name(&samples, "x"), &exp["mask_folder"]["x"]);
    check_objects(by_name(&samples, "y"), &exp["mask_folder"]["y"]);
}

#[test]
fn selection_limits_objects() {
    let (ds, _) = open(DatasetFormat::Sam2, data_dir().join("davis"));
    let mut r = SkipReport::new();
    let s = ds.load(0, &mut Selection::First(1), &mut r).unwrap();
    assert_eq!(s.objects.iter().map(|o| o.id).collect::<Vec<_>>(), [1]);
    let s = ds.load(0, &mut Selection::random(3, 7), &mut r).unwrap();
    assert_eq!(s.objects.len(), 2, "at most 3 of 2");
    // random picks of 1 of 2 objects: reproducible for a seed and covering both ids
    let picks = |seed| {
        let mut sel = Selection::random(1, seed);
        (0..32).map(|_| ds.load(0, &mut sel, &mut SkipReport::new()).unwrap().objects[0].id).collect::<Vec<_>>()
    };
    let a = picks(3);
    assert_eq!(a, picks(3));
    assert!(a.contains(&1) && a.contains(&2), "{a:?}");
    // a limit is filled with usable objects: on COCO c.jpg-like samples the bad ones are passed
    let mut spec = DatasetSpec::new(DatasetFormat::Coco, data_dir().join("coco/images"));
    spec.annotations = Some(data_dir().join("coco/instances.json"));
    let ds = Dataset::open(&spec, &mut SkipReport::new()).unwrap();
    let mut r = SkipReport::new();
    let b = ds.load(1, &mut Selection::First(2), &mut r).unwrap();
    assert_eq!(b.objects.iter().map(|o| o.id).collect::<Vec<_>>(), [103, 104]);
    assert!(r.is_empty(), "the bad third annotation is not examined: {r}");
    assert!(ds.load(99, &mut Selection::All, &mut r).is_none());
}

#[test]
fn format_names_detection_and_serde() {
    for (s, f) in [
        ("sam2", DatasetFormat::Sam2),
        ("DAVIS", DatasetFormat::Sam2),
        ("mose", DatasetFormat::Sam2),
        ("coco", DatasetFormat::Coco),
        ("sa1b", DatasetFormat::Sa1b),
        ("sa-1b", DatasetFormat::Sa1b),
        ("mask_folder", DatasetFormat::MaskFolder),
        ("mask-folder", DatasetFormat::MaskFolder),
    ] {
        assert_eq!(s.parse::<DatasetFormat>().unwrap(), f, "{s}");
    }
    assert!("voc".parse::<DatasetFormat>().is_err());
    for f in DatasetFormat::ALL {
        let j = serde_json::to_string(&f).unwrap();
        assert_eq!(j, format!("\"{}\"", f.name()));
        assert_eq!(serde_json::from_str::<DatasetFormat>(&j).unwrap(), f);
        assert_eq!(f.to_string().parse::<DatasetFormat>().unwrap(), f);
    }
    assert_eq!(serde_json::from_str::<DatasetFormat>("\"davis\"").unwrap(), DatasetFormat::Sam2);
    let spec: DatasetSpec = serde_json::from_str(r#"{"format": "coco", "root": "x", "annotations": "x/i.json"}"#).unwrap();
    assert_eq!(spec.format, DatasetFormat::Coco);
    assert!(!spec.include_crowd);

    let d = data_dir();
    assert_eq!(DatasetFormat::detect(d.join("davis")), Some(DatasetFormat::Sam2));
    assert_eq!(DatasetFormat::detect(d.join("coco/instances.json")), Some(DatasetFormat::Coco));
    assert_eq!(DatasetFormat::detect(d.join("sa1b")), Some(DatasetFormat::Sa1b));
    assert_eq!(DatasetFormat::detect(d.join("mask_folder")), Some(DatasetFormat::MaskFolder));
    assert_eq!(DatasetFormat::detect(d.join("nope")), None);
}

#[test]
fn skip_report_counts_all_keeps_few_messages() {
    let mut r = SkipReport::new();
    for i in 0..50 {
        r.record(SkipReason::RleLength, format!("item {i}"));
    }
    r.record(SkipReason::Crowd, "not an error");
    assert_eq!(r.total(), 51);
    assert_eq!(r.count(SkipReason::RleLength), 50);
    assert_eq!(r.messages.len(), MAX_SKIP_MESSAGES);
    let text = r.to_string();
    assert!(text.starts_with("skipped 51 (50 rle_length, 1 crowd)"), "{text}");
    assert!(text.contains("... and 30 more"), "{text}");
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["count_by_reason"]["rle_length"], 50);
    let back: SkipReport = serde_json::from_value(j).unwrap();
    assert_eq!(back, r);
    let mut m = SkipReport::new();
    m.merge(&r);
    m.merge(&r);
    assert_eq!(m.count(SkipReason::RleLength), 100);
    assert_eq!(m.messages.len(), MAX_SKIP_MESSAGES);
}

#[test]
fn missing_roots_are_errors_not_panics() {
    let mut r = SkipReport::new();
    for f in DatasetFormat::ALL {
        assert!(Dataset::open(&DatasetSpec::new(f, data_dir().join("does-not-exist")), &mut r).is_err(), "{f}");
    }
    // a COCO file that is not JSON
    let p = data_dir().join("davis/Annotations/bear/00000.png");
    let spec = DatasetSpec { annotations: Some(p), ..DatasetSpec::new(DatasetFormat::Coco, data_dir()) };
    let e = Dataset::open(&spec, &mut r).unwrap_err().to_string();
    assert!(e.contains("not a COCO instances JSON"), "{e}");
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ruac-data-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn davis_480p_level_and_16bit_ids() {
    // JPEGImages/480p/<seq>/..., a 16-bit grayscale annotation with ids 300 and 255 (255 is an
    // ordinary id at 16 bits: only 8-bit PNGs have DAVIS's void value).
    let root = tmpdir("davis16");
    let (w, h) = (9u32, 7u32);
    std::fs::create_dir_all(root.join("JPEGImages/480p/s")).unwrap();
    std::fs::create_dir_all(root.join("Annotations/480p/s")).unwrap();
    image::RgbImage::from_pixel(w, h, image::Rgb([10, 20, 30])).save(root.join("JPEGImages/480p/s/00000.jpg")).unwrap();
    let lab = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(w, h, |x, y| {
        image::Luma([if x < 3 { 300 } else if y < 2 { 255 } else { 0 }])
    });
    lab.save(root.join("Annotations/480p/s/00000.png")).unwrap();
    let (ds, r) = open(DatasetFormat::Sam2, &root);
    assert!(r.is_empty(), "{r}");
    let s = ds.load(0, &mut Selection::All, &mut SkipReport::new()).unwrap();
    assert_eq!(s.name, "s/00000");
    assert_eq!(s.objects.iter().map(|o| (o.id, o.area)).collect::<Vec<_>>(), [(255, 12), (300, 21)]);
    assert!(s.ignore.is_none());
    let o: &ObjectMask = &s.objects[1];
    assert_eq!(o.bbox(s.width), Some([0, 0, 2, 6]));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn coco_garbage_records_are_counted() {
    let root = tmpdir("cocogarbage");
    let json = r#"{
      "images": [
        {"id": 1, "file_name": "a.png", "height": 4, "width": 5},
        {"id": 1, "file_name": "dup.png", "height": 4, "width": 5},
        {"id": "two", "file_name": "b.png", "height": 4, "width": 5},
        {"id": 3, "file_name": "big.png", "height": 4, "width": 6}
      ],
      "annotations": [
        {"id": 1, "image_id": 1, "segmentation": {"size": [4, 5], "counts": [2, 3, 15]}, "iscrowd": false},
        {"id": 2, "segmentation": [[0, 0, 1, 0, 1, 1]]},
        7,
        {"id": 3, "image_id": 1, "segmentation": {"size": [4, 5], "counts": [2, -3, 15]}},
        {"id": 4, "image_id": 1, "segmentation": {"size": [4], "counts": [20]}},
        {"id": 5, "image_id": 1, "segmentation": "polygon"},
        {"id": 6, "image_id": 1, "segmentation": [[0, 0, 3, 0]]},
        {"id": 7, "image_id": 3, "segmentation": [[0, 0, 3, 0, 3, 3]]}
      ]
    }"#;
    std::fs::write(root.join("instances.json"), json).unwrap();
    image::RgbImage::new(5, 4).save(root.join("a.png")).unwrap();
    image::RgbImage::new(5, 5).save(root.join("big.png")).unwrap(); // JSON says 6x4
    let mut r = SkipReport::new();
    let ds = Dataset::open(&DatasetSpec::new(DatasetFormat::Coco, &root), &mut r).unwrap();
    // duplicate image id, non-integer id, annotation without image_id, a non-object
    assert_eq!(counts(&r), vec![(SkipReason::Malformed, 4)], "{r}");
    let (samples, r) = load_all(&ds);
    assert_eq!(samples.len(), 1);
    assert_eq!(samples[0].objects.len(), 1);
    assert_eq!(samples[0].objects[0].area, 3);
    // 3 negative run, 4 bad size, 5 not polygons/RLE: malformed; 6 a 2-point polygon
    // (dropped, so empty); big.png: size mismatch with the JSON
    assert_eq!(
        counts(&r),
        vec![(SkipReason::SizeMismatch, 1), (SkipReason::Malformed, 3), (SkipReason::EmptyObject, 1)],
        "{r}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}
