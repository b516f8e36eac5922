//! Reading annotation PNGs as stored values, not colours.
//!
//! The `image` crate expands palette PNGs to RGB; annotation PNGs (DAVIS, MOSE, SA-V, the
//! SAM 2 training loaders' `PalettisedPNGSegmentLoader`) store object ids as palette
//! *indices*, which `np.array(PIL.Image.open(p))` returns. This module decodes with the
//! `png` crate and no transformation, so indices (and grayscale values) come out as stored,
//! at any bit depth (1, 2, 4, 8 packed; 16 big-endian).
use crate::limits::MAX_IMAGE_PIXELS;
use crate::{Error, Result};

/// The colour model of a decoded PNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PngKind {
    Indexed,
    Gray,
    GrayAlpha,
    Rgb,
    Rgba,
}

impl PngKind {
    fn channels(self) -> usize {
        match self {
            PngKind::Indexed | PngKind::Gray => 1,
            PngKind::GrayAlpha => 2,
            PngKind::Rgb => 3,
            PngKind::Rgba => 4,
        }
    }
}

/// A PNG's stored samples: `height x width x channels`, row-major, channels interleaved.
#[derive(Debug, Clone)]
pub struct RawPng {
    pub width: usize,
    pub height: usize,
    pub kind: PngKind,
    pub bit_depth: u8,
    pub samples: Vec<u16>,
}

/// A single-channel label map: one id per pixel, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMap {
    pub width: usize,
    pub height: usize,
    /// Bits per stored value (1, 2, 4, 8 or 16).
    pub bit_depth: u8,
    pub values: Vec<u16>,
}

/// Decodes PNG bytes without palette expansion or bit-depth conversion.
pub fn decode_raw_png(bytes: &[u8]) -> Result<RawPng> {
    let mut decoder = png::Decoder::new_with_limits(
        std::io::Cursor::new(bytes),
        png::Limits { bytes: MAX_IMAGE_PIXELS * 8 },
    );
    decoder.set_transformations(png::Transformations::IDENTITY);
    let header = decoder.read_header_info().map_err(|e| Error::Image(format!("not a readable PNG: {e}")))?;
    let (width, height) = (header.width as usize, header.height as usize);
    if width == 0 || height == 0 || width.saturating_mul(height) > MAX_IMAGE_PIXELS {
        return Err(Error::ImageSize {
            width,
            height,
            reason: format!("a mask must have between 1 and {MAX_IMAGE_PIXELS} pixels"),
        });
    }
    crate::limits::check_claimed_pixels(width, height, bytes.len(), "mask PNG")?;
    crate::image_io::check_png_palette(bytes)?;
    let mut reader = decoder.read_info().map_err(|e| Error::Image(format!("corrupt PNG: {e}")))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::Image("PNG too large for this platform".into()))?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(|e| Error::Image(format!("corrupt or truncated PNG: {e}")))?;
    let kind = match info.color_type {
        png::ColorType::Indexed => PngKind::Indexed,
        png::ColorType::Grayscale => PngKind::Gray,
        png::ColorType::GrayscaleAlpha => PngKind::GrayAlpha,
        png::ColorType::Rgb => PngKind::Rgb,
        png::ColorType::Rgba => PngKind::Rgba,
    };
    let depth = info.bit_depth as u8;
    let ch = kind.channels();
    let line = info.line_size;
    let per_row = width * ch;
    let mut samples = Vec::with_capacity(per_row * height);
    for r in 0..height {
        let row = &buf[r * line..(r + 1) * line];
        match depth {
            8 => samples.extend(row[..per_row].iter().map(|&v| v as u16)),
            16 => samples.extend((0..per_row).map(|i| u16::from_be_bytes([row[2 * i], row[2 * i + 1]]))),
            1 | 2 | 4 => {
                let d = depth as usize;
                let mask = (1u16 << d) - 1;
                samples.extend((0..per_row).map(|i| {
                    let bit = i * d;
                    let byte = row[bit / 8] as u16;
                    (byte >> (8 - d - bit % 8)) & mask
                }));
            }
            other => return Err(Error::Image(format!("unsupported PNG bit depth {other}"))),
        }
    }
    Ok(RawPng { width, height, kind, bit_depth: depth, samples })
}

/// Decodes a label PNG whose stored values are ids: a palette PNG (the palette indices) or a
/// grayscale PNG (the gray values, 8 or 16 bit). Colour PNGs are refused: their colours are
/// not ids.
pub fn decode_label_png(bytes: &[u8]) -> Result<LabelMap> {
    let raw = decode_raw_png(bytes)?;
    match raw.kind {
        PngKind::Indexed | PngKind::Gray => Ok(LabelMap {
            width: raw.width,
            height: raw.height,
            bit_depth: raw.bit_depth,
            values: raw.samples,
        }),
        other => Err(Error::Invalid(format!(
            "annotation PNG is {other:?}; object ids need a palette (mode P) or grayscale (mode L/I;16) PNG"
        ))),
    }
}

/// Decodes a binary mask PNG of any colour model: a pixel is foreground when its stored value
/// is non-zero (palette index or gray value > 0; for RGB(A), any colour channel > 0), and,
/// with an alpha channel, it is not fully transparent.
pub fn decode_binary_mask_png(bytes: &[u8]) -> Result<(usize, usize, Vec<bool>)> {
    let raw = decode_raw_png(bytes)?;
    let mask: Vec<bool> = match raw.kind {
        PngKind::Indexed | PngKind::Gray => raw.samples.iter().map(|&v| v > 0).collect(),
        PngKind::GrayAlpha => raw.samples.chunks_exact(2).map(|p| p[0] > 0 && p[1] > 0).collect(),
        PngKind::Rgb => raw.samples.chunks_exact(3).map(|p| p.iter().any(|&v| v > 0)).collect(),
        PngKind::Rgba => raw.samples.chunks_exact(4).map(|p| p[..3].iter().any(|&v| v > 0) && p[3] > 0).collect(),
    };
    Ok((raw.width, raw.height, mask))
}
