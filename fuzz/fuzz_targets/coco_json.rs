//! COCO instances JSON (images, annotations, polygons, uncompressed and compressed RLE),
//! through the dataset reader: the bytes are the JSON of a folder whose images are the
//! committed fixtures (32x24), every listed sample is loaded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ruac_core::data::{Dataset, DatasetFormat, DatasetSpec, Selection, SkipReport};
use std::path::PathBuf;
use std::sync::OnceLock;

fn folder() -> &'static PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let d = ruac_fuzz::scratch("coco");
        let src = ruac_fuzz::fixtures().join("data/coco/images");
        for f in ["a.jpg", "b.jpg", "c.jpg", "d.jpg"] {
            std::fs::copy(src.join(f), d.join(f)).expect("fixture image");
        }
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let json = folder().join("instances.json");
    std::fs::write(&json, data).expect("scratch write");
    let mut spec = DatasetSpec::new(DatasetFormat::Coco, &json);
    spec.include_crowd = data.first().is_some_and(|b| b & 1 == 1);
    let mut report = SkipReport::new();
    if let Ok(ds) = Dataset::open(&spec, &mut report) {
        for i in 0..ds.len().min(16) {
            if let Some(s) = ds.load(i, &mut Selection::All, &mut report) {
                for o in &s.objects {
                    assert_eq!(o.mask.len(), s.width * s.height);
                }
            }
        }
    }
});
