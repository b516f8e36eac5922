//! Image decoding and SAM 2.1's preprocessing (`sam2/utils/transforms.py`, `SAM2Transforms`):
//! `ToTensor`, `Resize((S, S))` (bilinear with antialiasing, aspect ratio not kept), then
//! ImageNet `Normalize`.
use crate::{Error, Result};

/// Largest image accepted, in pixels (about 8k x 8k). Larger inputs are refused with a
/// message rather than exhausting memory; downscale them first.
pub const MAX_IMAGE_PIXELS: usize = 8192 * 8192;

pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// An 8-bit RGB image, row-major `H x W x 3`.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl RgbImage {
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Result<Self> {
        check_size(width, height)?;
        if data.len() != width * height * 3 {
            return Err(Error::Invalid(format!("RGB buffer has {} bytes, expected {}x{}x3 = {}", data.len(), width, height, width * height * 3)));
        }
        Ok(Self { width, height, data })
    }

    /// Decodes PNG, JPEG, BMP, GIF, TIFF or WebP bytes (format detected from content).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| Error::Image(e.to_string()))?;
        if reader.format().is_none() {
            return Err(Error::Image("unrecognised image format (supported: PNG, JPEG, BMP, GIF, TIFF, WebP)".into()));
        }
        let (w, h) = reader.into_dimensions().map_err(|e| Error::Image(e.to_string()))?;
        check_size(w as usize, h as usize)?;
        let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| Error::Image(e.to_string()))?;
        let mut limits = image::Limits::default();
        limits.max_alloc = Some((MAX_IMAGE_PIXELS as u64) * 16);
        reader.limits(limits);
        let img = reader.decode().map_err(|e| Error::Image(format!("corrupt or truncated image: {e}")))?;
        let rgb = img.to_rgb8();
        Self::new(rgb.width() as usize, rgb.height() as usize, rgb.into_raw())
    }

    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let p = path.as_ref();
        let bytes = std::fs::read(p).map_err(|e| Error::Io { path: p.display().to_string(), source: e })?;
        Self::decode(&bytes).map_err(|e| match e {
            Error::Image(m) => Error::Image(format!("{}: {m}", p.display())),
            other => other,
        })
    }
}

fn check_size(width: usize, height: usize) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(Error::ImageSize { width, height, reason: "the image is empty".into() });
    }
    if width.saturating_mul(height) > MAX_IMAGE_PIXELS {
        return Err(Error::ImageSize {
            width,
            height,
            reason: format!("more than {MAX_IMAGE_PIXELS} pixels (8192x8192); downscale it first"),
        });
    }
    Ok(())
}

/// Index ranges and normalised weights of PyTorch's antialiased linear resampling
/// (`_upsample_bilinear2d_aa`, align_corners = false) along one axis.
fn aa_weights(in_size: usize, out_size: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = in_size as f32 / out_size as f32;
    let support = if scale >= 1.0 { scale } else { 1.0 };
    let invscale = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
    (0..out_size)
        .map(|i| {
            let center = scale * (i as f32 + 0.5);
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let mut w: Vec<f32> = (xmin..xmax)
                .map(|j| {
                    let x = ((j as f32 - center + 0.5) * invscale).abs();
                    if x < 1.0 { 1.0 - x } else { 0.0 }
                })
                .collect();
            let total: f32 = w.iter().sum();
            if total != 0.0 {
                w.iter_mut().for_each(|v| *v /= total);
            }
            (xmin, w)
        })
        .collect()
}

/// SAM 2.1 preprocessing: `3 x size x size` f32, planar, normalised.
pub fn preprocess(img: &RgbImage, size: usize) -> Vec<f32> {
    let (w, h) = (img.width, img.height);
    let wx = aa_weights(w, size);
    let wy = aa_weights(h, size);
    // Width pass on each row (values in [0, 1] as ToTensor gives), then the height pass.
    let mut tmp = vec![0f32; 3 * h * size];
    for y in 0..h {
        let row = &img.data[y * w * 3..(y + 1) * w * 3];
        for (ox, (x0, ws)) in wx.iter().enumerate() {
            for c in 0..3 {
                let mut acc = 0f32;
                for (k, wk) in ws.iter().enumerate() {
                    acc += wk * (row[(x0 + k) * 3 + c] as f32 / 255.0);
                }
                tmp[(c * h + y) * size + ox] = acc;
            }
        }
    }
    let mut out = vec![0f32; 3 * size * size];
    for c in 0..3 {
        for (oy, (y0, ws)) in wy.iter().enumerate() {
            let dst = &mut out[(c * size + oy) * size..(c * size + oy + 1) * size];
            for (k, wk) in ws.iter().enumerate() {
                let src = &tmp[(c * h + y0 + k) * size..(c * h + y0 + k + 1) * size];
                for (d, s) in dst.iter_mut().zip(src) {
                    *d += wk * s;
                }
            }
            for d in dst.iter_mut() {
                *d = (*d - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
            }
        }
    }
    out
}
