//! Pictures: the inferno colormap for uncertainty maps, a colour bar legend with its unit,
//! and mask overlays. Plain RGB buffers, so the same code serves the CLI and the web page.

/// Matplotlib's inferno colormap (CC0, van der Walt & Smith), 256 entries: perceptually
/// uniform and readable in grey scale.
const INFERNO: [[u8; 3]; 256] = [
    [0, 0, 4], [1, 0, 5], [1, 1, 6], [1, 1, 8], [2, 1, 10], [2, 2, 12], [2, 2, 14], [3, 2, 16],
    [4, 3, 18], [4, 3, 20], [5, 4, 23], [6, 4, 25], [7, 5, 27], [8, 5, 29], [9, 6, 31], [10, 7, 34],
    [11, 7, 36], [12, 8, 38], [13, 8, 41], [14, 9, 43], [16, 9, 45], [17, 10, 48], [18, 10, 50], [20, 11, 52],
    [21, 11, 55], [22, 11, 57], [24, 12, 60], [25, 12, 62], [27, 12, 65], [28, 12, 67], [30, 12, 69], [31, 12, 72],
    [33, 12, 74], [35, 12, 76], [36, 12, 79], [38, 12, 81], [40, 11, 83], [41, 11, 85], [43, 11, 87], [45, 11, 89],
    [47, 10, 91], [49, 10, 92], [50, 10, 94], [52, 10, 95], [54, 9, 97], [56, 9, 98], [57, 9, 99], [59, 9, 100],
    [61, 9, 101], [62, 9, 102], [64, 10, 103], [66, 10, 104], [68, 10, 104], [69, 10, 105], [71, 11, 106], [73, 11, 106],
    [74, 12, 107], [76, 12, 107], [77, 13, 108], [79, 13, 108], [81, 14, 108], [82, 14, 109], [84, 15, 109], [85, 15, 109],
    [87, 16, 110], [89, 16, 110], [90, 17, 110], [92, 18, 110], [93, 18, 110], [95, 19, 110], [97, 19, 110], [98, 20, 110],
    [100, 21, 110], [101, 21, 110], [103, 22, 110], [105, 22, 110], [106, 23, 110], [108, 24, 110], [109, 24, 110], [111, 25, 110],
    [113, 25, 110], [114, 26, 110], [116, 26, 110], [117, 27, 110], [119, 28, 109], [120, 28, 109], [122, 29, 109], [124, 29, 109],
    [125, 30, 109], [127, 30, 108], [128, 31, 108], [130, 32, 108], [132, 32, 107], [133, 33, 107], [135, 33, 107], [136, 34, 106],
    [138, 34, 106], [140, 35, 105], [141, 35, 105], [143, 36, 105], [144, 37, 104], [146, 37, 104], [147, 38, 103], [149, 38, 103],
    [151, 39, 102], [152, 39, 102], [154, 40, 101], [155, 41, 100], [157, 41, 100], [159, 42, 99], [160, 42, 99], [162, 43, 98],
    [163, 44, 97], [165, 44, 96], [166, 45, 96], [168, 46, 95], [169, 46, 94], [171, 47, 94], [173, 48, 93], [174, 48, 92],
    [176, 49, 91], [177, 50, 90], [179, 50, 90], [180, 51, 89], [182, 52, 88], [183, 53, 87], [185, 53, 86], [186, 54, 85],
    [188, 55, 84], [189, 56, 83], [191, 57, 82], [192, 58, 81], [193, 58, 80], [195, 59, 79], [196, 60, 78], [198, 61, 77],
    [199, 62, 76], [200, 63, 75], [202, 64, 74], [203, 65, 73], [204, 66, 72], [206, 67, 71], [207, 68, 70], [208, 69, 69],
    [210, 70, 68], [211, 71, 67], [212, 72, 66], [213, 74, 65], [215, 75, 63], [216, 76, 62], [217, 77, 61], [218, 78, 60],
    [219, 80, 59], [221, 81, 58], [222, 82, 56], [223, 83, 55], [224, 85, 54], [225, 86, 53], [226, 87, 52], [227, 89, 51],
    [228, 90, 49], [229, 92, 48], [230, 93, 47], [231, 94, 46], [232, 96, 45], [233, 97, 43], [234, 99, 42], [235, 100, 41],
    [235, 102, 40], [236, 103, 38], [237, 105, 37], [238, 106, 36], [239, 108, 35], [239, 110, 33], [240, 111, 32], [241, 113, 31],
    [241, 115, 29], [242, 116, 28], [243, 118, 27], [243, 120, 25], [244, 121, 24], [245, 123, 23], [245, 125, 21], [246, 126, 20],
    [246, 128, 19], [247, 130, 18], [247, 132, 16], [248, 133, 15], [248, 135, 14], [248, 137, 12], [249, 139, 11], [249, 140, 10],
    [249, 142, 9], [250, 144, 8], [250, 146, 7], [250, 148, 7], [251, 150, 6], [251, 151, 6], [251, 153, 6], [251, 155, 6],
    [251, 157, 7], [252, 159, 7], [252, 161, 8], [252, 163, 9], [252, 165, 10], [252, 166, 12], [252, 168, 13], [252, 170, 15],
    [252, 172, 17], [252, 174, 18], [252, 176, 20], [252, 178, 22], [252, 180, 24], [251, 182, 26], [251, 184, 29], [251, 186, 31],
    [251, 188, 33], [251, 190, 35], [250, 192, 38], [250, 194, 40], [250, 196, 42], [250, 198, 45], [249, 199, 47], [249, 201, 50],
    [249, 203, 53], [248, 205, 55], [248, 207, 58], [247, 209, 61], [247, 211, 64], [246, 213, 67], [246, 215, 70], [245, 217, 73],
    [245, 219, 76], [244, 221, 79], [244, 223, 83], [244, 225, 86], [243, 227, 90], [243, 229, 93], [242, 230, 97], [242, 232, 101],
    [242, 234, 105], [241, 236, 109], [241, 237, 113], [241, 239, 117], [241, 241, 121], [242, 242, 125], [242, 244, 130], [243, 245, 134],
    [243, 246, 138], [244, 248, 142], [245, 249, 146], [246, 250, 150], [248, 251, 154], [249, 252, 157], [250, 253, 161], [252, 255, 164],
];

