// What the browser test files share: paths, the server and Debian's Chromium (headless,
// driven by playwright-core, no browser download), and helpers that drive <ruac-demo> the
// way a visitor does (file chooser, mouse) and read its state.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from '../serve.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const TARGET = process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target');
export const ARTIFACTS = path.join(TARGET, 'browser-artifacts');
export const REFERENCE = path.join(TARGET, 'tmp', 'ruac-web-reference.json');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const FIXTURES = path.join(ROOT, 'web/tests/fixtures');
export const CASE = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'case.json'), 'utf8'));
/** CPU in wasm runs the same candle code as natively; only summation order may differ. */
export const TOL_CPU = 1e-4;
export const SLOW = 180_000;
/** The micro model most cases compare with (REFERENCE); `model: null` keeps the page's default. */
export const MICRO = 'web/models/ruac-micro.safetensors';

/** The server and the browser of one test file: `env.baseUrl`, `env.context`. */
export const env = { server: null, baseUrl: null, context: null, userDir: null };

/** Starts the server on a free port and Chromium; `files` must exist (what to build if not). */
export async function launch(files = []) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM=/path/to/chrome)`);
  }
  if (!fs.existsSync(path.join(ROOT, 'pkg/ruac_web_bg.wasm'))) {
    throw new Error('pkg/ruac_web_bg.wasm is missing: run `make pkg` first');
  }
  for (const f of files) {
    if (!fs.existsSync(f)) throw new Error(`${f} is missing: run \`cargo test -p ruac-web --test native_reference\` first`);
  }
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  ({ server: env.server, url: env.baseUrl } = await serve({ root: ROOT, port: 0, quiet: true }));
  env.userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ruac-chromium-'));
  // The flags that give a software WebGPU adapter (SwiftShader) here, and keep Chromium
  // off the network (the machine's closed network refuses it otherwise).
  env.context = await chromium.launchPersistentContext(env.userDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
  });
}

export async function shutdown() {
  await env.context?.close();
  env.server?.close();
  if (env.userDir) fs.rmSync(env.userDir, { recursive: true, force: true });
}

/** Opens the demo and collects console errors and uncaught exceptions (`workers`: the
 * workers' console errors too; `init`: a function to run in the page before its scripts). */
export async function open(query, { model = MICRO, workers = false, init = null } = {}) {
  if (model) query = `${query}${query.includes('?') ? '&' : '?'}model=${encodeURIComponent(model)}`;
  const page = await env.context.newPage();
  if (init) await page.addInitScript(init);
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console.error: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  if (workers) page.on('worker', (w) => w.on('console', (m) => { if (m.type() === 'error') errors.push(`worker console.error: ${m.text()}`); }));
  await page.goto(`${env.baseUrl}${query}`);
  await page.waitForFunction(() => {
    const el = document.querySelector('ruac-demo');
    return el?.modelReady || (el && !el.shadowRoot.querySelector('[data-id=message]').hidden);
  }, null, { timeout: SLOW });
  if (!(await demo(page, (el) => el.modelReady))) {
    throw new Error(`the model did not load: ${await shadowText(page, 'message')}`);
  }
  // The element opens on a sample photo: a test starts once that is encoded, so the sample
  // never answers for what the test opens next.
  await page.waitForFunction(() => document.querySelector('ruac-demo').startDone, null, { timeout: SLOW });
  return { page, errors };
}

/** Runs `f(el, arg)` in the page on the first <ruac-demo>. */
export const demo = (page, f, arg) => page.evaluate(([src, a]) => new Function('el', 'arg', `return (${src})(el, arg)`)(document.querySelector('ruac-demo'), a), [f.toString(), arg]);
export const shadowText = (page, id) => page.locator(`ruac-demo [data-id=${id}]`).innerText();

export async function openImage(page, file) {
  await demo(page, (el) => { el.encoded = false; });
  await page.locator('ruac-demo input[data-id=file]').setInputFiles(file);
  await page.waitForFunction(() => document.querySelector('ruac-demo').encoded, null, { timeout: SLOW });
}

/** Clicks the centre of image pixel (x, y) and waits for the new result. */
export async function clickPixel(page, x, y, opts = {}) {
  const size = await demo(page, (el) => [el.current.width, el.current.height]);
  const box = await page.locator('ruac-demo canvas[data-id=image]').boundingBox();
  await demo(page, (el) => { el.result = null; });
  await page.mouse.click(box.x + ((x + 0.5) * box.width) / size[0], box.y + ((y + 0.5) * box.height) / size[1], opts);
  await waitForResult(page);
}

/** Waits for `el.result`. A boolean, not the result: waitForFunction returns a handle to its
 * value, and an undisposed handle keeps the object alive in the page. */
export const waitForResult = (page) => page.waitForFunction(() => !!document.querySelector('ruac-demo').result, null, { timeout: SLOW });

export async function result(page) {
  return demo(page, (el) => {
    const r = el.result;
    return { ...r, masks: Array.from(r.masks), uncertainty: Array.from(r.uncertainty), iou: Array.from(r.iou) };
  });
}

export function maxAbs(a, b) {
  assert.equal(a.length, b.length, 'array lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function compareWithNative(r, tol, label, reference = REFERENCE) {
  // A reference file, or an already parsed reference object.
  const ref = typeof reference === 'string' ? JSON.parse(fs.readFileSync(reference, 'utf8')) : reference;
  assert.deepEqual([r.k, r.height, r.width], [ref.k, ref.height, ref.width], `${label}: shape`);
  const dm = maxAbs(r.masks, ref.masks);
  const du = maxAbs(r.uncertainty, ref.uncertainty);
  const di = maxAbs(r.iou, ref.iou);
  console.log(`${label}: max abs error vs native: logits ${dm.toExponential(2)}, uncertainty ${du.toExponential(2)}, IoU ${di.toExponential(2)}`);
  assert.ok(dm <= tol, `${label}: mask logits differ from native by ${dm} > ${tol}`);
  assert.ok(du <= tol, `${label}: uncertainty differs from native by ${du} > ${tol}`);
  assert.ok(di <= tol, `${label}: IoU differs from native by ${di} > ${tol}`);
  assert.equal(r.mode, ref.mode);
}

const crcTable = new Int32Array(256).map((_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c; });
/** CRC-32 (PNG's and zip's). */
export const crc32 = (buf) => { let c = -1; for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8); return (c ^ -1) >>> 0; };

/** The bytes of a PNG chunk: length, type, data, CRC-32. */
export function pngChunk(type, data) {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type), data]);
  const c = Buffer.alloc(4); c.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, c]);
}
export const PNG_SIGNATURE = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);

/** A PNG of w x h grey pixels (compresses to a few hundred kB even at 8000²). */
export function greyPng(w, h) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 0;
  const row = Buffer.alloc(w + 1, 128); row[0] = 0;
  const raw = Buffer.concat(Array.from({ length: h }, () => row));
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), pngChunk('IDAT', zlib.deflateSync(raw)), pngChunk('IEND', Buffer.alloc(0))]);
}
