//! SAM 2.1 preprocessing on the GPU (`preprocess.wgsl`): antialiased resize and ImageNet
//! normalisation of an RGB8 image, uploaded in row chunks that fit the binding limit.
use super::u;
use crate::gpu::{groups_1d, Gpu, GBuf, Result};
use ruac_core::image_io::{aa_weights, RgbImage};

pub const NAME: &str = "preprocess";
pub const SRC: &str = concat!(include_str!("common.wgsl"), include_str!("preprocess.wgsl"));

/// `(first tap, tap count)` per output and the normalised weights (stride `maxt`) of
/// PyTorch's antialiased linear resampling, packed for `preprocess.wgsl` from ruac-core's
/// own table (`ruac_core::image_io::aa_weights`, what the CPU preprocessing uses).
fn aa_taps(in_size: usize, out_size: usize) -> (Vec<u32>, Vec<f32>, usize) {
    let rows = aa_weights(in_size, out_size);
    let maxt = rows.iter().map(|r| r.1.len()).max().unwrap_or(1).max(1);
    let mut idx = Vec::with_capacity(out_size * 2);
    let mut wts = vec![0f32; out_size * maxt];
    for (o, (x0, w)) in rows.iter().enumerate() {
        idx.extend([*x0 as u32, w.len() as u32]);
        wts[o * maxt..o * maxt + w.len()].copy_from_slice(w);
    }
    (idx, wts, maxt)
}

/// Preprocesses `img` to `s x s x 3` (channels-last) normalised values.
pub fn preprocess(gpu: &Gpu, img: &RgbImage, s: usize) -> Result<GBuf> {
    let (w, h) = (img.width, img.height);
    let (xi, xw, xmax) = aa_taps(w, s);
    let (yi, yw, ymax) = aa_taps(h, s);
    let (xi, xw) = (gpu.upload("taps_x", &xi), gpu.upload("wts_x", &xw));
    let (yi, yw) = (gpu.upload("taps_y", &yi), gpu.upload("wts_y", &yw));
    let tmp = gpu.alloc(3 * h * s)?;
    // Upload the bytes in row chunks no larger than a binding (an 8k image is 200 MB).
    let row_bytes = w * 3;
    let max_bytes = (gpu.limits.max_storage_buffer_binding_size as usize).min(64 << 20) - 8;
    let rows_per = (max_bytes / row_bytes).max(1);
    let mut row0 = 0;
    while row0 < h {
        let nrows = rows_per.min(h - row0);
        let start = row0 * row_bytes;
        let end = start + nrows * row_bytes;
        let word0 = start / 4;
        let shift = start % 4;
        let mut bytes = img.data[word0 * 4..end].to_vec();
        bytes.resize(bytes.len().div_ceil(4) * 4, 0);
        let chunk = gpu.upload("image_rows", &bytes);
        let p = [u(w)?, u(h)?, u(s)?, u(row0)?, u(nrows)?, u(xmax)?, u(shift)?, 0];
        gpu.dispatch((NAME, "resize_w"), &p, &[&chunk, &xi, &xw, &tmp], groups_1d(nrows * s))?;
        row0 += nrows;
    }
    let out = gpu.alloc(s * s * 3)?;
    let p = [u(w)?, u(h)?, u(s)?, 0, 0, u(ymax)?, 0, 0];
    gpu.dispatch_at((NAME, "resize_h"), &p, &[(2, &yi), (3, &yw), (5, &tmp), (6, &out)], groups_1d(s * s * 3))?;
    Ok(out)
}
