//! COCO-style `segmentation` values (polygons, uncompressed RLE, compressed RLE): parsing from
//! JSON and decoding to row-major masks, shared by the COCO and SA-1B readers.
use serde_json::Value;

use super::rle::{decode_counts_string, Rle};
use super::{Skip, SkipReason};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Segm {
    /// Polygon parts `[x0, y0, x1, y1, ...]`, merged (union) like pycocotools `annToRLE`.
    Polygons(Vec<Vec<f64>>),
    /// Uncompressed RLE.
    Counts { height: usize, width: usize, counts: Vec<u32> },
    /// Compressed RLE (the COCO counts string).
    String { height: usize, width: usize, counts: String },
}

/// A non-negative integer (integral floats accepted, as Python's json would give for `3.0`).
pub(crate) fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1.8e19).map(|f| f as u64))
}

/// `obj[key]` as a non-negative integer: `Ok(None)` when absent or null, `Err` when not one.
pub(crate) fn get_u64(obj: &Value, key: &str) -> Result<Option<u64>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => as_u64(v).map(Some).ok_or_else(|| format!("`{key}` is {v}, not a non-negative integer")),
    }
}

pub(crate) fn parse(v: &Value) -> Result<Segm, String> {
    match v {
        Value::Array(parts) => {
            let mut polys = Vec::with_capacity(parts.len());
            for (i, part) in parts.iter().enumerate() {
                let Value::Array(coords) = part else {
                    return Err(format!("polygon part {i} is not a list of numbers"));
                };
                let mut xy = Vec::with_capacity(coords.len());
                for (j, c) in coords.iter().enumerate() {
                    xy.push(c.as_f64().ok_or_else(|| format!("polygon part {i} has a non-number {c} at {j}"))?);
                }
                if !xy.len().is_multiple_of(2) {
                    return Err(format!("polygon part {i} has an odd number of coordinates ({})", xy.len()));
                }
                polys.push(xy);
            }
            Ok(Segm::Polygons(polys))
        }
        Value::Object(o) => {
            let size = o.get("size").ok_or("RLE has no `size`")?;
            let dims: Vec<u64> = match size {
                Value::Array(a) if a.len() == 2 => a.iter().filter_map(as_u64).collect(),
                _ => vec![],
            };
            if dims.len() != 2 {
                return Err(format!("RLE `size` is {size}, not [height, width]"));
            }
            let (height, width) = (dims[0] as usize, dims[1] as usize);
            match o.get("counts") {
                Some(Value::String(s)) => Ok(Segm::String { height, width, counts: s.clone() }),
                Some(Value::Array(a)) => {
                    let mut counts = Vec::with_capacity(a.len());
                    for (j, c) in a.iter().enumerate() {
                        let n = as_u64(c)
                            .filter(|&n| n <= u32::MAX as u64)
                            .ok_or_else(|| format!("RLE counts[{j}] is {c}, not a run length"))?;
                        counts.push(n as u32);
                    }
                    Ok(Segm::Counts { height, width, counts })
                }
                Some(other) => Err(format!("RLE `counts` is {}, not a list or a string", type_name(other))),
                None => Err("RLE has no `counts`".into()),
            }
        }
        Value::Null => Err("`segmentation` is null".into()),
        other => Err(format!("`segmentation` is {}, not polygons or RLE", type_name(other))),
    }
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Decodes to a row-major `height x width` mask. `what` names the object in messages.
pub(crate) fn decode(segm: &Segm, height: usize, width: usize, what: &str) -> Result<Vec<bool>, Skip> {
    let size_check = |h: usize, w: usize| {
        if (h, w) != (height, width) {
            Err(Skip::new(
                SkipReason::SizeMismatch,
                format!("{what}: RLE size [{h}, {w}] differs from the image's [{height}, {width}]"),
            ))
        } else {
            Ok(())
        }
    };
    let rle_len = |e: crate::Error| Skip::new(SkipReason::RleLength, format!("{what}: {}", strip(e)));
    match segm {
        Segm::Counts { height: h, width: w, counts } => {
            size_check(*h, *w)?;
            Ok(Rle::new(*h, *w, counts.clone()).map_err(rle_len)?.decode())
        }
        Segm::String { height: h, width: w, counts } => {
            size_check(*h, *w)?;
            let c = decode_counts_string(counts)
                .map_err(|e| Skip::new(SkipReason::Malformed, format!("{what}: {}", strip(e))))?;
            Ok(Rle::new(*h, *w, c).map_err(rle_len)?.decode())
        }
        Segm::Polygons(parts) => {
            let mut mask = vec![false; height * width];
            for xy in parts.iter().filter(|p| p.len() >= 6) {
                Rle::from_polygon(xy, height, width)
                    .map_err(|e| Skip::new(SkipReason::Malformed, format!("{what}: {}", strip(e))))?
                    .decode_into(&mut mask);
            }
            Ok(mask)
        }
    }
}

/// The message of an `Error::Invalid` without the "invalid argument: " prefix.
fn strip(e: crate::Error) -> String {
    match e {
        crate::Error::Invalid(m) => m,
        other => other.to_string(),
    }
}