/// Inferno colour of `t`, clamped to `[0, 1]` (NaN maps to the bottom colour).
pub fn inferno(t: f32) -> [u8; 3] {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    INFERNO[(t * 255.0).round() as usize]
}

/// Colours a map with values in `[0, vmax]`.
pub fn colorize(values: &[f32], vmax: f32) -> Vec<u8> {
    let inv = if vmax > 0.0 { 1.0 / vmax } else { 0.0 };
    values.iter().flat_map(|v| inferno(v * inv)).collect()
}

/// A 3x5 bitmap font for legend labels: digits, every lowercase letter (capitals are drawn
/// as their lowercase shape), space and the punctuation of numbers and units.
fn glyph(c: char) -> Option<[u8; 5]> {
    Some(match c.to_ascii_lowercase() {
        ' ' => [0; 5],
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        'a' => [0b000, 0b110, 0b011, 0b101, 0b111],
        'b' => [0b100, 0b100, 0b111, 0b101, 0b111],
        'c' => [0b000, 0b111, 0b100, 0b100, 0b111],
        'd' => [0b001, 0b001, 0b111, 0b101, 0b111],
        'e' => [0b111, 0b101, 0b111, 0b100, 0b111],
        'f' => [0b011, 0b010, 0b111, 0b010, 0b010],
        'g' => [0b011, 0b101, 0b011, 0b001, 0b110],
        'h' => [0b100, 0b100, 0b111, 0b101, 0b101],
        'i' => [0b010, 0b000, 0b010, 0b010, 0b010],
        'j' => [0b001, 0b000, 0b001, 0b101, 0b111],
        'k' => [0b100, 0b101, 0b110, 0b110, 0b101],
        'l' => [0b110, 0b010, 0b010, 0b010, 0b111],
        'm' => [0b000, 0b101, 0b111, 0b101, 0b101],
        'n' => [0b000, 0b110, 0b101, 0b101, 0b101],
        'o' => [0b000, 0b111, 0b101, 0b101, 0b111],
        'p' => [0b000, 0b111, 0b101, 0b111, 0b100],
        'q' => [0b000, 0b111, 0b101, 0b111, 0b001],
        'r' => [0b000, 0b111, 0b100, 0b100, 0b100],
        's' => [0b000, 0b111, 0b110, 0b011, 0b111],
        't' => [0b010, 0b111, 0b010, 0b010, 0b011],
        'u' => [0b000, 0b101, 0b101, 0b101, 0b111],
        'v' => [0b000, 0b101, 0b101, 0b101, 0b010],
        'w' => [0b000, 0b101, 0b101, 0b111, 0b101],
        'x' => [0b000, 0b101, 0b010, 0b010, 0b101],
        'y' => [0b000, 0b101, 0b101, 0b111, 0b001],
        'z' => [0b000, 0b111, 0b010, 0b100, 0b111],
        '.' => [0b000, 0b000, 0b000, 0b000, 0b010],
        ',' => [0b000, 0b000, 0b000, 0b010, 0b100],
        '-' => [0b000, 0b000, 0b111, 0b000, 0b000],
        '+' => [0b000, 0b010, 0b111, 0b010, 0b000],
        '(' => [0b001, 0b010, 0b010, 0b010, 0b001],
        ')' => [0b100, 0b010, 0b010, 0b010, 0b100],
        ':' => [0b000, 0b010, 0b000, 0b010, 0b000],
        '/' => [0b001, 0b001, 0b010, 0b100, 0b100],
        '%' => [0b101, 0b001, 0b010, 0b100, 0b101],
        '=' => [0b000, 0b111, 0b000, 0b111, 0b000],
        '_' => [0b000, 0b000, 0b000, 0b000, 0b111],
        _ => return None,
    })
}

