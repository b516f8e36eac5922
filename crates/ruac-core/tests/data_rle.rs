//! COCO RLE and polygon rasterisation against pycocotools (fixtures from
//! tools/make_data_fixtures.py), pixel for pixel and byte for byte.
use std::path::PathBuf;

use ruac_core::data::rle::{decode_counts_string, encode_counts_string, Rle};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data").join(name);
    serde_json::from_slice(&std::fs::read(&p).expect("fixture readable")).expect("fixture JSON")
}

fn usize_of(v: &Value) -> usize {
    v.as_u64().expect("integer") as usize
}

/// Row-major mask from uncompressed column-major counts, written independently of `Rle`.
fn mask_from_counts(counts: &[u32], h: usize, w: usize) -> Vec<bool> {
    let mut m = vec![false; h * w];
    let mut pos = 0;
    for (i, &c) in counts.iter().enumerate() {
        for j in pos..pos + c as usize {
            if i % 2 == 1 {
                m[(j % h) * w + j / h] = true;
            }
        }
        pos += c as usize;
    }
    assert_eq!(pos, h * w, "reference counts cover the mask");
    m
}

#[test]
fn compressed_strings_match_pycocotools() {
    let cases = fixture("rle.json");
    let cases = cases["cases"].as_array().unwrap();
    assert!(cases.len() >= 60);
    for (i, c) in cases.iter().enumerate() {
        let (h, w) = (usize_of(&c["h"]), usize_of(&c["w"]));
        let s = c["string"].as_str().unwrap();
        let counts: Vec<u32> = c["counts"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        // decode: string -> runs -> mask
        assert_eq!(decode_counts_string(s).unwrap(), counts, "case {i}: runs of {s:?}");
        let rle = Rle::from_coco_string(s, h, w).unwrap();
        let mask = rle.decode();
        assert_eq!(mask, mask_from_counts(&counts, h, w), "case {i}: mask");
        assert_eq!(rle.area(), mask.iter().filter(|&&v| v).count());
        // encode: mask -> runs -> string, byte for byte
        let back = Rle::from_mask(&mask, h, w).unwrap();
        assert_eq!(back.counts, counts, "case {i}: re-encoded runs");
        assert_eq!(back.to_coco_string(), s, "case {i}: re-encoded string");
        assert_eq!(encode_counts_string(&counts), s);
    }
}

#[test]
fn polygons_match_pycocotools_pixel_exactly() {
    let cases = fixture("polygons.json");
    let cases = cases["cases"].as_array().unwrap();
    assert!(cases.len() >= 240);
    let mut nonempty = 0;
    let mut bad = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let (h, w) = (usize_of(&c["h"]), usize_of(&c["w"]));
        let mut mask = vec![false; h * w];
        for part in c["polygons"].as_array().unwrap() {
            let xy: Vec<f64> = part.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            Rle::from_polygon(&xy, h, w).unwrap().decode_into(&mut mask);
        }
        let expected = Rle::from_coco_string(c["counts"].as_str().unwrap(), h, w).unwrap().decode();
        let diff = mask.iter().zip(&expected).filter(|(a, b)| a != b).count();
        let area = mask.iter().filter(|&&v| v).count();
        let ours = Rle::from_mask(&mask, h, w).unwrap().to_coco_string();
        if diff > 0 || area != usize_of(&c["area"]) || ours != c["counts"].as_str().unwrap() {
            bad.push(format!("case {i} ({h}x{w}): {diff} pixels differ, area {area} vs {}", c["area"]));
        }
        if area > 0 {
            nonempty += 1;
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert!(nonempty > 200, "the stress test should mostly draw visible polygons ({nonempty})");
}

#[test]
fn single_polygon_rle_equals_pycocotools_runs() {
    // frPyObjects([[0,0,3,0,3,3,0,3]], 5, 5)[0]["counts"] == b"032000:" (a 3x3 square).
    let r = Rle::from_polygon(&[0.0, 0.0, 3.0, 0.0, 3.0, 3.0, 0.0, 3.0], 5, 5).unwrap();
    assert_eq!(r.to_coco_string(), "032000:");
    assert_eq!(r.counts, vec![0, 3, 2, 3, 2, 3, 12]);
}

#[test]
fn malformed_rle_is_an_error_not_a_panic() {
    for s in ["", "0", "1", "~", " 1", "0P", "00000000000000000000000000"] {
        let _ = Rle::from_coco_string(s, 3, 4); // never panics
    }
    assert!(Rle::from_coco_string("~", 3, 4).is_err());
    assert!(Rle::from_coco_string("0P", 3, 4).is_err());
    assert!(Rle::new(3, 4, vec![5, 5]).is_err(), "10 != 12 pixels");
    assert!(Rle::new(0, 4, vec![]).is_err());
    assert!(Rle::from_polygon(&[0.0, 0.0, 1e12, 0.0, 1.0, 1.0], 4, 4).is_err());
    // a run that goes negative after the delta step: 4th run = -10 + 2nd run (1)
    let neg = format!("{}F", encode_counts_string(&[5, 1, 1]));
    assert!(decode_counts_string(&neg).is_err());
    assert_eq!(decode_counts_string(&format!("{}F", encode_counts_string(&[5, 11, 1]))).unwrap(), vec![5, 11, 1, 1]);
}

/// Found by fuzzing (fuzz/README.md, `rle`): a triangle with coordinates near the old
/// +-1e7 bound on a 10x9 canvas took seconds to rasterise (the walk is proportional to the
/// boundary's length). Coordinates far outside the canvas and boundaries circling it many
/// times are refused at once.
#[test]
fn far_out_or_endless_polygons_are_refused_quickly() {
    use ruac_core::data::rle::Rle;
    let t = std::time::Instant::now();
    let far = [-9.9e6, 3.0, 9.9e6, 4.0, 5.0, 9.9e6];
    let e = Rle::from_polygon(&far, 9, 10).unwrap_err().to_string();
    assert!(e.contains("image sizes outside the 10x9 canvas"), "{e}");
    // Inside the margin, but a boundary going back and forth 200 times.
    let mut zigzag = vec![];
    for i in 0..200 {
        zigzag.extend_from_slice(&[0.0, (i % 9) as f64, 30.0, (i % 9) as f64 + 0.5]);
    }
    let e = Rle::from_polygon(&zigzag, 9, 10).unwrap_err().to_string();
    assert!(e.contains("times the 10x9 canvas's perimeter"), "{e}");
    assert!(t.elapsed() < std::time::Duration::from_millis(100), "{:?}", t.elapsed());
    // A polygon partly outside (within the margin) still rasterises.
    assert!(Rle::from_polygon(&[-5.0, -5.0, 15.0, 2.0, 3.0, 14.0], 9, 10).is_ok());
}
