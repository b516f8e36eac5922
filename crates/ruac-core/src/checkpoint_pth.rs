//! PyTorch `.pt` / `.pth` archives (zip + pickle) from any `Read + Seek` source: a file or
//! the browser's bytes, one code path. The pickle is interpreted by candle's opcode reader,
//! which executes no code, after [`check_pickle`] has bounded what it would build: every
//! length it would allocate, the objects that memo copies multiply, and the nesting depth.
//! Each tensor's claimed size is checked against the limits and against the archive entry
//! that holds it before its buffer is allocated.
use std::collections::HashMap;
use std::io::{Read, Seek};

use candle_core::{Device, Tensor};

use crate::limits::{self, MAX_HEADER_BYTES, MAX_PICKLE_DEPTH, MAX_PICKLE_OBJECTS, MAX_TENSORS};
use crate::{Error, Result};

fn bad(name: &str, what: impl std::fmt::Display) -> Error {
    Error::CheckpointFormat { path: name.to_string(), reason: format!("not a readable PyTorch checkpoint ({what})") }
}

/// Reads the state dict of a PyTorch zip archive: the dict under `"model"` (official SAM 2.1)
/// or a bare one (SAM 1 `.pth`).
pub(crate) fn read_pth<R: Read + Seek>(source: R, name: &str) -> Result<HashMap<String, Tensor>> {
    use candle_core::pickle::{Object, Stack};
    let mut zip = zip::ZipArchive::new(source).map_err(|e| bad(name, e))?;
    if zip.len() > MAX_TENSORS + 16 {
        return Err(bad(name, format!("{} archive entries, over the limit of {MAX_TENSORS} tensors", zip.len())));
    }
    let pkl = zip
        .file_names()
        .filter_map(|f| f.ok().map(|f| f.into_owned()))
        .find(|f| f.ends_with("data.pkl"))
        .ok_or_else(|| bad(name, "no data.pkl in the archive"))?;
    let dir = std::path::PathBuf::from(pkl.trim_end_matches(".pkl"));
    let pickle = {
        let entry = zip.by_name(&pkl).map_err(|e| bad(name, e))?;
        let mut buf = Vec::new();
        entry.take(MAX_HEADER_BYTES as u64 + 1).read_to_end(&mut buf).map_err(|e| bad(name, format!("data.pkl: {e}")))?;
        if buf.len() > MAX_HEADER_BYTES {
            return Err(bad(name, format!("data.pkl is over the {MAX_HEADER_BYTES}-byte limit")));
        }
        buf
    };
    check_pickle(&pickle).map_err(|e| bad(name, e))?;
    let mut stack = Stack::empty();
    stack.read_loop(&mut std::io::Cursor::new(&pickle)).map_err(|e| bad(name, e))?;
    let obj = stack.finalize().map_err(|e| bad(name, e))?;
    let Object::Dict(entries) = obj else { return Err(bad(name, "the pickle is not a dict")) };
    // {"model": state_dict} or the state dict itself.
    let model_key = Object::Unicode("model".into());
    let entries = match entries.iter().position(|(k, _)| *k == model_key) {
        Some(i) => match entries.into_iter().nth(i).map(|(_, v)| v) {
            Some(Object::Dict(kv)) => kv,
            _ => return Err(bad(name, "\"model\" is not a state dict")),
        },
        None => entries,
    };
    let mut tensors = HashMap::new();
    for (key, value) in entries {
        let info = match value.into_tensor_info(key, &dir) {
            Ok(Some(info)) => info,
            _ => continue, // not a tensor (e.g. a version number)
        };
        if tensors.len() >= MAX_TENSORS {
            return Err(bad(name, format!("more than {MAX_TENSORS} tensors")));
        }
        let layout = &info.layout;
        let fortran = layout.is_fortran_contiguous();
        if !layout.is_contiguous() && !fortran {
            return Err(bad(name, format!("tensor {} is stored non-contiguously", info.name)));
        }
        let esize = info.dtype.size_in_bytes();
        let what = format!("tensor {}", info.name);
        let (_, nbytes) = limits::tensor_size(layout.dims(), esize, &what)?;
        let skip = layout
            .start_offset()
            .checked_mul(esize)
            .filter(|s| *s <= limits::MAX_TENSOR_BYTES)
            .ok_or_else(|| bad(name, format!("{what} has an offset of {} elements", layout.start_offset())))?;
        let mut reader = zip.by_name(&info.path).map_err(|e| bad(name, format!("{what}: {e}")))?;
        // The archive's own record of the entry's size: a shape claiming more is refused
        // before the buffer exists (read_exact below still catches an entry that lies).
        let held = reader.size();
        if (skip as u64).saturating_add(nbytes as u64) > held {
            return Err(bad(name, format!("{what} claims {nbytes} bytes at offset {skip} but its storage holds {held}")));
        }
        std::io::copy(&mut reader.by_ref().take(skip as u64), &mut std::io::sink())
            .map_err(|e| bad(name, format!("{what}: {e}")))?;
        let rank = layout.shape().rank();
        let mut raw = vec![0u8; nbytes];
        reader.read_exact(&mut raw).map_err(|e| bad(name, format!("{what} is truncated ({e})")))?;
        let t = if rank > 1 && fortran {
            let rev: Vec<usize> = layout.dims().iter().rev().cloned().collect();
            let t = Tensor::from_raw_buffer(&raw, info.dtype, &rev, &Device::Cpu)?;
            t.permute((0..rank).rev().collect::<Vec<_>>())?
        } else {
            Tensor::from_raw_buffer(&raw, info.dtype, layout.dims(), &Device::Cpu)?
        };
        tensors.insert(info.name.clone(), t);
    }
    if tensors.is_empty() {
        return Err(Error::CheckpointFormat { path: name.to_string(), reason: "no tensors found in the pickled state dict".into() });
    }
    Ok(tensors)
}

