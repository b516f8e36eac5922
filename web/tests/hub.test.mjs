// The picker's hub presets (issue 13, item 3) against a local imitation of the Hugging Face
// hub: `<hub>/<repo>/resolve/main/<file>` answers 302 to a CDN on another origin, both with
// CORS headers, as huggingface.co does. The CDN serves the micro model with and without
// Content-Length, cuts one transfer halfway and serves one without CORS headers; a preset
// with a wrong SHA-256 stands for a corrupted file. What is tested is the loading path
// (redirect, progress, SHA-256, Cache API, the messages), not the big models themselves:
// test presets are added (`MODELS`, web/element/models.js), and the real presets' resolve
// URLs get the micro model as a stand-in. A file of the official layout at base-plus size
// goes through the same path in web/tests/real-size.test.mjs.
//
//   node --test web/tests/hub.test.mjs
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { REFERENCE, ROOT, SLOW, env, launch, shutdown, open, demo, shadowText, clickPixel } from './harness.mjs';

const MODEL = fs.readFileSync(path.join(ROOT, 'web/models/ruac-micro.safetensors'));
const SHA = crypto.createHash('sha256').update(MODEL).digest('hex');
/** Requests seen, by path. */
const hits = {};
let hub, cdn, hubUrl, cdnUrl;

function listen(handler) {
  const s = http.createServer((req, res) => {
    hits[req.url] = (hits[req.url] || 0) + 1;
    handler(req, res);
  });
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve([s, `http://127.0.0.1:${s.address().port}`])));
}

before(async () => {
  await launch([REFERENCE]);
  // The CDN: the file itself, in the ways a server may send it.
  [cdn, cdnUrl] = await listen((req, res) => {
    const variant = req.url.split('/').pop();
    const cors = variant === 'nocors' ? {} : { 'access-control-allow-origin': '*' };
    const type = { 'content-type': 'application/octet-stream' };
    if (variant === 'ok' || variant === 'badhash' || variant === 'nocors') {
      res.writeHead(200, { ...cors, ...type, 'content-length': MODEL.length });
      res.end(MODEL);
    } else if (variant === 'chunked' || variant === 'plain') {
      res.writeHead(200, { ...cors, ...type }); // no Content-Length: chunked
      for (let i = 0; i < MODEL.length; i += 65536) res.write(MODEL.subarray(i, i + 65536));
      res.end();
    } else if (variant === 'cut') {
      res.writeHead(200, { ...cors, ...type, 'content-length': MODEL.length });
      res.write(MODEL.subarray(0, MODEL.length >> 1), () => setTimeout(() => res.destroy(), 50));
    } else {
      res.writeHead(404, cors);
      res.end();
    }
  });
  // The hub: resolve URLs redirect to the CDN, as huggingface.co's do.
  [hub, hubUrl] = await listen((req, res) => {
    const m = req.url.match(/^\/test\/micro\/resolve\/main\/(\w+)\.safetensors$/);
    // The real presets' repositories and files (facebook/..., HongyouZhou/...): the CDN's
    // micro model stands in for each (the page reads the format from the bytes).
    const preset = req.url.match(/^\/(facebook|HongyouZhou)\/[\w.-]+\/resolve\/main\/[\w.-]+$/);
    if (!m && !preset) { res.writeHead(404, { 'access-control-allow-origin': '*' }); res.end(); return; }
    res.writeHead(302, { location: `${cdnUrl}/cdn/${m ? m[1] : 'ok'}`, 'access-control-allow-origin': '*' });
    res.end();
  });
});
after(async () => {
  hub?.close();
  cdn?.close();
  await shutdown();
});
afterEach(async () => { for (const p of env.context.pages()) if (p.url().startsWith(env.baseUrl)) await p.close(); });

