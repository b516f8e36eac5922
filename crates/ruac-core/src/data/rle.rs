//! COCO run-length encoding and polygon rasterisation, bit-compatible with pycocotools
//! (`common/maskApi.c`: `rleEncode`, `rleDecode`, `rleToString`, `rleFrString`, `rleFrPoly`).
//!
//! Conventions (the COCO ones):
//! * an [`Rle`] runs over the pixels in **column-major** (Fortran) order, pixel `(x, y)` at
//!   position `x * height + y`;
//! * `counts` alternate background / foreground runs and **start with a background run**
//!   (which is 0 when the first pixel is foreground);
//! * masks given to or returned from this module are **row-major** `Vec<bool>` / `&[bool]`,
//!   pixel `(x, y)` at `y * width + x`, like every mask in `ruac-core`.
use crate::limits::MAX_IMAGE_PIXELS;
use crate::{Error, Result};

/// Largest absolute polygon coordinate accepted (pixels). pycocotools casts `5 * x + 0.5` to a
/// C `int`, so larger values are undefined behaviour there; real annotations are far below.
pub const MAX_POLYGON_COORD: f64 = 1.0e7;

/// How far outside the canvas a polygon coordinate may lie, in image sizes (the larger side).
pub const POLYGON_MARGIN: f64 = 4.0;
/// Longest polygon boundary accepted, in canvas perimeters.
pub const POLYGON_MAX_TURNS: f64 = 64.0;

/// A run-length encoded binary mask of `height x width` pixels (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rle {
    pub height: usize,
    pub width: usize,
    pub counts: Vec<u32>,
}

impl Rle {
    /// Wraps run lengths, checking that they cover exactly `height * width` pixels.
    pub fn new(height: usize, width: usize, counts: Vec<u32>) -> Result<Self> {
        check_canvas(height, width)?;
        let total: u64 = counts.iter().map(|&c| c as u64).sum();
        if total != (height * width) as u64 {
            return Err(Error::Invalid(format!(
                "RLE runs cover {total} pixels but the mask is {height}x{width} = {} pixels",
                height * width
            )));
        }
        Ok(Self { height, width, counts })
    }

    /// Encodes a row-major mask (pycocotools `encode`).
    pub fn from_mask(mask: &[bool], height: usize, width: usize) -> Result<Self> {
        check_canvas(height, width)?;
        if mask.len() != height * width {
            return Err(Error::Invalid(format!("mask has {} pixels, expected {height}x{width}", mask.len())));
        }
        let mut counts = Vec::new();
        let (mut prev, mut run) = (false, 0u32);
        for x in 0..width {
            for y in 0..height {
                let v = mask[y * width + x];
                if v != prev {
                    counts.push(run);
                    run = 0;
                    prev = v;
                }
                run += 1;
            }
        }
        counts.push(run);
        Ok(Self { height, width, counts })
    }

    /// Decodes a compressed COCO counts string (pycocotools `rleFrString`) and checks its
    /// total length.
    pub fn from_coco_string(s: &str, height: usize, width: usize) -> Result<Self> {
        Self::new(height, width, decode_counts_string(s)?)
    }

    /// The compressed COCO counts string (pycocotools `rleToString`), byte for byte.
    pub fn to_coco_string(&self) -> String {
        encode_counts_string(&self.counts)
    }

    /// Rasterises one polygon `[x0, y0, x1, y1, ...]` exactly as pycocotools
    /// `frPyObjects(poly, h, w)` (`rleFrPoly`) does. Coordinates are in pixels with pixel
    /// centres at integers; parts outside the canvas are clipped.
    pub fn from_polygon(xy: &[f64], height: usize, width: usize) -> Result<Self> {
        check_canvas(height, width)?;
        if !xy.len().is_multiple_of(2) {
            return Err(Error::Invalid(format!("polygon has an odd number of coordinates ({})", xy.len())));
        }
        if xy.len() < 6 {
            return Err(Error::Invalid(format!("polygon has {} points, at least 3 are needed", xy.len() / 2)));
        }
        if let Some(v) = xy.iter().find(|v| !v.is_finite() || v.abs() > MAX_POLYGON_COORD) {
            return Err(Error::Invalid(format!("polygon coordinate {v} is not finite or beyond +-{MAX_POLYGON_COORD}")));
        }
        // Rasterising walks the boundary on a 1/5-pixel grid, so its cost is the boundary's
        // length: coordinates far outside the canvas, or a boundary circling it many times,
        // would cost seconds for a few bytes of JSON (found by fuzzing).
        let dim = height.max(width) as f64;
        let margin = POLYGON_MARGIN * dim;
        if let Some(v) = xy.iter().find(|v| **v < -margin || **v > dim + margin) {
            return Err(Error::Invalid(format!(
                "polygon coordinate {v} lies more than {POLYGON_MARGIN} image sizes outside the {width}x{height} canvas"
            )));
        }
        let k = xy.len() / 2;
        let length: f64 = (0..k)
            .map(|j| {
                let (a, b) = (j, (j + 1) % k);
                (xy[2 * b] - xy[2 * a]).abs().max((xy[2 * b + 1] - xy[2 * a + 1]).abs())
            })
            .sum();
        let budget = POLYGON_MAX_TURNS * 2.0 * (height + width) as f64;
        if length > budget {
            return Err(Error::Invalid(format!(
                "polygon boundary is {length:.0} pixels long, over {POLYGON_MAX_TURNS} times the {width}x{height} canvas's perimeter"
            )));
        }
        Ok(Self { height, width, counts: polygon_counts(xy, height, width) })
    }

