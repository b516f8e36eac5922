// The page at real size (issue 13, items 2 and 3): a RUAC checkpoint the size of the released
// base-plus model (seeded random weights in the official layout, about 324 MB) and a
// 1024x768 image, both written by crates/ruac-web/tests/native_real_size.rs with its native
// result. The page loads it as the released model's preset, by name, from a local imitation
// of the hub (a 302 redirect to another origin, CORS headers, the SHA-256 checked), on the
// CPU fallback, encodes the image and answers a click with the native numbers (sampled every
// `stride` values). WebGPU at this size is measured by web/bench.mjs: the only adapter here
// is a software one (minutes per encode).
//
//   node --test web/tests/real-size.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { TARGET, SLOW, env, launch, shutdown, open, demo } from './harness.mjs';

const TMP = path.join(TARGET, 'tmp');
const REF = path.join(TMP, 'ruac-web-bplus-reference.json');
/** Tolerance on logits and uncertainty: wasm runs candle's code, in another summation order. */
const TOL = 1e-3;
let files, filesUrl;

before(async () => {
  await launch([REF]);
  // The model and the image from target/tmp (which need not be under the served folder);
  // `/<repo>/resolve/main/<file>` redirects to `/cdn/<file>`, as huggingface.co does.
  files = http.createServer((req, res) => {
    const resolve = req.url.match(/^\/[\w.-]+\/[\w.-]+\/resolve\/main\/([\w.-]+)$/);
    if (resolve) {
      res.writeHead(302, { location: `/cdn/${resolve[1]}`, 'access-control-allow-origin': '*' });
      res.end();
      return;
    }
    const name = path.basename(decodeURIComponent(req.url));
    const file = path.join(TMP, name === 'model.safetensors' ? JSON.parse(fs.readFileSync(REF, 'utf8')).model : name);
    if (!fs.existsSync(file)) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'access-control-allow-origin': '*', 'content-length': fs.statSync(file).size, 'content-type': 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((r) => files.listen(0, '127.0.0.1', r));
  filesUrl = `http://127.0.0.1:${files.address().port}`;
});

after(async () => {
  files?.close();
  await shutdown();
});

test('base-plus-sized RUAC on the CPU fallback: loads, encodes 1024x768 and answers a click as native', { timeout: SLOW * 4 }, async () => {
  const ref = JSON.parse(fs.readFileSync(REF, 'utf8'));
  const { page, errors } = await open(`?backend=cpu&hub=${encodeURIComponent(filesUrl)}`, { workers: true });
  // The released model's preset, with this file's size and SHA-256 in place of the release's.
  const bytes = fs.readFileSync(path.join(TMP, ref.model));
  const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
  await page.evaluate(async (m) => {
    const { MODELS } = await import(new URL('web/element/models.js', location.href).href);
    Object.assign(MODELS['ruac-sam2.1-hiera-bplus'], m);
  }, { size: bytes.length, sha256 });
  const t0 = Date.now();
  const info = await demo(page, (el) => el.loadModel('ruac-sam2.1-hiera-bplus').then((r) => ({ ...r.info, backend: r.backend })));
  const loadS = (Date.now() - t0) / 1000;
  assert.deepEqual([info.family, info.config, info.image_size, info.ruac], ['sam2', 'base_plus', 1024, true]);
  assert.match(info.backend, /CPU/);
  const t1 = Date.now();
  assert.deepEqual(await demo(page, (el, url) => el.setImage(url), `${filesUrl}/${ref.image}`), { width: ref.width, height: ref.height });
  const encodeS = (Date.now() - t1) / 1000;
  const got = await demo(page, async (el, a) => {
    const r = await el.predict({ points: [[a.click[0], a.click[1], 1]] });
    const n = r.width * r.height;
    const inside = [0, 1, 2].map((i) => r.masks.subarray(i * n, (i + 1) * n).reduce((c, v) => c + (v > 0), 0));
    const pick = (v) => Array.from(v.filter((_, i) => i % a.stride === 0));
    return { k: r.k, width: r.width, height: r.height, iou: Array.from(r.iou), best: r.best, mode: r.mode, inside, masks: pick(r.masks), uncertainty: pick(r.uncertainty), ms: r.ms };
  }, ref);
  const mem = await demo(page, (el) => el.workerMemory());
  console.log(`base-plus-sized on the CPU fallback: load ${loadS.toFixed(1)} s, encode ${encodeS.toFixed(1)} s (native ${ref.native_encode_s.toFixed(1)} s), click ${got.ms.toFixed(0)} ms, worker wasm memory ${(mem.wasmBytes / 2 ** 20).toFixed(0)} MiB`);
  assert.deepEqual([got.k, got.width, got.height, got.best, got.mode], [ref.k, ref.width, ref.height, ref.best, ref.mode]);
  const maxAbs = (a, b) => { assert.equal(a.length, b.length); return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0); };
  const [dm, du, di] = [maxAbs(got.masks, ref.masks), maxAbs(got.uncertainty, ref.uncertainty), maxAbs(got.iou, ref.iou)];
  console.log(`  max abs error vs native: logits ${dm.toExponential(2)}, uncertainty ${du.toExponential(2)}, IoU ${di.toExponential(2)} (${got.masks.length} sampled values)`);
  assert.ok(dm <= TOL && du <= TOL && di <= TOL, `differs from native: logits ${dm}, uncertainty ${du}, IoU ${di} (tolerance ${TOL})`);
  // Mask areas: pixels whose logit is within rounding of 0 may flip.
  got.inside.forEach((c, i) => assert.ok(Math.abs(c - ref.inside[i]) <= 64, `mask ${i}: ${c} pixels inside, native ${ref.inside[i]}`));
  assert.deepEqual(errors, []);
  await page.close();
});