/** The test's presets, one per way of serving (MODELS is a live table; the picker is refilled). */
const PRESETS = Object.fromEntries([
  ['ok', { size: MODEL.length, sha256: SHA }],
  ['chunked', { size: MODEL.length, sha256: SHA }],
  ['cut', { size: MODEL.length, sha256: SHA }],
  ['badhash', { size: MODEL.length, sha256: '0'.repeat(64) }],
  ['nocors', { size: MODEL.length, sha256: SHA }],
  ['plain', {}], // neither size nor hash published
].map(([v, m]) => [`test-${v}`, { hub: { repo: 'test/micro', file: `${v}.safetensors` }, source: 'test', label: `micro (${v})`, ...m }]));

async function openWithHub() {
  const { page, errors } = await open(`?backend=cpu&hub=${encodeURIComponent(hubUrl)}`);
  await page.evaluate(async (presets) => {
    const { MODELS } = await import(new URL('web/element/models.js', location.href).href);
    Object.assign(MODELS, presets);
    document.querySelector('ruac-demo').fillHubPresets();
  }, PRESETS);
  // Every progress text the element shows.
  await demo(page, (el) => {
    window.__phases = [];
    new MutationObserver(() => window.__phases.push(el.shadowRoot.querySelector('[data-id=ptext]').textContent))
      .observe(el.shadowRoot.querySelector('[data-id=ptext]'), { childList: true, characterData: true, subtree: true });
  });
  return { page, errors };
}
const phases = (page) => page.evaluate(() => window.__phases.splice(0));
const inCache = (page, url) => page.evaluate(async (u) => Boolean(await (await caches.open('ruac-models-v1')).match(u)), url);
const tryLoad = (page, name) => demo(page, async (el, n) => { try { await el.loadModel(n); return null; } catch (e) { return e.message; } }, name);
/** What the browser logs about refused or cut transfers is expected here. */
const unexpected = (errors) => errors.filter((e) => !/CORS|Failed to load resource|net::ERR_/.test(e));

test('hub presets: listed by name, size and source; resolve URLs under the configurable hub', { timeout: SLOW }, async () => {
  const { page } = await open(`?backend=cpu&hub=${encodeURIComponent(hubUrl)}/`);
  const options = await page.locator('ruac-demo optgroup[data-id=hubPresets] option').allInnerTexts();
  assert.deepEqual(options, [
    'RUAC on SAM 2.1 Hiera B+ (the released model) · 331 MB · RUAC release: HongyouZhou/ruac-sam2.1-hiera-bplus',
    'SAM 2.1 Hiera tiny · about 156 MB · Meta: facebook/sam2.1-hiera-tiny',
    'SAM 2.1 Hiera small · about 184 MB · Meta: facebook/sam2.1-hiera-small',
    'SAM 2.1 Hiera base+ · about 323 MB · Meta: facebook/sam2.1-hiera-base-plus',
    'SAM 2.1 Hiera large · about 898 MB · Meta: facebook/sam2.1-hiera-large',
  ]);
  const src = await demo(page, (el) => [el.modelSourceFor('ruac-sam2.1-hiera-bplus'), el.modelSourceFor('sam2.1-hiera-large').url]);
  assert.deepEqual(src[0], {
    kind: 'url', url: `${hubUrl}/HongyouZhou/ruac-sam2.1-hiera-bplus/resolve/main/model.safetensors`, cacheFirst: true,
    size: 330844812, about: 0, sha256: '678dae09c6834504d20e825793d8270f83dbc1c3c2d542ce843247d7154b46e4', name: 'ruac-sam2.1-hiera-bplus',
  });
  assert.equal(src[1], `${hubUrl}/facebook/sam2.1-hiera-large/resolve/main/sam2.1_hiera_large.pt`);
  // Without `?hub=`: the real hub.
  const { page: real } = await open('?backend=cpu');
  assert.match(await demo(real, (el) => el.modelSourceFor('sam2.1-hiera-tiny').url), /^https:\/\/huggingface\.co\/facebook\/sam2\.1-hiera-tiny\/resolve\/main\/sam2\.1_hiera_tiny\.pt$/);
});