    /// Number of foreground pixels.
    pub fn area(&self) -> usize {
        self.counts.iter().skip(1).step_by(2).map(|&c| c as usize).sum()
    }

    /// The row-major mask (pycocotools `decode`, transposed to row-major).
    pub fn decode(&self) -> Vec<bool> {
        let mut out = vec![false; self.height * self.width];
        self.decode_into(&mut out);
        out
    }

    /// ORs this mask into a row-major buffer of `height * width` pixels.
    pub fn decode_into(&self, out: &mut [bool]) {
        let (h, w) = (self.height, self.width);
        assert_eq!(out.len(), h * w, "decode_into: buffer size");
        let mut pos = 0usize;
        for (i, &c) in self.counts.iter().enumerate() {
            let end = (pos + c as usize).min(h * w);
            if i % 2 == 1 {
                for j in pos..end {
                    out[(j % h) * w + j / h] = true;
                }
            }
            pos = end;
        }
    }
}

fn check_canvas(height: usize, width: usize) -> Result<()> {
    if height == 0 || width == 0 || height.saturating_mul(width) > MAX_IMAGE_PIXELS {
        return Err(Error::Invalid(format!(
            "mask size {height}x{width} is empty or larger than {MAX_IMAGE_PIXELS} pixels"
        )));
    }
    Ok(())
}

/// Parses a compressed COCO counts string into run lengths (pycocotools `rleFrString`: 6 bits
/// per character, `'0'..='o'`, 5 value bits and a continuation bit, sign-extended, runs after
/// the third one stored as differences to the run two before). Does not check the total.
pub fn decode_counts_string(s: &str) -> Result<Vec<u32>> {
    let bytes = s.as_bytes();
    let mut counts: Vec<u32> = Vec::with_capacity(bytes.len());
    let mut p = 0;
    while p < bytes.len() {
        let (mut x, mut k, mut more) = (0i64, 0u32, true);
        while more {
            let Some(&b) = bytes.get(p) else {
                return Err(Error::Invalid(format!("RLE string ends inside a number (run {})", counts.len())));
            };
            if !(48..=111).contains(&b) {
                return Err(Error::Invalid(format!(
                    "RLE string has character {:?} at {p}, outside '0'..='o'",
                    char::from(b)
                )));
            }
            if k >= 12 {
                return Err(Error::Invalid(format!("RLE string has a number over 12 characters at {p}")));
            }
            let c = (b - 48) as i64;
            x |= (c & 0x1f) << (5 * k);
            more = c & 0x20 != 0;
            p += 1;
            k += 1;
            if !more && c & 0x10 != 0 {
                x |= -1i64 << (5 * k);
            }
        }
        let m = counts.len();
        if m > 2 {
            x += counts[m - 2] as i64;
        }
        if x < 0 || x > u32::MAX as i64 {
            return Err(Error::Invalid(format!("RLE string decodes to an invalid run length {x} (run {m})")));
        }
        counts.push(x as u32);
    }
    Ok(counts)
}

/// Compressed COCO counts string of run lengths (pycocotools `rleToString`).
pub fn encode_counts_string(counts: &[u32]) -> String {
    let mut s = String::with_capacity(counts.len() * 2);
    for (i, &c) in counts.iter().enumerate() {
        let mut x = c as i64;
        if i > 2 {
            x -= counts[i - 2] as i64;
        }
        loop {
            let mut ch = (x & 0x1f) as u8;
            x >>= 5;
            let more = if ch & 0x10 != 0 { x != -1 } else { x != 0 };
            if more {
                ch |= 0x20;
            }
            s.push(char::from(ch + 48));
            if !more {
                break;
            }
        }
    }
    s
}

