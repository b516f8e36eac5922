//! `.npy` arrays of floats (NumPy format versions 1 to 3): `trainer eval`'s saved
//! predictions. The header is bounded ([`MAX_HEADER_BYTES`]) and the shape it claims must
//! match the bytes that follow exactly, checked before the array is allocated.
use crate::limits::{self, MAX_HEADER_BYTES};
use crate::{Error, Result};

/// A float array read from `.npy`: its shape and values (f32; f64 files are converted).
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

fn bad(name: &str, what: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{name}: not a readable .npy file ({what})"))
}

/// Parses `.npy` bytes holding `float32` or `float64` (either byte order), C order.
pub fn parse_npy(bytes: &[u8], name: &str) -> Result<NpyArray> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad(name, "no \\x93NUMPY magic"));
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(bad(name, format!("format version {v}"))),
    };
    if hlen > MAX_HEADER_BYTES {
        return Err(bad(name, format!("header of {hlen} bytes, over the limit of {MAX_HEADER_BYTES}")));
    }
    let header = bytes
        .get(start..start + hlen)
        .ok_or_else(|| bad(name, format!("header claims {hlen} bytes, the file is {} bytes", bytes.len())))?;
    let header = std::str::from_utf8(header).map_err(|_| bad(name, "header is not text"))?;
    let descr = dict_value(header, "descr").ok_or_else(|| bad(name, "no 'descr' in the header"))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let (esize, big) = match descr {
        "<f4" | "=f4" | "f4" => (4, false),
        ">f4" => (4, true),
        "<f8" | "=f8" | "f8" => (8, false),
        ">f8" => (8, true),
        other => return Err(bad(name, format!("dtype {other}; float32 or float64 expected"))),
    };
    match dict_value(header, "fortran_order") {
        Some("False") => {}
        Some("True") => return Err(bad(name, "Fortran order; save it with np.ascontiguousarray")),
        _ => return Err(bad(name, "no 'fortran_order' in the header")),
    }
    let shape_text = dict_value(header, "shape").ok_or_else(|| bad(name, "no 'shape' in the header"))?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| bad(name, format!("shape {shape_text} is not a tuple")))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| bad(name, format!("shape {shape_text} is not a tuple of sizes")))?;
    if shape.len() > 32 {
        return Err(bad(name, format!("{} dimensions", shape.len())));
    }
    let (elems, nbytes) = limits::tensor_size(&shape, esize, name)?;
    let body = &bytes[start + hlen..];
    if body.len() != nbytes {
        return Err(bad(name, format!("shape {shape:?} needs {nbytes} bytes of data, the file holds {}", body.len())));
    }
    let mut data = Vec::with_capacity(elems);
    for c in body.chunks_exact(esize) {
        data.push(match (esize, big) {
            (4, false) => f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            (4, true) => f32::from_be_bytes([c[0], c[1], c[2], c[3]]),
            (_, false) => f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32,
            (_, true) => f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32,
        });
    }
    Ok(NpyArray { shape, data })
}

/// Reads a `.npy` file, its size checked against the limits before it is read.
pub fn read_npy(path: &std::path::Path) -> Result<NpyArray> {
    let io = |e| Error::Io { path: path.display().to_string(), source: e };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > (limits::MAX_TENSOR_BYTES + MAX_HEADER_BYTES + 12) as u64 {
        return Err(bad(&path.display().to_string(), format!("{len} bytes, over the size limit")));
    }
    parse_npy(&std::fs::read(path).map_err(io)?, &path.display().to_string())
}

/// The text after `'key':` up to the next top-level `,` or `}` of a Python dict literal.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let i = header.find(&format!("'{key}'")).or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = header[i + key.len() + 2..].trim_start().strip_prefix(':')?.trim_start();
    let mut depth = 0i32;
    for (j, ch) in rest.char_indices() {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth <= 0 => return Some(rest[..j].trim()),
            _ => {}
        }
    }
    None
}

/// Writes a float32 C-order `.npy` (format 1.0) of `shape`.
pub fn to_npy_bytes(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    let pad = 64 - (10 + header.len() + 1) % 64;
    header.push_str(&" ".repeat(pad % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    data.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_numpy_headers() {
        let b = to_npy_bytes(&[2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.5]);
        assert_eq!((b.len() - 6 * 4) % 64, 0, "header padded to 64 bytes as numpy does");
        let a = parse_npy(&b, "x.npy").unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data[5], 5.5);
        // np.save(np.zeros(2, '>f8')) header form, scalars, a 1-tuple.
        let mut h = b"\x93NUMPY\x01\x00".to_vec();
        let text = "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }\n";
        h.extend_from_slice(&(text.len() as u16).to_le_bytes());
        h.extend_from_slice(text.as_bytes());
        h.extend_from_slice(&1.5f64.to_be_bytes());
        h.extend_from_slice(&(-2.0f64).to_be_bytes());
        assert_eq!(parse_npy(&h, "b.npy").unwrap().data, vec![1.5, -2.0]);
        assert_eq!(parse_npy(&to_npy_bytes(&[], &[7.0]), "s").unwrap().shape, Vec::<usize>::new());
    }

    fn replace(b: &[u8], from: &str, to: &str) -> Vec<u8> {
        let i = b.windows(from.len()).position(|w| w == from.as_bytes()).unwrap();
        [&b[..i], to.as_bytes(), &b[i + from.len()..]].concat()
    }

    #[test]
    fn claims_beyond_the_data_are_refused_before_allocation() {
        // The header claims 100000 x 100000 x 3 x 7 with 24 bytes of data.
        let b = replace(&to_npy_bytes(&[2, 3], &[0.0; 6]), "(2, 3)", "(100000, 100000, 3, 7)");
        let e = parse_npy(&b, "big.npy").unwrap_err().to_string();
        assert!(e.contains("big.npy") && e.contains("over the limit"), "{e}");
        let mut t = to_npy_bytes(&[4], &[1.0; 4]);
        t.truncate(t.len() - 1);
        assert!(parse_npy(&t, "t.npy").unwrap_err().to_string().contains("needs 16 bytes"));
        let small = replace(&to_npy_bytes(&[2, 3], &[0.0; 6]), "(2, 3)", "(2, 4)");
        assert!(parse_npy(&small, "s.npy").unwrap_err().to_string().contains("needs 32 bytes of data, the file holds 24"));
        assert!(parse_npy(b"\x93NUMPY\x02\x00\xff\xff\xff\x7f", "h").unwrap_err().to_string().contains("header"));
        assert!(parse_npy(b"PK\x03\x04.........", "z").unwrap_err().to_string().contains("magic"));
        let ints = replace(&to_npy_bytes(&[1], &[0.0]), "<f4", "<i4");
        assert!(parse_npy(&ints, "i").unwrap_err().to_string().contains("dtype <i4"));
    }
}
