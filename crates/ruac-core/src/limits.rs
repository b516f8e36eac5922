//! Resource limits, stated once. Every parser of a user's bytes checks its input against
//! these before allocating, so a file that claims more than it holds, or more than these
//! bounds, is refused with a one-line error instead of exhausting memory (natively or in the
//! browser's 4 GiB wasm32 address space).
//!
//! | limit | value | checked by |
//! |---|---|---|
//! | [`MAX_IMAGE_PIXELS`] | 8192² | `image_io` (images), `data::label_png` (mask PNGs), COCO / SA-1B image sizes, RLE canvases, `.npy` predictions |
//! | [`MAX_HEADER_BYTES`] | 16 MiB | safetensors JSON header, the `.pt` archive's `data.pkl`, `.npy` header |
//! | [`MAX_TENSORS`] | 65 536 | tensors in one checkpoint |
//! | [`MAX_TENSOR_ELEMENTS`] / [`MAX_TENSOR_BYTES`] | 2³¹ − 1 / 2 GiB | every tensor of a checkpoint, `.npy` arrays |
//! | [`MAX_PICKLE_OBJECTS`] / [`MAX_PICKLE_DEPTH`] | 2²⁰ / 256 | the `.pt` pickle (memo copies and nesting) |
//! | [`MAX_PIXELS_PER_BYTE`] | 32 768 | images and mask PNGs: pixels claimed per byte of file |
//! | [`MAX_POINTS`] | 1024 | point prompts of one prediction |
//! | [`MAX_OBJECTS`] | 4096 | objects decoded for one sample (COCO, SA-1B, mask folders, label PNGs) |
//! | [`MAX_TEXT_BYTES`] | 64 MiB | the eval manifest, the training config, `.npy` side files |
//!
//! The values are generous for real data (SAM 2.1 large: ~900 tensors, the largest 5.2 M
//! elements, a 90 KB header; SA-1B: ~100 masks per image, a few above 1000).
use crate::{Error, Result};

/// Largest image accepted, in pixels (8192 x 8192). Larger inputs are refused with a message;
/// downscale them first.
pub const MAX_IMAGE_PIXELS: usize = 8192 * 8192;
/// Largest metadata block read before any tensor: a safetensors header, a `.pt` pickle, a
/// `.npy` header.
pub const MAX_HEADER_BYTES: usize = 16 << 20;
/// Most tensors in one checkpoint.
pub const MAX_TENSORS: usize = 1 << 16;
/// Most elements in one tensor or array (fits an `i32` index, as candle's kernels need).
pub const MAX_TENSOR_ELEMENTS: usize = (1 << 31) - 1;
/// Most bytes in one tensor or array.
pub const MAX_TENSOR_BYTES: usize = 1 << 31;
/// Most objects a pickle may build (memo gets copy objects, so a few bytes can ask for
/// billions of them).
pub const MAX_PICKLE_OBJECTS: u64 = 1 << 20;
/// Deepest nesting of pickled containers (dropping deeper trees would overflow the stack).
pub const MAX_PICKLE_DEPTH: u32 = 256;
/// Most pixels an image file may claim per byte it holds. No format compresses real pixels
/// further (a solid 8192² PNG is ~350 pixels per byte, GIF's LZW at most ~2700, WebP's
/// backward references a few thousand); a tiny file claiming a huge image is a truncated or
/// crafted one, which decoders would otherwise fill with grey at full size.
pub const MAX_PIXELS_PER_BYTE: usize = 1 << 15;
/// Most point prompts in one prediction.
pub const MAX_POINTS: usize = 1024;
/// Most objects decoded for one sample.
pub const MAX_OBJECTS: usize = 4096;
/// Largest text file (manifest, configuration) read whole.
pub const MAX_TEXT_BYTES: u64 = 64 << 20;

/// Refuses a `width x height` image that is empty or over [`MAX_IMAGE_PIXELS`].
pub fn check_pixels(width: usize, height: usize, what: &str) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(Error::ImageSize { width, height, reason: format!("the {what} is empty") });
    }
    if width.saturating_mul(height) > MAX_IMAGE_PIXELS {
        return Err(Error::ImageSize {
            width,
            height,
            reason: format!("the {what} has more than {MAX_IMAGE_PIXELS} pixels (8192x8192); downscale it first"),
        });
    }
    Ok(())
}

