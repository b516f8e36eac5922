//! SA-1B annotation JSON (image record, compressed RLE, also polygons and uncompressed
//! RLE), through the dataset reader next to the committed 30x20 fixture image.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ruac_core::data::{Dataset, DatasetFormat, DatasetSpec, Selection, SkipReport};
use std::path::PathBuf;
use std::sync::OnceLock;

fn folder() -> &'static PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let d = ruac_fuzz::scratch("sa1b");
        std::fs::copy(ruac_fuzz::fixtures().join("data/sa1b/sa_1.jpg"), d.join("sa_1.jpg")).expect("fixture image");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let d = folder();
    std::fs::write(d.join("sa_1.json"), data).expect("scratch write");
    let spec = DatasetSpec::new(DatasetFormat::Sa1b, d);
    let mut report = SkipReport::new();
    if let Ok(ds) = Dataset::open(&spec, &mut report) {
        for i in 0..ds.len() {
            if let Some(s) = ds.load(i, &mut Selection::All, &mut report) {
                for o in &s.objects {
                    assert_eq!(o.mask.len(), s.width * s.height);
                }
            }
        }
    }
});
