// Speed of the demo in headless Chromium (issue #5, "Speed"): encode and per-click decode
// times for each backend, on a gallery image, as the page measures them (worker-side,
// around the wasm call). Needs pkg/ built (make pkg) and Debian's chromium.
//
//   node web/bench.mjs [--backends cpu,webgpu] [--image chelsea.jpg] [--clicks 10] [--encodes 3]
import fs from 'node:fs';
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
const image = arg('--image', 'chelsea.jpg');
const clicks = Number(arg('--clicks', 10));
const encodes = Number(arg('--encodes', 3));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };

const { server, url } = await serve({ root: ROOT, port: 0, quiet: true });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ruac-bench-'));
const ctx = await chromium.launchPersistentContext(dir, {
  executablePath: CHROMIUM, headless: true,
  args: ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const rows = [];
try {
  for (const backend of backends) {
    const page = await ctx.newPage();
    await page.goto(`${url}?backend=${backend}`);
    const ok = await page.waitForFunction(() => {
      const el = document.querySelector('ruac-demo');
      return el.modelReady || !el.shadowRoot.querySelector('[data-id=message]').hidden;
    }, null, { timeout: 300_000 }).then(() => page.evaluate(() => document.querySelector('ruac-demo').modelReady));
    if (!ok) {
      rows.push({ backend, error: await page.locator('ruac-demo [data-id=message]').innerText() });
      await page.close();
      continue;
    }
    const label = await page.locator('ruac-demo [data-id=backend]').innerText();
    const enc = [], dec = [];
    for (let e = 0; e < encodes; e++) {
      await page.evaluate(() => { document.querySelector('ruac-demo').encoded = false; });
      await page.locator(`ruac-demo button[data-sample="${image}"]`).click();
      await page.waitForFunction(() => document.querySelector('ruac-demo').encoded, null, { timeout: 300_000 });
      enc.push(parseFloat(await page.locator('ruac-demo [data-id=tenc]').innerText()));
    }
    const size = await page.evaluate(() => [document.querySelector('ruac-demo').current.width, document.querySelector('ruac-demo').current.height]);
    const box = await page.locator('ruac-demo canvas[data-id=image]').boundingBox();
    for (let c = 0; c < clicks; c++) {
      await page.evaluate(() => { const el = document.querySelector('ruac-demo'); el.points = []; el.result = null; });
      const fx = 0.2 + (0.6 * c) / Math.max(1, clicks - 1);
      await page.mouse.click(box.x + fx * box.width, box.y + 0.5 * box.height);
      await page.waitForFunction(() => document.querySelector('ruac-demo').result, null, { timeout: 300_000 });
      dec.push(parseFloat(await page.locator('ruac-demo [data-id=tdec]').innerText()));
    }
    rows.push({ backend: label, image: `${image} ${size[0]}x${size[1]}`, encode_ms_median: median(enc), decode_ms_median: median(dec), encodes: enc, decodes: dec });
    await page.close();
  }
} finally {
  await ctx.close();
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(rows, null, 2));
