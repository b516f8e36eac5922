// Speed and memory of the demo in headless Chromium (issues #5 and #13): model load, encode
// and per-click decode for each backend, as the page measures them (encode and decode
// worker-side, around the wasm call; load around `el.loadModel`, download included), plus
// the worker's wasm memory and the peak resident memory of all of Chromium's processes
// (sampled every 200 ms from /proc, Linux). Needs pkg/ built (make pkg) and Debian's chromium.
//
//   node web/bench.mjs [--backends cpu,webgpu] [--model NAME|FILE] [--image NAME|FILE]
//                      [--clicks 10] [--encodes 3]
//
// --model: a model name of the page (default: the page's default) or a checkpoint file
// (served by a local server, e.g. one written by `trainer gen-weights`). --image: a gallery
// image (default chelsea.jpg) or an image file.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from './serve.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const backends = arg('--backends', 'cpu,webgpu').split(',');
const model = arg('--model', null);
const image = arg('--image', 'chelsea.jpg');
const clicks = Number(arg('--clicks', 10));
const encodes = Number(arg('--encodes', 3));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT = 3_600_000;

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };

/** Resident memory of every Chromium process (bytes), from /proc; 0 elsewhere. */
function chromiumRss() {
  let total = 0;
  let pids = [];
  try { pids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)); } catch { return 0; }
  for (const pid of pids) {
    try {
      if (!/chrom/i.test(fs.readFileSync(`/proc/${pid}/comm`, 'utf8'))) continue;
      const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
      if (m) total += Number(m[1]) * 1024;
    } catch { /* the process ended */ }
  }
  return total;
}

/** Files outside the served folder (a generated checkpoint, an image), with CORS headers. */
function fileServer(files) {
  const s = http.createServer((req, res) => {
    const f = files[decodeURIComponent(req.url.slice(1))];
    if (!f) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'access-control-allow-origin': '*', 'content-length': fs.statSync(f).size });
    fs.createReadStream(f).pipe(res);
  });
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r([s, `http://127.0.0.1:${s.address().port}`])));
}

const files = {};
if (model && fs.existsSync(model)) files.model = path.resolve(model);
if (fs.existsSync(image)) files.image = path.resolve(image);
const [fsrv, furl] = await fileServer(files);
const modelRef = files.model ? `${furl}/model` : model;
const imageRef = files.image ? `${furl}/image` : `gallery/${image}`;

const { server, url } = await serve({ root: ROOT, port: 0, quiet: true });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ruac-bench-'));
const ctx = await chromium.launchPersistentContext(dir, {
  executablePath: CHROMIUM, headless: true,
  args: ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let peak = 0;
const sampler = setInterval(() => { peak = Math.max(peak, chromiumRss()); }, 200);
const rows = [];
const el = (page, f, a) => page.evaluate(([src, x]) => new Function('el', 'a', `return (${src})(el, a)`)(document.querySelector('ruac-demo'), x), [f.toString(), a]);
try {
  for (const backend of backends) {
    const page = await ctx.newPage();
    // The page opens with the default model and a sample encoded; measure from there.
    await page.goto(`${url}?backend=${backend}`);
    await page.waitForFunction(() => { const e = document.querySelector('ruac-demo'); return e.startDone || (e && !e.shadowRoot.querySelector('[data-id=message]').hidden); }, null, { timeout: TIMEOUT });
    const before = chromiumRss();
    peak = before;
    let loadMs = null;
    try {
      if (modelRef) {
        const t = Date.now();
        await el(page, (e, m) => e.loadModel(m).then(() => true), modelRef);
        loadMs = Date.now() - t;
      }
      const info = await el(page, (e) => e.modelInfo);
      const label = await page.locator('ruac-demo [data-id=backend]').innerText();
      const enc = [], dec = [];
      let size;
      for (let e = 0; e < encodes; e++) {
        await el(page, (x) => { x.encoded = false; });
        size = await el(page, (x, src) => x.setImage(src), imageRef);
        enc.push(parseFloat(await page.locator('ruac-demo [data-id=tenc]').innerText()));
      }
      for (let c = 0; c < clicks; c++) {
        const fx = 0.2 + (0.6 * c) / Math.max(1, clicks - 1);
        const r = await el(page, (x, p) => x.predict({ points: [[p.x, p.y, 1]] }).then((res) => res.ms), { x: fx * size.width, y: 0.5 * size.height });
        dec.push(r);
      }
      const mem = await el(page, (x) => x.workerMemory());
      rows.push({
        backend: label, model: `${info.name} (${info.config}, ${info.image_size} px, ${(info.parameters / 1e6).toFixed(1)} M parameters)`,
        image: `${image} ${size.width}x${size.height}`, load_ms: loadMs, encode_ms_median: median(enc), decode_ms_median: median(dec),
        encodes: enc, decodes: dec.map((d) => Math.round(d)), worker_wasm_mib: Math.round(mem.wasmBytes / 2 ** 20),
        chromium_rss_mib_before: Math.round(before / 2 ** 20), chromium_rss_mib_peak: Math.round(Math.max(peak, chromiumRss()) / 2 ** 20),
      });
    } catch (e) {
      rows.push({ backend, error: String(e.message || e).split('\n')[0] });
    }
    console.error(JSON.stringify(rows[rows.length - 1]));
    await page.close();
  }
} finally {
  clearInterval(sampler);
  await ctx.close();
  server.close();
  fsrv.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(rows, null, 2));
