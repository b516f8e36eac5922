//! Images through `image_io` (PNG, JPEG, BMP, GIF, TIFF, WebP by content), then each
//! family's preprocessing at a small input size.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ruac_core::image_io::{Preprocessing, RgbImage};

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = RgbImage::decode(data) {
        assert_eq!(img.data.len(), img.width * img.height * 3);
        // Resizing cost grows with the image: preprocess only small ones.
        if img.width * img.height <= 1 << 16 {
            for p in [Preprocessing::Sam2, Preprocessing::Sam1, Preprocessing::LiteMedSam] {
                let v = p.apply(&img, 32);
                assert!(v.iter().all(|x| x.is_finite()));
            }
        }
    }
});
