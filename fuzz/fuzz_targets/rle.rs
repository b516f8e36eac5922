//! The RLE codec: any counts string decodes or is refused; a mask built from the input
//! round-trips through the encoder, the COCO string and the decoder unchanged; polygons
//! from the input rasterise inside their canvas.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ruac_core::data::rle::{decode_counts_string, encode_counts_string, Rle};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (h, w) = (data[0] as usize % 24 + 1, data[1] as usize % 24 + 1);
    let rest = &data[2..];
    // 1. Arbitrary text as a counts string.
    if let Ok(s) = std::str::from_utf8(rest) {
        if let Ok(counts) = decode_counts_string(s) {
            // Re-encoding what decoded gives a string that decodes to the same counts.
            assert_eq!(decode_counts_string(&encode_counts_string(&counts)).unwrap(), counts);
        }
        if let Ok(r) = Rle::from_coco_string(s, h, w) {
            assert_eq!(r.decode().len(), h * w);
            assert!(r.area() <= h * w);
        }
    }
    // 2. Round trip of a mask taken from the input bits.
    let mask: Vec<bool> = (0..h * w).map(|i| rest.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 == 1)).collect();
    let r = Rle::from_mask(&mask, h, w).expect("valid canvas");
    let s = r.to_coco_string();
    let back = Rle::from_coco_string(&s, h, w).expect("own encoding decodes");
    assert_eq!(back.counts, r.counts);
    assert_eq!(back.decode(), mask);
    assert_eq!(back.area(), mask.iter().filter(|&&v| v).count());
    // 3. The input's bytes as polygon coordinates (f32 pairs).
    let xy: Vec<f64> = rest.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect();
    let xy = &xy[..xy.len() & !1];
    if let Ok(p) = Rle::from_polygon(xy, h, w) {
        assert_eq!(p.decode().len(), h * w);
        assert_eq!(p.counts.iter().map(|&c| c as usize).sum::<usize>(), h * w);
    }
});
