//! A seeded procedural source domain, for machines without datasets (issue #3): scenes of
//! several overlapping objects with varied shapes and textures, with exact visible masks.
//!
//! Every sample is a pure function of `(seed, index)`, so a training run's data position is
//! one integer and resuming replays the same stream. Held-out *shifted* domains reuse the
//! generator with what training never sees: other texture families, a global colour shift,
//! or a smooth elastic warp of image and masks together.
use super::ObjectMask;
use crate::image_io::RgbImage;
use crate::rng::Pcg32;
use crate::{Error, Result};

/// Which variant of the generator; only `Train` is used for training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Domain {
    /// Solid, gradient, stripe and checker textures.
    Train,
    /// Texture families absent from training: smooth noise, dots, concentric waves.
    UnseenTextures,
    /// Training textures, then a global colour shift (channel mixing, gamma, contrast).
    ColourShift,
    /// Training textures, then a smooth elastic warp of image and masks.
    Elastic,
}

impl Domain {
    pub const ALL: [Domain; 4] = [
        Domain::Train,
        Domain::UnseenTextures,
        Domain::ColourShift,
        Domain::Elastic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Domain::Train => "train",
            Domain::UnseenTextures => "unseen-textures",
            Domain::ColourShift => "colour-shift",
            Domain::Elastic => "elastic",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| Error::Invalid(format!("unknown procedural domain {s:?}: expected one of train, unseen-textures, colour-shift, elastic")))
    }
}

/// Generator settings.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ProceduralConfig {
    /// Square image side in pixels.
    pub size: usize,
    pub min_objects: usize,
    pub max_objects: usize,
    /// Objects whose visible area falls below this many pixels are dropped (fully occluded).
    pub min_area: usize,
    pub domain: Domain,
}

impl Default for ProceduralConfig {
    fn default() -> Self {
        Self {
            size: 256,
            min_objects: 2,
            max_objects: 5,
            min_area: 64,
            domain: Domain::Train,
        }
    }
}

/// One generated scene: the image and each object's visible mask (painter's order).
#[derive(Debug, Clone)]
pub struct Scene {
    pub image: RgbImage,
    pub objects: Vec<ObjectMask>,
}

#[derive(Debug, Clone, Copy)]
enum Texture {
    Solid([f32; 3]),
    Gradient {
        a: [f32; 3],
        b: [f32; 3],
        dir: (f32, f32),
    },
    Stripes {
        a: [f32; 3],
        b: [f32; 3],
        dir: (f32, f32),
        freq: f32,
    },
    Checker {
        a: [f32; 3],
        b: [f32; 3],
        cell: f32,
        rot: (f32, f32),
    },
    // Held-out families.
    Noise {
        a: [f32; 3],
        b: [f32; 3],
        cell: f32,
        key: u32,
    },
    Dots {
        a: [f32; 3],
        b: [f32; 3],
        cell: f32,
        radius: f32,
    },
    Waves {
        a: [f32; 3],
        b: [f32; 3],
        centre: (f32, f32),
        freq: f32,
    },
}

/// Smooth value noise in `[0, 1]` from a hashed lattice (bilinear, smoothstep).
fn value_noise(x: f32, y: f32, key: u32) -> f32 {
    fn hash(ix: i32, iy: i32, key: u32) -> f32 {
        let mut h = (ix as u32).wrapping_mul(0x8da6_b343)
            ^ (iy as u32).wrapping_mul(0xd816_3841)
            ^ key.wrapping_mul(0xcb1a_b31f);
        h ^= h >> 13;
        h = h.wrapping_mul(0x5bd1_e995);
        h ^= h >> 15;
        (h & 0xffff) as f32 / 65535.0
    }
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (sx, sy) = (fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy));
    let (ix, iy) = (x0 as i32, y0 as i32);
    let top = hash(ix, iy, key) * (1.0 - sx) + hash(ix + 1, iy, key) * sx;
    let bot = hash(ix, iy + 1, key) * (1.0 - sx) + hash(ix + 1, iy + 1, key) * sx;
    top * (1.0 - sy) + bot * sy
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

