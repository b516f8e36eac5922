//! Training augmentations of the released config (`sam2_ruac_train.yaml`, SAM 2's
//! `training/dataset/transforms.py`): horizontal flip, random affine (rotation, shear), colour
//! jitter and random grayscale, applied to a square image and its object masks together.
use crate::image_io::RgbImage;
use crate::rng::Pcg32;

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    pub hflip: f32,
    /// Maximum rotation in degrees (25) and shear in degrees (20) of `RandomAffine`.
    pub degrees: f32,
    pub shear: f32,
    pub brightness: f32,
    pub contrast: f32,
    pub saturation: f32,
    pub grayscale: f32,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            hflip: 0.5,
            degrees: 25.0,
            shear: 20.0,
            brightness: 0.1,
            contrast: 0.03,
            saturation: 0.03,
            grayscale: 0.05,
        }
    }
}

fn sym(rng: &mut Pcg32, a: f32) -> f32 {
    a * (2.0 * rng.uniform() - 1.0)
}

/// Augments in place. Masks are `w × h` row-major; pixels mapped from outside the image
/// become black and background.
pub fn augment(img: &mut RgbImage, masks: &mut [Vec<bool>], cfg: &AugmentConfig, rng: &mut Pcg32) {
    let (w, h) = (img.width, img.height);
    let flip = rng.uniform() < cfg.hflip;
    let rot = sym(rng, cfg.degrees).to_radians();
    let shear = sym(rng, cfg.shear).to_radians();
    // Inverse map of rotate∘shear∘flip about the centre: for each output pixel, its source.
    let (c, s, t) = (rot.cos(), rot.sin(), shear.tan());
    // Forward A = R · Sh with Sh = [[1, t], [0, 1]]; inverse = Sh⁻¹ · Rᵀ.
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let src = img.data.clone();
    let old: Vec<Vec<bool>> = masks.to_vec();
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            let (rx, ry) = (c * dx + s * dy, -s * dx + c * dy);
            let (mut sx, sy) = (rx - t * ry + cx - 0.5, ry + cy - 0.5);
            if flip {
                sx = w as f32 - 1.0 - sx;
            }
            let i = y * w + x;
            let inside = sx >= 0.0 && sy >= 0.0 && sx <= (w - 1) as f32 && sy <= (h - 1) as f32;
            if !inside {
                img.data[3 * i..3 * i + 3].fill(0);
                for m in masks.iter_mut() {
                    m[i] = false;
                }
                continue;
            }
            let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
            let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
            let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
            for ch in 0..3 {
                let p = |xx: usize, yy: usize| src[3 * (yy * w + xx) + ch] as f32;
                let v = (p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx) * (1.0 - fy)
                    + (p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx) * fy;
                img.data[3 * i + ch] = v.round().clamp(0.0, 255.0) as u8;
            }
            let (nx, ny) = (sx.round() as usize, sy.round() as usize);
            for (m, o) in masks.iter_mut().zip(&old) {
                m[i] = o[ny * w + nx];
            }
        }
    }
    // Colour jitter (brightness, contrast, saturation factors), then grayscale.
    let b = 1.0 + sym(rng, cfg.brightness);
    let ct = 1.0 + sym(rng, cfg.contrast);
    let sat = 1.0 + sym(rng, cfg.saturation);
    let gray = rng.uniform() < cfg.grayscale;
    let mean: f32 = img
        .data
        .chunks_exact(3)
        .map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32)
        .sum::<f32>()
        / (w * h) as f32;
    for p in img.data.chunks_exact_mut(3) {
        let mut v = [p[0] as f32 * b, p[1] as f32 * b, p[2] as f32 * b];
        for ch in &mut v {
            *ch = (*ch - mean * b) * ct + mean * b;
        }
        let l = 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2];
        for ch in &mut v {
            *ch = if gray { l } else { l + (*ch - l) * sat };
        }
        for ch in 0..3 {
            p[ch] = v[ch].round().clamp(0.0, 255.0) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_settings_change_nothing() {
        let mut rng = Pcg32::new(0);
        let data: Vec<u8> = (0..8 * 6 * 3).map(|i| (i * 7 % 256) as u8).collect();
        let mut img = RgbImage::new(8, 6, data.clone()).unwrap();
        let mut masks = vec![(0..48).map(|i| i % 5 == 0).collect::<Vec<bool>>()];
        let before = masks.clone();
        let cfg = AugmentConfig {
            hflip: 0.0,
            degrees: 0.0,
            shear: 0.0,
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
            grayscale: 0.0,
        };
        augment(&mut img, &mut masks, &cfg, &mut rng);
        assert_eq!(img.data, data);
        assert_eq!(masks, before);
    }

    #[test]
    fn flip_mirrors_masks() {
        let mut rng = Pcg32::new(0);
        let mut img = RgbImage::new(4, 1, vec![0; 12]).unwrap();
        let mut masks = vec![vec![true, false, false, false]];
        let cfg = AugmentConfig {
            hflip: 1.0,
            degrees: 0.0,
            shear: 0.0,
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
            grayscale: 0.0,
        };
        augment(&mut img, &mut masks, &cfg, &mut rng);
        assert_eq!(masks[0], vec![false, false, false, true]);
    }
}