/// The characters of `text` the legend font cannot draw (empty when it draws all of them).
pub fn missing_glyphs(text: &str) -> Vec<char> {
    text.chars().filter(|&c| glyph(c).is_none()).collect()
}

/// The legend's unit strings: `trainer segment` writes them into `uncertainty.png`.
pub const UNIT_NATS: &str = "nats";
/// The analytic mode's unit (normalised binary entropy, 0 to 1).
pub const UNIT_NORM_ENTROPY: &str = "norm. entropy";

/// Draws `text` at `(x, y)` in an RGB buffer of width `w`, each font pixel `scale` wide.
pub fn draw_text(buf: &mut [u8], w: usize, x: usize, y: usize, text: &str, scale: usize, color: [u8; 3]) {
    let h = buf.len() / (3 * w);
    for (i, c) in text.chars().enumerate() {
        let Some(g) = glyph(c) else { continue };
        for (row, bits) in g.iter().enumerate() {
            for col in 0..3 {
                if bits >> (2 - col) & 1 == 1 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let px = x + (i * 4 + col) * scale + dx;
                            let py = y + row * scale + dy;
                            if px < w && py < h {
                                buf[(py * w + px) * 3..(py * w + px) * 3 + 3].copy_from_slice(&color);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Appends a legend panel to the right of a colourised `w x h` map: a vertical colour bar
/// from 0 (bottom) to `vmax` (top), tick labels, and the unit. Returns the new width.
pub fn with_legend(map: &[u8], w: usize, h: usize, vmax: f32, unit: &str) -> (Vec<u8>, usize) {
    let scale = (h / 120).clamp(1, 4);
    let label_w = (4 * 5 + 2) * scale;
    let bar_w = 6 * scale;
    let unit_w = (unit.chars().count() * 4 + 2) * scale;
    let panel = (bar_w + label_w + 8 * scale).max(unit_w + 4 * scale);
    let nw = w + panel;
    let mut out = vec![255u8; nw * h * 3];
    for y in 0..h {
        out[y * nw * 3..y * nw * 3 + w * 3].copy_from_slice(&map[y * w * 3..(y + 1) * w * 3]);
    }
    if h < 40 {
        return (out, nw); // too small for a readable bar: keep the map, leave the panel blank
    }
    let top = 8 * scale;
    let bottom = h.saturating_sub(12 * scale).max(top + 1);
    let x0 = w + 4 * scale;
    for y in top..bottom {
        let t = 1.0 - (y - top) as f32 / (bottom - top).max(1) as f32;
        let c = inferno(t);
        for x in x0..x0 + bar_w {
            out[(y * nw + x) * 3..(y * nw + x) * 3 + 3].copy_from_slice(&c);
        }
    }
    for (frac, y) in [(1.0f32, top), (0.5, (top + bottom) / 2), (0.0, bottom.saturating_sub(5 * scale))] {
        let label = format!("{:.2}", vmax * frac);
        draw_text(&mut out, nw, x0 + bar_w + 2 * scale, y, &label, scale, [0, 0, 0]);
    }
    draw_text(&mut out, nw, w + 2 * scale, h.saturating_sub(6 * scale), unit, scale, [0, 0, 0]);
    (out, nw)
}

/// Blends a binary mask over an RGB image (fill at `alpha`, opaque outline).
pub fn overlay_mask(rgb: &[u8], w: usize, h: usize, mask: &[bool], color: [u8; 3], alpha: f32) -> Vec<u8> {
    let mut out = rgb.to_vec();
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if !mask[i] {
                continue;
            }
            let edge = x == 0 || y == 0 || x + 1 == w || y + 1 == h || !mask[i - 1] || !mask[i + 1] || !mask[i - w] || !mask[i + w];
            for c in 0..3 {
                let v = &mut out[i * 3 + c];
                *v = if edge { color[c] } else { ((1.0 - alpha) * *v as f32 + alpha * color[c] as f32).round() as u8 };
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inferno_endpoints_match_matplotlib() {
        // Matplotlib's inferno(0) = #000004, inferno(0.5) = #bc3754, inferno(1) = #fcffa4.
        assert_eq!(inferno(0.0), [0, 0, 4]);
        assert_eq!(inferno(0.5), [188, 55, 84]);
        assert_eq!(inferno(1.0), [252, 255, 164]);
        // Luminance rises monotonically: the map reads in grey scale.
        let lum = |c: [u8; 3]| 0.2126 * c[0] as f32 + 0.7152 * c[1] as f32 + 0.0722 * c[2] as f32;
        let mut prev = -1.0;
        for i in 0..=20 {
            let l = lum(inferno(i as f32 / 20.0));
            assert!(l >= prev - 0.5, "luminance drops at {i}");
            prev = l;
        }
    }

    #[test]
    fn legend_widens_the_image_and_keeps_the_map() {
        let map = colorize(&[0.0, 0.3, 0.69, 0.1], 0.69);
        let (out, nw) = with_legend(&map, 2, 2, 0.69, "nats");
        assert!(nw > 2);
        assert_eq!(&out[0..6], &map[0..6]);
    }

    #[test]
    fn every_legend_string_has_glyphs() {
        use crate::predictor::UncertaintyMode;
        // The units drawn into exported legends: the trainer's, the page's export
        // (web/ruac-demo.js passes "nats" or "entropy") and the predictor's long forms.
        let mut texts: Vec<String> = vec![UNIT_NATS.into(), UNIT_NORM_ENTROPY.into(), "entropy".into()];
        for mode in [UncertaintyMode::Analytic, UncertaintyMode::MonteCarlo { samples: 20, seed: 0 }] {
            texts.push(mode.unit().into());
            // The tick labels with_legend draws.
            for frac in [1.0f32, 0.5, 0.0] {
                texts.push(format!("{:.2}", mode.max_value() * frac));
            }
        }
        texts.push(format!("{:.2}", -1.5f32));
        for t in &texts {
            assert!(missing_glyphs(t).is_empty(), "no glyph for {:?} in {t:?}", missing_glyphs(t));
        }
        for c in ('a'..='z').chain('0'..='9') {
            assert!(glyph(c).is_some() && glyph(c.to_ascii_uppercase()).is_some(), "{c}");
        }
        // Every letter is drawn (no blank glyph but the space) and no two letters or digits
        // share a shape.
        let mut seen = std::collections::HashMap::new();
        for c in ('a'..='z').chain('0'..='9') {
            let g = glyph(c).unwrap();
            assert!(g.iter().any(|&r| r != 0), "{c} is blank");
            assert!(g.iter().all(|&r| r < 8), "{c} is wider than 3 columns");
            if let Some(prev) = seen.insert(g, c) {
                panic!("{c} and {prev} look the same");
            }
        }
        assert_eq!(missing_glyphs("p\u{e9}y~"), vec!['\u{e9}', '~']);
    }

    #[test]
    fn draw_text_draws_p_and_y() {
        // "py" at scale 1 in a 8x5 buffer: the glyphs' set bits, each a black pixel.
        let mut buf = vec![255u8; 8 * 5 * 3];
        draw_text(&mut buf, 8, 0, 0, "py", 1, [0, 0, 0]);
        let black = buf.chunks(3).filter(|p| p == &[0, 0, 0]).count();
        let bits = |c| glyph(c).unwrap().iter().map(|r: &u8| r.count_ones() as usize).sum::<usize>();
        assert_eq!(black, bits('p') + bits('y'));
        assert!(black > 0);
    }

    #[test]
    fn overlay_outlines_and_fills() {
        let rgb = vec![0u8; 5 * 5 * 3];
        let mut mask = vec![false; 25];
        for y in 1..4 {
            for x in 1..4 {
                mask[y * 5 + x] = true;
            }
        }
        let out = overlay_mask(&rgb, 5, 5, &mask, [200, 100, 0], 0.5);
        assert_eq!(&out[(5 + 1) * 3..(5 + 1) * 3 + 3], &[200, 100, 0]); // outline
        assert_eq!(&out[(2 * 5 + 2) * 3..(2 * 5 + 2) * 3 + 3], &[100, 50, 0]); // filled centre
        assert_eq!(&out[0..3], &[0, 0, 0]); // outside
    }
}