/// Walks the pickle's opcodes (the subset candle's reader knows) without building anything,
/// tracking for every stack item and memo slot how many objects it holds and how deep it
/// nests. Refuses lengths past the end of the data, more than [`MAX_PICKLE_OBJECTS`] objects
/// (memo gets copy whole trees, so `get, get, tuple2, put` doubles a tree in 8 bytes) and
/// nesting deeper than [`MAX_PICKLE_DEPTH`]. Opcodes it does not know are left to candle,
/// which refuses them.
pub fn check_pickle(data: &[u8]) -> std::result::Result<(), String> {
    #[derive(Clone, Copy)]
    enum Item {
        Mark,
        Obj { n: u64, depth: u32 },
    }
    let leaf = Item::Obj { n: 1, depth: 1 };
    let mut stack: Vec<Item> = Vec::new();
    let mut memo: HashMap<u32, (u64, u32)> = HashMap::new();
    let mut pos = 0usize;
    let take = |pos: &mut usize, n: usize| -> std::result::Result<&[u8], String> {
        let end = pos.checked_add(n).filter(|&e| e <= data.len()).ok_or_else(|| {
            format!("the pickle claims {n} bytes at offset {} but only {} remain", *pos, data.len() - (*pos).min(data.len()))
        })?;
        let s = &data[*pos..end];
        *pos = end;
        Ok(s)
    };
    let u32_at = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    fn pop(stack: &mut Vec<Item>) -> std::result::Result<(u64, u32), String> {
        match stack.pop() {
            Some(Item::Obj { n, depth }) => Ok((n, depth)),
            _ => Err("malformed pickle (stack underflow)".into()),
        }
    }
    // Pops down to the mark: (objects, depth) of what was above it.
    fn pop_mark(stack: &mut Vec<Item>) -> std::result::Result<(u64, u32), String> {
        let (mut n, mut d) = (0u64, 0u32);
        loop {
            match stack.pop() {
                Some(Item::Mark) => return Ok((n, d)),
                Some(Item::Obj { n: m, depth }) => {
                    n = n.saturating_add(m);
                    d = d.max(depth);
                }
                None => return Err("malformed pickle (no mark)".into()),
            }
        }
    }
    fn check(n: u64, depth: u32) -> std::result::Result<Item, String> {
        if n > MAX_PICKLE_OBJECTS {
            return Err(format!("the pickle builds more than {MAX_PICKLE_OBJECTS} objects"));
        }
        if depth > MAX_PICKLE_DEPTH {
            return Err(format!("the pickle nests deeper than {MAX_PICKLE_DEPTH} levels"));
        }
        Ok(Item::Obj { n, depth })
    }
    // A new container around children totalling (n, d).
    let node = |n: u64, d: u32| check(n.saturating_add(1), d.saturating_add(1));
    // Adds children totalling (n, d) into the container on top of the stack.
    let grow = |stack: &mut Vec<Item>, n: u64, d: u32| -> std::result::Result<(), String> {
        let (m, depth) = pop(stack)?;
        stack.push(check(m.saturating_add(n), depth.max(d.saturating_add(1)))?);
        Ok(())
    };
    while pos < data.len() {
        let op = data[pos];
        pos += 1;
        match op {
            0x80 | b'K' => {
                take(&mut pos, 1)?;
                if op == b'K' {
                    stack.push(leaf);
                }
            }
            b'c' => {
                for _ in 0..2 {
                    let rest = &data[pos..];
                    let nl = rest.iter().position(|&b| b == b'\n').ok_or("unterminated GLOBAL in the pickle")?;
                    pos += nl + 1;
                }
                stack.push(leaf);
            }
            b'M' => {
                take(&mut pos, 2)?;
                stack.push(leaf);
            }
            b'J' => {
                take(&mut pos, 4)?;
                stack.push(leaf);
            }
            b'G' => {
                take(&mut pos, 8)?;
                stack.push(leaf);
            }
            b'X' => {
                let len = u32_at(take(&mut pos, 4)?) as usize;
                take(&mut pos, len)?;
                stack.push(leaf);
            }
            0x8a => {
                let n = take(&mut pos, 1)?[0] as usize;
                take(&mut pos, n)?;
                stack.push(leaf);
            }
            b'h' | b'j' => {
                let k = if op == b'h' { take(&mut pos, 1)?[0] as u32 } else { u32_at(take(&mut pos, 4)?) };
                let (n, d) = memo.get(&k).copied().ok_or_else(|| format!("the pickle reads memo slot {k} before writing it"))?;
                stack.push(Item::Obj { n, depth: d });
            }
            b'q' | b'r' => {
                let k = if op == b'q' { take(&mut pos, 1)?[0] as u32 } else { u32_at(take(&mut pos, 4)?) };
                match stack.last() {
                    Some(Item::Obj { n, depth }) => {
                        memo.insert(k, (*n, *depth));
                    }
                    _ => return Err("malformed pickle (PUT without an object)".into()),
                }
                if memo.len() > MAX_PICKLE_OBJECTS as usize {
                    return Err(format!("the pickle writes more than {MAX_PICKLE_OBJECTS} memo slots"));
                }
            }
            b'(' => stack.push(Item::Mark),
            b')' | b'}' | b']' | b'N' | 0x88 | 0x89 => stack.push(leaf),
            b't' | b'd' => {
                let (n, d) = pop_mark(&mut stack)?;
                stack.push(node(n, d)?);
            }
            0x85 | 0x86 | 0x87 | b'Q' => {
                let k = match op {
                    0x86 => 2,
                    0x87 => 3,
                    _ => 1,
                };
                let (mut n, mut d) = (0u64, 0u32);
                for _ in 0..k {
                    let (m, e) = pop(&mut stack)?;
                    n = n.saturating_add(m);
                    d = d.max(e);
                }
                stack.push(node(n, d)?);
            }
            b'R' | 0x81 => {
                let (a, da) = pop(&mut stack)?;
                let (b, db) = pop(&mut stack)?;
                stack.push(node(a.saturating_add(b), da.max(db))?);
            }
            b'a' | b'b' => {
                let (n, d) = pop(&mut stack)?;
                grow(&mut stack, n, d)?;
            }
            b's' => {
                let (a, da) = pop(&mut stack)?;
                let (b, db) = pop(&mut stack)?;
                grow(&mut stack, a.saturating_add(b), da.max(db))?;
            }
            b'e' | b'u' => {
                let (n, d) = pop_mark(&mut stack)?;
                grow(&mut stack, n, d)?;
            }
            b'.' => return Ok(()),
            _ => return Ok(()), // unknown to candle too: its reader refuses it
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billion_laughs_is_refused() {
        // EMPTY_LIST, PUT 0, then 40 x (GET 0, GET 0, TUPLE2, PUT 0): 2^40 objects.
        let mut p = vec![0x80, 2, b']', b'q', 0];
        for _ in 0..40 {
            p.extend_from_slice(&[b'h', 0, b'h', 0, 0x86, b'q', 0]);
        }
        p.push(b'.');
        let e = check_pickle(&p).unwrap_err();
        assert!(e.contains("more than"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut p = vec![0x80, 2, b'N'];
        p.extend(std::iter::repeat_n(0x85, 10_000)); // TUPLE1 around TUPLE1 ...
        p.push(b'.');
        assert!(check_pickle(&p).unwrap_err().contains("deeper"));
    }

    #[test]
    fn lengths_past_the_end_are_refused() {
        // BINUNICODE claiming 4 GiB - 1 with 3 bytes after it.
        let p = [0x80, 2, b'X', 0xff, 0xff, 0xff, 0xff, b'a', b'b', b'.'];
        assert!(check_pickle(&p).unwrap_err().contains("claims 4294967295 bytes"));
    }

    #[test]
    fn a_small_dict_passes() {
        // {"a": 1}
        let p = [0x80, 2, b'}', b'q', 0, b'X', 1, 0, 0, 0, b'a', b'K', 1, b's', b'.'];
        check_pickle(&p).unwrap();
    }
}