impl Texture {
    fn at(&self, x: f32, y: f32) -> [f32; 3] {
        match *self {
            Texture::Solid(c) => c,
            Texture::Gradient { a, b, dir } => {
                mix(a, b, (0.5 + (x * dir.0 + y * dir.1)).clamp(0.0, 1.0))
            }
            Texture::Stripes { a, b, dir, freq } => {
                let t = ((x * dir.0 + y * dir.1) * freq * std::f32::consts::TAU).sin();
                if t > 0.0 {
                    a
                } else {
                    b
                }
            }
            Texture::Checker { a, b, cell, rot } => {
                let (u, v) = (x * rot.0 - y * rot.1, x * rot.1 + y * rot.0);
                if ((u / cell).floor() as i64 + (v / cell).floor() as i64) % 2 == 0 {
                    a
                } else {
                    b
                }
            }
            Texture::Noise { a, b, cell, key } => {
                let n = 0.65 * value_noise(x / cell, y / cell, key)
                    + 0.35 * value_noise(2.0 * x / cell, 2.0 * y / cell, key ^ 0x9e37);
                mix(a, b, n)
            }
            Texture::Dots { a, b, cell, radius } => {
                let (u, v) = (
                    x / cell - (x / cell).floor() - 0.5,
                    y / cell - (y / cell).floor() - 0.5,
                );
                if u * u + v * v < radius * radius {
                    a
                } else {
                    b
                }
            }
            Texture::Waves { a, b, centre, freq } => {
                let r = ((x - centre.0).powi(2) + (y - centre.1).powi(2)).sqrt();
                mix(a, b, 0.5 + 0.5 * (r * freq * std::f32::consts::TAU).sin())
            }
        }
    }
}

fn colour(rng: &mut Pcg32) -> [f32; 3] {
    [rng.uniform(), rng.uniform(), rng.uniform()]
}

fn unit_dir(rng: &mut Pcg32) -> (f32, f32) {
    let a = rng.uniform() * std::f32::consts::TAU;
    (a.cos(), a.sin())
}

fn texture(rng: &mut Pcg32, domain: Domain) -> Texture {
    let (a, b) = (colour(rng), colour(rng));
    let held_out = domain == Domain::UnseenTextures;
    match (held_out, (rng.next_u32() % 4) as u8) {
        (false, 0) => Texture::Solid(a),
        (false, 1) => Texture::Gradient {
            a,
            b,
            dir: {
                let d = unit_dir(rng);
                let s = 0.5 + rng.uniform();
                (d.0 * s, d.1 * s)
            },
        },
        (false, 2) => Texture::Stripes {
            a,
            b,
            dir: unit_dir(rng),
            freq: 4.0 + 20.0 * rng.uniform(),
        },
        (false, _) => Texture::Checker {
            a,
            b,
            cell: 0.03 + 0.12 * rng.uniform(),
            rot: unit_dir(rng),
        },
        (true, 0) | (true, 3) => Texture::Noise {
            a,
            b,
            cell: 0.03 + 0.15 * rng.uniform(),
            key: rng.next_u32(),
        },
        (true, 1) => Texture::Dots {
            a,
            b,
            cell: 0.04 + 0.1 * rng.uniform(),
            radius: 0.15 + 0.25 * rng.uniform(),
        },
        (true, _) => Texture::Waves {
            a,
            b,
            centre: (rng.uniform(), rng.uniform()),
            freq: 3.0 + 12.0 * rng.uniform(),
        },
    }
}

/// A star-shaped outline `r(θ)` around a centre: an ellipse, a regular polygon, or a blob
/// (a few random harmonics), optionally with a hole (a ring).
#[derive(Debug, Clone)]
struct Shape {
    cx: f32,
    cy: f32,
    radius: f32,
    rot: f32,
    kind: ShapeKind,
    /// Inner radius as a fraction of the outline (0: solid).
    hole: f32,
}

#[derive(Debug, Clone)]
enum ShapeKind {
    Ellipse { aspect: f32 },
    Polygon { sides: u32 },
    Blob { harmonics: Vec<(f32, f32)> },
}

impl Shape {
    fn random(rng: &mut Pcg32) -> Self {
        let radius = 0.08 + 0.22 * rng.uniform();
        let kind = match rng.next_u32() % 3 {
            0 => ShapeKind::Ellipse {
                aspect: 0.35 + 0.65 * rng.uniform(),
            },
            1 => ShapeKind::Polygon {
                sides: 3 + rng.next_u32() % 5,
            },
            _ => ShapeKind::Blob {
                harmonics: (0..4)
                    .map(|_| (0.18 * rng.uniform(), rng.uniform() * std::f32::consts::TAU))
                    .collect(),
            },
        };
        let hole = if rng.uniform() < 0.12 {
            0.35 + 0.3 * rng.uniform()
        } else {
            0.0
        };
        Self {
            cx: 0.1 + 0.8 * rng.uniform(),
            cy: 0.1 + 0.8 * rng.uniform(),
            radius,
            rot: rng.uniform() * std::f32::consts::TAU,
            kind,
            hole,
        }
    }

