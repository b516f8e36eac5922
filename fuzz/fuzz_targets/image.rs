//! Images through `image_io` (PNG, JPEG, BMP, GIF, TIFF, WebP by content), then each
//! family's preprocessing at a small input size.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ruac_core::image_io::{Preprocessing, RgbImage};

/// Decoding a legitimate 8192² image takes seconds; the one-second hang criterion applies to
/// images up to 4 MP (larger claims still go through the header checks).
const DECODE_PIXELS: u64 = 1 << 22;

fuzz_target!(|data: &[u8]| {
    let dims = image::ImageReader::new(std::io::Cursor::new(data)).with_guessed_format().ok().and_then(|r| r.into_dimensions().ok());
    if dims.is_some_and(|(w, h)| w as u64 * h as u64 > DECODE_PIXELS) {
        let _ = ruac_core::limits::check_claimed_pixels(dims.unwrap().0 as usize, dims.unwrap().1 as usize, data.len(), "image");
        return;
    }
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
