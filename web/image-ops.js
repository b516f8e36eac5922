// Pixel work done in the page: decoding with size checks, the stress test's style shift and
// smooth elastic deformation (RUAC's two attack families, issue #5 "Stress test"), and the
// overlays (mask fill and outline, uncertainty heat map).

/** The longest side the demo works at; larger pictures are downscaled (the model sees
 * `image_size`² anyway, and `K x H x W` maps of a 8k photo would take gigabytes). */
export const MAX_SIDE = 1024;
/** Above this the picture is refused outright (ruac-core's `MAX_IMAGE_PIXELS`). */
export const MAX_PIXELS = 8192 * 8192;

/** Decodes a Blob into RGBA ImageData, downscaling large pictures. Resolves
 * `{ image, note }`; rejects with a message a visitor can act on. */
export async function decodeImage(blob, name = 'the file') {
  let bmp;
  const opts = { colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'from-image' };
  try {
    bmp = await createImageBitmap(blob, opts);
  } catch {
    throw new Error(`${name} is not an image the browser can decode (try PNG, JPEG, WebP, GIF or BMP).`);
  }
  const { width, height } = bmp;
  if (width * height > MAX_PIXELS) {
    bmp.close();
    throw new Error(`${name} is ${width}×${height}: larger than 8192×8192 pixels. Downscale it first.`);
  }
  let note = null;
  const scale = Math.min(1, MAX_SIDE / Math.max(width, height));
  if (scale < 1) {
    const w = Math.max(1, Math.round(width * scale));
    const h = Math.max(1, Math.round(height * scale));
    const small = await createImageBitmap(bmp, { ...opts, resizeWidth: w, resizeHeight: h, resizeQuality: 'high' });
    bmp.close();
    bmp = small;
    note = `${name} is ${width}×${height}; the demo works at most ${MAX_SIDE} px on the longer side, so it was downscaled to ${w}×${h}.`;
  }
  const c = new OffscreenCanvas(bmp.width, bmp.height);
  const ctx = c.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bmp, 0, 0);
  bmp.close();
  return { image: ctx.getImageData(0, 0, c.width, c.height), note };
}

/** Seeded PRNG (mulberry32) so a stress setting is reproducible. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Style shift: brightness (added, -1..1 of full scale), contrast (factor about the mean),
 * colour shift (per-channel gains that move the colour statistics, strength 0..1). */
export function styleShift(src, { brightness = 0, contrast = 1, color = 0, seed = 1 }) {
  const out = new ImageData(new Uint8ClampedArray(src.data), src.width, src.height);
  const d = out.data;
  const n = d.length / 4;
  const mean = [0, 0, 0];
  for (let i = 0; i < d.length; i += 4) for (let c = 0; c < 3; c++) mean[c] += d[i + c];
  for (let c = 0; c < 3; c++) mean[c] /= n;
  const r = rng(seed);
  const gain = [0, 1, 2].map(() => 1 + color * (r() * 1.2 - 0.6));
  for (let i = 0; i < d.length; i += 4) {
    for (let c = 0; c < 3; c++) {
      const v = (d[i + c] - mean[c]) * contrast + mean[c];
      d[i + c] = v * gain[c] + brightness * 255;
    }
  }
  return out;
}

/** A smooth random displacement field: random offsets on a coarse grid (every `spacing`
 * px), bicubic-smooth (Catmull-Rom) interpolation, scaled to `strength` px. */
export function displacementField(width, height, { strength = 8, spacing = 48, seed = 1 }) {
  const gw = Math.ceil(width / spacing) + 3;
  const gh = Math.ceil(height / spacing) + 3;
  const r = rng(seed * 7919 + 1);
  const gx = new Float32Array(gw * gh).map(() => r() * 2 - 1);
  const gy = new Float32Array(gw * gh).map(() => r() * 2 - 1);
  const cr = (p0, p1, p2, p3, t) => 0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t * t + (-p0 + 3 * p1 - 3 * p2 + p3) * t * t * t);
  const sample = (g, x, y) => {
    const fx = x / spacing + 1, fy = y / spacing + 1;
    const ix = Math.floor(fx), iy = Math.floor(fy);
    const tx = fx - ix, ty = fy - iy;
    const rows = [];
    for (let j = -1; j <= 2; j++) {
      const yy = Math.min(gh - 1, Math.max(0, iy + j));
      const at = (i) => g[yy * gw + Math.min(gw - 1, Math.max(0, ix + i))];
      rows.push(cr(at(-1), at(0), at(1), at(2), tx));
    }
    return cr(rows[0], rows[1], rows[2], rows[3], ty);
  };
  const dx = new Float32Array(width * height);
  const dy = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      dx[y * width + x] = strength * sample(gx, x, y);
      dy[y * width + x] = strength * sample(gy, x, y);
    }
  }
  return { dx, dy, width, height };
}