/// `rleFrPoly` of maskApi.c, step by step (same integer / double arithmetic, same order), with
/// the dense boundary streamed instead of stored. Inputs are validated by the caller.
fn polygon_counts(xy: &[f64], h: usize, w: usize) -> Vec<u32> {
    const SCALE: f64 = 5.0;
    let k = xy.len() / 2;
    // Upsample: vertices on the 1/5 pixel grid, `(int)(scale * v + .5)` (C truncation).
    let mut x: Vec<i64> = (0..k).map(|j| (SCALE * xy[2 * j] + 0.5) as i64).collect();
    let mut y: Vec<i64> = (0..k).map(|j| (SCALE * xy[2 * j + 1] + 0.5) as i64).collect();
    x.push(x[0]);
    y.push(y[0]);

    // Walk the dense boundary; wherever it moves to another upsampled column, keep the point
    // if that column is a pixel centre, with the y of the boundary there (downsampled, ceil).
    let mut a: Vec<u64> = Vec::new();
    let mut prev: Option<(i64, i64)> = None;
    let mut visit = |u: i64, v: i64| {
        if let Some((pu, pv)) = prev {
            if u != pu {
                let mut xd = (if u < pu { u } else { u - 1 }) as f64;
                xd = (xd + 0.5) / SCALE - 0.5;
                if !(xd.floor() != xd || xd < 0.0 || xd > (w - 1) as f64) {
                    let mut yd = (if v < pv { v } else { pv }) as f64;
                    yd = (yd + 0.5) / SCALE - 0.5;
                    if yd < 0.0 {
                        yd = 0.0;
                    } else if yd > h as f64 {
                        yd = h as f64;
                    }
                    yd = yd.ceil();
                    a.push(xd as u64 * h as u64 + yd as u64);
                }
            }
        }
        prev = Some((u, v));
    };
    for j in 0..k {
        let (mut xs, mut xe, mut ys, mut ye) = (x[j], x[j + 1], y[j], y[j + 1]);
        let dx = (xe - xs).abs();
        let dy = (ys - ye).abs();
        if dx == 0 && dy == 0 {
            // C computes 0/0 here; the single point's v is never read (its u equals both
            // neighbours'), so any v does.
            visit(xs, ys);
            continue;
        }
        let flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
        if flip {
            std::mem::swap(&mut xs, &mut xe);
            std::mem::swap(&mut ys, &mut ye);
        }
        if dx >= dy {
            let s = (ye - ys) as f64 / dx as f64;
            for d in 0..=dx {
                let t = if flip { dx - d } else { d };
                visit(t + xs, (ys as f64 + s * t as f64 + 0.5) as i64);
            }
        } else {
            let s = (xe - xs) as f64 / dy as f64;
            for d in 0..=dy {
                let t = if flip { dy - d } else { d };
                visit((xs as f64 + s * t as f64 + 0.5) as i64, t + ys);
            }
        }
    }

    // Boundary points -> run lengths: sort, difference, and fold zero-length runs (a boundary
    // crossed twice at one pixel) into the next run, as `rleFrPoly` does.
    a.push((h * w) as u64);
    a.sort_unstable();
    let mut p = 0u64;
    for v in a.iter_mut() {
        let t = *v;
        *v -= p;
        p = t;
    }
    let mut b: Vec<u64> = Vec::with_capacity(a.len());
    b.push(a[0]);
    let mut j = 1;
    while j < a.len() {
        if a[j] > 0 {
            b.push(a[j]);
            j += 1;
        } else {
            j += 1;
            if j < a.len() {
                *b.last_mut().expect("b is never empty") += a[j];
                j += 1;
            }
        }
    }
    b.into_iter().map(|c| c as u32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_roundtrip_and_known_value() {
        // pycocotools: encode(np.ones((2, 2), np.uint8, order="F"))["counts"] == b"04".
        let r = Rle::new(2, 2, vec![4]).unwrap();
        assert_eq!(Rle::from_coco_string(&r.to_coco_string(), 2, 2).unwrap(), r);
        let r = Rle::new(2, 2, vec![0, 4]).unwrap();
        assert_eq!(r.to_coco_string(), "04");
        assert_eq!(r.decode(), vec![true; 4]);
        let counts = vec![3, 100_000, 2, 7, 1_000_000, 1, 0];
        let s = encode_counts_string(&counts);
        assert_eq!(decode_counts_string(&s).unwrap(), counts);
    }

    #[test]
    fn column_major() {
        // 2x3 mask, foreground at (x=1, y=0) only: column-major position 1*2+0 = 2.
        let r = Rle::new(2, 3, vec![2, 1, 3]).unwrap();
        assert_eq!(r.decode(), vec![false, true, false, false, false, false]);
        assert_eq!(Rle::from_mask(&r.decode(), 2, 3).unwrap(), r);
        assert_eq!(r.area(), 1);
    }

    #[test]
    fn bad_input() {
        assert!(Rle::new(2, 2, vec![1, 2]).is_err());
        assert!(decode_counts_string("0~").is_err());
        assert!(decode_counts_string("0P").is_err(), "dangling continuation");
        assert!(Rle::from_polygon(&[0.0, 0.0, 1.0, 1.0], 4, 4).is_err());
        assert!(Rle::from_polygon(&[0.0, 0.0, 1.0, f64::NAN, 2.0, 2.0], 4, 4).is_err());
        assert!(Rle::from_polygon(&[0.0, 0.0, 1.0, 1.0, 2.0], 4, 4).is_err());
    }

    #[test]
    fn square_polygon() {
        // pycocotools: frPyObjects([[0,0,3,0,3,3,0,3]], 5, 5) -> counts b'032000:', the 3x3
        // top-left pixels.
        let r = Rle::from_polygon(&[0.0, 0.0, 3.0, 0.0, 3.0, 3.0, 0.0, 3.0], 5, 5).unwrap();
        assert_eq!(r.to_coco_string(), "032000:");
        let m = r.decode();
        let expect: Vec<bool> = (0..25).map(|i| i % 5 < 3 && i / 5 < 3).collect();
        assert_eq!(m, expect);
    }
}