    /// Outline radius at angle `t` (already rotated into the shape's frame).
    fn outline(&self, t: f32) -> f32 {
        match &self.kind {
            ShapeKind::Ellipse { aspect } => {
                let (c, s) = (t.cos(), t.sin() / aspect);
                self.radius / (c * c + s * s).sqrt()
            }
            ShapeKind::Polygon { sides } => {
                let seg = std::f32::consts::TAU / *sides as f32;
                let local = t.rem_euclid(seg) - seg / 2.0;
                self.radius * (seg / 2.0).cos() / local.cos()
            }
            ShapeKind::Blob { harmonics } => {
                let mut r = 1.0;
                for (k, (amp, phase)) in harmonics.iter().enumerate() {
                    r += amp * ((k as f32 + 2.0) * t + phase).cos();
                }
                self.radius * r
            }
        }
    }

    fn contains(&self, x: f32, y: f32) -> bool {
        let (dx, dy) = (x - self.cx, y - self.cy);
        let d = (dx * dx + dy * dy).sqrt();
        if d > self.radius * 1.8 {
            return false;
        }
        let r = self.outline(dy.atan2(dx) - self.rot);
        d <= r && d >= r * self.hole
    }
}

/// Generates sample `index` of the stream with seed `seed`.
pub fn generate(cfg: &ProceduralConfig, seed: u64, index: u64) -> Result<Scene> {
    if cfg.size < 16 || cfg.size > 4096 {
        return Err(Error::Invalid(format!(
            "procedural image size {} must lie in 16..=4096",
            cfg.size
        )));
    }
    if cfg.min_objects == 0 || cfg.max_objects < cfg.min_objects {
        return Err(Error::Invalid(format!(
            "procedural objects {}..={} must be a non-empty range of at least 1",
            cfg.min_objects, cfg.max_objects
        )));
    }
    let n = cfg.size;
    let inv = 1.0 / n as f32;
    // Different streams for different samples without correlation between neighbours.
    let mut rng = Pcg32::new(
        seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ index.wrapping_mul(0xd1b5_4a32_d192_ed03),
    );
    let background = texture(&mut rng, cfg.domain);
    let count =
        cfg.min_objects + (rng.next_u32() as usize) % (cfg.max_objects - cfg.min_objects + 1);
    let shapes: Vec<(Shape, Texture)> = (0..count)
        .map(|_| (Shape::random(&mut rng), texture(&mut rng, cfg.domain)))
        .collect();
    // Soft shading so flat colours are not trivially separable by value alone.
    let light = unit_dir(&mut rng);
    let shade = 0.25 * rng.uniform();

    // Owner of each pixel in painter's order (later objects occlude earlier ones).
    let mut owner = vec![u8::MAX; n * n];
    for (k, (shape, _)) in shapes.iter().enumerate() {
        let r = shape.radius * 1.8;
        let x0 = ((shape.cx - r).max(0.0) * n as f32) as usize;
        let x1 = (((shape.cx + r).min(1.0) * n as f32).ceil() as usize).min(n);
        let y0 = ((shape.cy - r).max(0.0) * n as f32) as usize;
        let y1 = (((shape.cy + r).min(1.0) * n as f32).ceil() as usize).min(n);
        for y in y0..y1 {
            for x in x0..x1 {
                if shape.contains((x as f32 + 0.5) * inv, (y as f32 + 0.5) * inv) {
                    owner[y * n + x] = k as u8;
                }
            }
        }
    }
    let mut rgb = vec![0f32; 3 * n * n];
    for y in 0..n {
        for x in 0..n {
            let (fx, fy) = ((x as f32 + 0.5) * inv, (y as f32 + 0.5) * inv);
            let i = y * n + x;
            let (c, s) = match owner[i] {
                u8::MAX => (background.at(fx, fy), 0.0),
                k => {
                    let (shape, tex) = &shapes[k as usize];
                    let d = ((fx - shape.cx) * light.0 + (fy - shape.cy) * light.1) / shape.radius;
                    (tex.at(fx - shape.cx, fy - shape.cy), shade * d)
                }
            };
            for ch in 0..3 {
                rgb[3 * i + ch] = c[ch] * (1.0 - s);
            }
        }
    }
    let mut objects: Vec<ObjectMask> = (0..count)
        .map(|k| {
            ObjectMask::new(
                k as u64 + 1,
                owner.iter().map(|&o| o as usize == k).collect(),
            )
        })
        .collect();

    match cfg.domain {
        Domain::ColourShift => colour_shift(&mut rgb, &mut rng),
        Domain::Elastic => elastic(&mut rgb, &mut objects, n, &mut rng),
        Domain::Train | Domain::UnseenTextures => {}
    }
    // Sensor noise, then 8-bit.
    let data: Vec<u8> = rgb
        .iter()
        .map(|&v| ((v + 0.02 * (rng.uniform() - 0.5)).clamp(0.0, 1.0) * 255.0 + 0.5) as u8)
        .collect();
    objects.retain(|o| o.area >= cfg.min_area);
    Ok(Scene {
        image: RgbImage::new(n, n, data)?,
        objects,
    })
}