/// Refuses an image file of `bytes` bytes that claims `width x height` pixels, more than
/// [`MAX_PIXELS_PER_BYTE`] per byte.
pub fn check_claimed_pixels(width: usize, height: usize, bytes: usize, what: &str) -> Result<()> {
    if width.saturating_mul(height) / MAX_PIXELS_PER_BYTE > bytes {
        return Err(Error::ImageSize {
            width,
            height,
            reason: format!("the {what} file is only {bytes} bytes, too few for that many pixels (truncated?)"),
        });
    }
    Ok(())
}

/// Elements and bytes of a tensor of `shape` with `elem_size`-byte elements, refused when
/// the product overflows or exceeds [`MAX_TENSOR_ELEMENTS`] / [`MAX_TENSOR_BYTES`].
pub fn tensor_size(shape: &[usize], elem_size: usize, what: &str) -> Result<(usize, usize)> {
    let too_big = || {
        Error::Invalid(format!(
            "{what} claims shape {shape:?}, over the limit of {MAX_TENSOR_ELEMENTS} elements / {MAX_TENSOR_BYTES} bytes"
        ))
    };
    let elems = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(too_big)?;
    let bytes = elems.checked_mul(elem_size).ok_or_else(too_big)?;
    if elems > MAX_TENSOR_ELEMENTS || bytes > MAX_TENSOR_BYTES {
        return Err(too_big());
    }
    Ok((elems, bytes))
}

/// Reads a whole text file of at most [`MAX_TEXT_BYTES`], checking the size first.
pub fn read_text(path: &std::path::Path) -> Result<String> {
    let io = |e| Error::Io { path: path.display().to_string(), source: e };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_TEXT_BYTES {
        return Err(Error::Invalid(format!("{}: {len} bytes, over the {MAX_TEXT_BYTES}-byte limit for a text file", path.display())));
    }
    std::fs::read_to_string(path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels() {
        assert!(check_pixels(8192, 8192, "image").is_ok());
        let e = check_pixels(8193, 8192, "image").unwrap_err().to_string();
        assert!(e.contains("8193x8192") && e.contains("downscale"), "{e}");
        assert!(check_pixels(0, 5, "mask").unwrap_err().to_string().contains("mask is empty"));
        assert!(check_pixels(usize::MAX, usize::MAX, "image").is_err());
        assert!(check_claimed_pixels(8000, 8000, 824, "image").unwrap_err().to_string().contains("only 824 bytes"));
        assert!(check_claimed_pixels(8000, 8000, 4000, "image").is_ok());
    }

    #[test]
    fn tensor_sizes() {
        assert_eq!(tensor_size(&[2, 3], 4, "t").unwrap(), (6, 24));
        assert_eq!(tensor_size(&[], 4, "t").unwrap(), (1, 4));
        assert_eq!(tensor_size(&[5, 0], 4, "t").unwrap(), (0, 0));
        let e = tensor_size(&[100000, 100000, 3, 7], 4, "tensor w").unwrap_err().to_string();
        assert!(e.contains("tensor w claims shape [100000, 100000, 3, 7]"), "{e}");
        assert!(tensor_size(&[usize::MAX, 2], 1, "t").is_err());
        assert!(tensor_size(&[1 << 30], 4, "t").is_err(), "4 GiB");
        assert!(tensor_size(&[1 << 29], 4, "t").is_ok(), "2 GiB");
    }

    #[test]
    fn text_files() {
        let d = std::env::temp_dir().join(format!("ruac-limits-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("a.toml");
        std::fs::write(&p, "x = 1\n").unwrap();
        assert_eq!(read_text(&p).unwrap(), "x = 1\n");
        // A sparse file that claims more than the limit is refused before reading.
        let big = d.join("big.toml");
        std::fs::File::create(&big).unwrap().set_len(MAX_TEXT_BYTES + 1).unwrap();
        assert!(read_text(&big).unwrap_err().to_string().contains("over the"));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