test('hub download: redirect and CORS, progress with and without Content-Length, SHA-256 checked, kept in the Cache API', { timeout: SLOW * 2 }, async () => {
  const { page, errors } = await openWithHub();
  const mb = (MODEL.length / 1048576).toFixed(1);
  await demo(page, (el) => { el.modelReady = false; });
  await page.locator('ruac-demo select[data-id=modelPick]').selectOption('test-ok');
  await page.waitForFunction(() => document.querySelector('ruac-demo').ready, null, { timeout: SLOW });
  assert.match(await shadowText(page, 'model'), /^ok\.safetensors \(RUAC micro/);
  let seen = await phases(page);
  assert.ok(seen.some((t) => t.startsWith('downloading: ') && t.endsWith(` / ${mb} MB`)), `progress: ${seen}`);
  assert.ok(seen.includes('checking the SHA-256…'), `the check is shown: ${seen}`);
  const okUrl = `${hubUrl}/test/micro/resolve/main/ok.safetensors`;
  assert.deepEqual([hits['/test/micro/resolve/main/ok.safetensors'], hits['/cdn/ok']], [1, 1], 'one redirect, one download');
  assert.ok(await inCache(page, okUrl), 'kept in the Cache API under its hub URL');
  await clickPixel(page, 100, 100);
  // Again, by the `model` attribute: from the cache, nothing downloaded.
  await demo(page, (el) => { el.modelReady = false; el.setAttribute('model', 'test-ok'); });
  await page.waitForFunction(() => document.querySelector('ruac-demo').ready, null, { timeout: SLOW });
  assert.match(await shadowText(page, 'model'), /from cache/);
  assert.equal(hits['/cdn/ok'], 1);
  // No Content-Length: the published size drives the progress bar.
  assert.equal(await tryLoad(page, 'test-chunked'), null);
  seen = await phases(page);
  assert.ok(seen.some((t) => t.startsWith('downloading: ') && t.endsWith(` / ${mb} MB`)), `progress without Content-Length: ${seen}`);
  assert.match(await shadowText(page, 'model'), /^chunked\.safetensors \(RUAC micro/);
  // Neither Content-Length nor a published size: the megabytes so far, no check.
  assert.equal(await tryLoad(page, 'test-plain'), null);
  seen = await phases(page);
  assert.ok(seen.some((t) => /^downloading: \d+\.\d MB$/.test(t)) && !seen.includes('checking the SHA-256…'), `progress without any size: ${seen}`);
  assert.match(await shadowText(page, 'model'), /^plain\.safetensors \(RUAC micro/);
  assert.deepEqual(unexpected(errors), []);
});

test('hub failures: a cut transfer, a wrong SHA-256 and missing CORS headers are explained, nothing is kept, the model stays', { timeout: SLOW * 2 }, async () => {
  const { page, errors } = await openWithHub();
  const cases = [
    ['cut', /Could not load the model: test-cut: the download from .*cut\.safetensors (was interrupted after .* of 2\.4 MB|ended after \d+ bytes, \d+ expected).*try again/],
    ['badhash', /Could not load the model: test-badhash: the file from .*badhash\.safetensors does not match its published SHA-256 \(expected 0{64}, got [0-9a-f]{64}\): a corrupted or altered download; it was not kept/],
    ['nocors', /Could not load the model: test-nocors: cannot download the model from .*nocors\.safetensors: .*no CORS headers/],
  ];
  for (const [variant, expected] of cases) {
    const text = await tryLoad(page, `test-${variant}`);
    console.log(`${variant}: ${text}`);
    assert.match(text, expected, variant);
    assert.equal(await shadowText(page, 'message'), text, `${variant}: the message shown is the one thrown`);
    assert.match(await shadowText(page, 'model'), /ruac-micro\.safetensors \(previous model kept\)/);
    assert.equal(await inCache(page, `${hubUrl}/test/micro/resolve/main/${variant}.safetensors`), false, `${variant}: not cached`);
  }
  await clickPixel(page, 100, 100); // the previous model still answers
  assert.deepEqual(unexpected(errors), []);
});

test('a model this device cannot hold is refused before anything downloads, and the page says why', { timeout: SLOW }, async () => {
  // A device that reports 512 MB (navigator.deviceMemory), and a preset past wasm's 4 GiB.
  const { page, errors } = await open(`?backend=cpu&hub=${encodeURIComponent(hubUrl)}`, {
    init: () => Object.defineProperty(Navigator.prototype, 'deviceMemory', { get: () => 0.5 }),
  });
  await page.evaluate(async () => {
    const { MODELS } = await import(new URL('web/element/models.js', location.href).href);
    MODELS['test-huge'] = { hub: { repo: 'test/micro', file: 'huge.safetensors' }, source: 'test', label: 'huge', size: 2e9 };
  });
  const before = JSON.stringify(hits);
  const tiny = await tryLoad(page, 'sam2.1-hiera-tiny'); // about 156 MB: about 0.5 GB in the page
  assert.equal(tiny, 'Could not load the model: sam2.1-hiera-tiny: this 0.2 GB model needs about 0.5 GB of memory in the page, and this device reports 0.5 GB in all; choose a smaller model');
  assert.equal(await shadowText(page, 'message'), tiny);
  const huge = await tryLoad(page, 'test-huge');
  assert.match(huge, /^Could not load the model: test-huge: this 2\.0 GB model needs about 7\.0 GB of memory in the page, more than a WebAssembly module can address \(4\.3 GB\); run it natively/);
  assert.equal(JSON.stringify(hits), before, 'nothing was requested from the hub');
  assert.match(await shadowText(page, 'model'), /ruac-micro\.safetensors \(previous model kept\)/);
  await clickPixel(page, 100, 100); // the model in use still answers
  assert.deepEqual(unexpected(errors), []);
});

test('every real preset loads by name through the hub imitation: its resolve URL, one redirect, kept in the Cache API', { timeout: SLOW * 2 }, async () => {
  const { page, errors } = await open(`?backend=cpu&hub=${encodeURIComponent(hubUrl)}`);
  // The release's published size and hash belong to the real file: the stand-in's instead.
  await page.evaluate(async (m) => {
    const { MODELS } = await import(new URL('web/element/models.js', location.href).href);
    Object.assign(MODELS['ruac-sam2.1-hiera-bplus'], m);
  }, { size: MODEL.length, sha256: SHA });
  const presets = [
    ['ruac-sam2.1-hiera-bplus', 'HongyouZhou/ruac-sam2.1-hiera-bplus', 'model.safetensors'],
    ['sam2.1-hiera-tiny', 'facebook/sam2.1-hiera-tiny', 'sam2.1_hiera_tiny.pt'],
    ['sam2.1-hiera-small', 'facebook/sam2.1-hiera-small', 'sam2.1_hiera_small.pt'],
    ['sam2.1-hiera-base-plus', 'facebook/sam2.1-hiera-base-plus', 'sam2.1_hiera_base_plus.pt'],
    ['sam2.1-hiera-large', 'facebook/sam2.1-hiera-large', 'sam2.1_hiera_large.pt'],
  ];
  for (const [name, repo, file] of presets) {
    const path = `/${repo}/resolve/main/${file}`;
    const before = hits[path] || 0;
    assert.equal(await tryLoad(page, name), null, `${name} loads`);
    assert.equal(hits[path], before + 1, `${name}: one request to ${path}`);
    assert.ok((await shadowText(page, 'model')).startsWith(`${file} (RUAC micro`), `${name}: ${await shadowText(page, 'model')}`);
    assert.equal(await inCache(page, `${hubUrl}${path}`), true, `${name}: kept in the Cache API`);
    // Asked again, it comes from the cache: no new request.
    assert.equal(await tryLoad(page, name), null);
    assert.equal(hits[path], before + 1, `${name}: the second load is served by the cache`);
  }
  await clickPixel(page, 100, 100);
  assert.deepEqual(unexpected(errors), []);
});