/// A global colour transform: random channel mixing, per-channel gamma, contrast.
fn colour_shift(rgb: &mut [f32], rng: &mut Pcg32) {
    let mut m = [[0f32; 3]; 3];
    for (r, row) in m.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = if r == c {
                0.5 + 0.4 * rng.uniform()
            } else {
                0.35 * rng.uniform()
            };
        }
    }
    let gamma = [
        0.5 + rng.uniform(),
        0.5 + rng.uniform(),
        0.5 + rng.uniform(),
    ];
    let contrast = 0.5 + 0.4 * rng.uniform();
    for px in rgb.chunks_exact_mut(3) {
        let src = [px[0], px[1], px[2]];
        for ch in 0..3 {
            let v = (m[ch][0] * src[0] + m[ch][1] * src[1] + m[ch][2] * src[2]).clamp(0.0, 1.0);
            px[ch] = 0.5 + (v.powf(gamma[ch]) - 0.5) * contrast;
        }
    }
}

/// A smooth random displacement (value noise, amplitude a few percent of the side), applied
/// to the image by bilinear sampling and to the masks by nearest sampling.
fn elastic(rgb: &mut Vec<f32>, objects: &mut [ObjectMask], n: usize, rng: &mut Pcg32) {
    let (kx, ky) = (rng.next_u32(), rng.next_u32());
    let amp = (0.03 + 0.04 * rng.uniform()) * n as f32;
    let cell = 0.2 + 0.15 * rng.uniform();
    let src = rgb.clone();
    let mut maps = Vec::with_capacity(n * n);
    for y in 0..n {
        for x in 0..n {
            let (u, v) = (x as f32 / n as f32 / cell, y as f32 / n as f32 / cell);
            let sx =
                (x as f32 + amp * (2.0 * value_noise(u, v, kx) - 1.0)).clamp(0.0, (n - 1) as f32);
            let sy =
                (y as f32 + amp * (2.0 * value_noise(u, v, ky) - 1.0)).clamp(0.0, (n - 1) as f32);
            maps.push((sx, sy));
        }
    }
    for (i, &(sx, sy)) in maps.iter().enumerate() {
        let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(n - 1), (y0 + 1).min(n - 1));
        let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
        for ch in 0..3 {
            let p = |xx: usize, yy: usize| src[3 * (yy * n + xx) + ch];
            rgb[3 * i + ch] = (p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx) * (1.0 - fy)
                + (p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx) * fy;
        }
    }
    for o in objects.iter_mut() {
        let mask: Vec<bool> = maps
            .iter()
            .map(|&(sx, sy)| o.mask[(sy.round() as usize) * n + sx.round() as usize])
            .collect();
        *o = ObjectMask::new(o.id, mask);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_disjoint() {
        let cfg = ProceduralConfig::default();
        let a = generate(&cfg, 7, 3).unwrap();
        let b = generate(&cfg, 7, 3).unwrap();
        assert_eq!(a.image.data, b.image.data);
        let c = generate(&cfg, 7, 4).unwrap();
        assert_ne!(a.image.data, c.image.data);
        // Visible masks never overlap (painter's order).
        for p in 0..cfg.size * cfg.size {
            assert!(a.objects.iter().filter(|o| o.mask[p]).count() <= 1);
        }
    }
}
