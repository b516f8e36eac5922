//! Annotation PNGs as stored values: palette indices, 1/2/4/8/16-bit grey, binary masks of
//! any colour model.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ruac_core::data::label_png::{decode_binary_mask_png, decode_label_png, decode_raw_png};

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = decode_raw_png(data) {
        assert!(raw.samples.len() >= raw.width * raw.height);
    }
    if let Ok(l) = decode_label_png(data) {
        assert_eq!(l.values.len(), l.width * l.height);
    }
    if let Ok((w, h, m)) = decode_binary_mask_png(data) {
        assert_eq!(m.len(), w * h);
    }
});