/** Warps `src` by the field: out(x) = src(x + d(x)), bilinear, edges clamped. */
export function warpImage(src, f) {
  const { width: w, height: h } = src;
  const s = src.data;
  const out = new ImageData(w, h);
  const d = out.data;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const sx = Math.min(w - 1, Math.max(0, x + f.dx[i]));
      const sy = Math.min(h - 1, Math.max(0, y + f.dy[i]));
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      const x1 = Math.min(w - 1, x0 + 1), y1 = Math.min(h - 1, y0 + 1);
      const ax = sx - x0, ay = sy - y0;
      for (let c = 0; c < 4; c++) {
        const v00 = s[(y0 * w + x0) * 4 + c], v01 = s[(y0 * w + x1) * 4 + c];
        const v10 = s[(y1 * w + x0) * 4 + c], v11 = s[(y1 * w + x1) * 4 + c];
        d[i * 4 + c] = (v00 * (1 - ax) + v01 * ax) * (1 - ay) + (v10 * (1 - ax) + v11 * ax) * ay;
      }
    }
  }
  return out;
}

/** Warps a binary plane (nearest neighbour), to compare masks after a deformation. */
export function warpMask(mask, f) {
  const { width: w, height: h } = f;
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const sx = Math.min(w - 1, Math.max(0, Math.round(x + f.dx[i])));
      const sy = Math.min(h - 1, Math.max(0, Math.round(y + f.dy[i])));
      out[i] = mask[sy * w + sx];
    }
  }
  return out;
}

/** Where a prompt point lands after the warp: the x with x + d(x) = p, by fixed-point
 * iteration (the field is smooth and small against its spacing, so it converges). */
export function warpPoint(f, px, py) {
  let x = px, y = py;
  for (let it = 0; it < 10; it++) {
    const i = Math.min(f.height - 1, Math.max(0, Math.round(y))) * f.width + Math.min(f.width - 1, Math.max(0, Math.round(x)));
    x = Math.min(f.width, Math.max(0, px - f.dx[i]));
    y = Math.min(f.height, Math.max(0, py - f.dy[i]));
  }
  return [x, y];
}

/** Entry of the 256-colour table (`infernoLut`, ruac-core's `viz::inferno`) for `v` in
 * `[0, vmax]`: `viz::inferno`'s rule, round(255 v / vmax) clamped to the table. */
function lutIndex(v, vmax) {
  return Math.min(255, Math.max(0, Math.round((v / vmax) * 255)));
}

/** Draws the overlay for mask plane `k`: the uncertainty heat map (inferno, `opacity`),
 * the mask fill and its outline, and optionally an error plane in cyan. */
export function renderOverlay(ctx, res, k, lut, { showMask, showOutline, showHeat, opacity, errors }) {
  const { width: w, height: h } = res;
  const img = ctx.createImageData(w, h);
  const d = img.data;
  const off = k * w * h;
  const vmax = res.maxValue || 1;
  for (let i = 0; i < w * h; i++) {
    let r = 0, g = 0, b = 0, a = 0;
    if (showHeat) {
      const t = lutIndex(res.uncertainty[off + i], vmax);
      r = lut[t * 3]; g = lut[t * 3 + 1]; b = lut[t * 3 + 2]; a = opacity;
    }
    const inside = res.masks[off + i] > 0;
    if (inside && showMask) {
      // Mask fill: blend a blue tint over whatever is below (heat map or nothing).
      const fa = 0.35;
      r = r * a * (1 - fa) + 30 * fa; g = g * a * (1 - fa) + 144 * fa; b = b * a * (1 - fa) + 255 * fa;
      a = a + fa - a * fa;
      if (a > 0) { r /= a; g /= a; b /= a; }
    }
    if (errors && errors[i]) { r = 0; g = 255; b = 255; a = Math.max(a, 0.8); }
    if (showOutline && inside) {
      const x = i % w, y = (i / w) | 0;
      const edge = x === 0 || y === 0 || x === w - 1 || y === h - 1 ||
        !(res.masks[off + i - 1] > 0) || !(res.masks[off + i + 1] > 0) || !(res.masks[off + i - w] > 0) || !(res.masks[off + i + w] > 0);
      if (edge) { r = 255; g = 255; b = 255; a = 1; }
    }
    d[i * 4] = r; d[i * 4 + 1] = g; d[i * 4 + 2] = b; d[i * 4 + 3] = Math.round(a * 255);
  }
  ctx.canvas.width = w;
  ctx.canvas.height = h;
  ctx.putImageData(img, 0, 0);
}

/** Colours one uncertainty plane (no blending), for the score-vs-pixels panel. */
export function heatImage(res, k, lut) {
  const { width: w, height: h } = res;
  const img = new ImageData(w, h);
  const off = k * w * h;
  for (let i = 0; i < w * h; i++) {
    const t = lutIndex(res.uncertainty[off + i], res.maxValue || 1);
    img.data.set([lut[t * 3], lut[t * 3 + 1], lut[t * 3 + 2], 255], i * 4);
  }
  return img;
}

/** Per-mask statistics: the one score against the pixels' uncertainty. */
export function maskStats(res, k) {
  const { width: w, height: h } = res;
  const off = k * w * h;
  const half = (res.maxValue || 1) / 2;
  let area = 0, sumIn = 0, uncertainIn = 0, sumAll = 0, uncertainAll = 0;
  for (let i = 0; i < w * h; i++) {
    const u = res.uncertainty[off + i];
    sumAll += u;
    if (u > half) uncertainAll++;
    if (res.masks[off + i] > 0) {
      area++; sumIn += u;
      if (u > half) uncertainIn++;
    }
  }
  return { area, meanIn: area ? sumIn / area : 0, uncertainIn, meanAll: sumAll / (w * h), uncertainAll };
}
