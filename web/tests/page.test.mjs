// The page as a SAM user meets it (issue 13, items 4 and 5): it opens ready on a sample
// photo, the mask toggle and the keyboard shortcuts, the point shapes and the controls'
// labels, and <ruac-demo> as a custom element (observed attributes, defined twice, its
// public API, bubbling events). Headless Chromium like browser.test.mjs; `make
// test-browser` runs it.
//
//   node --test web/tests/page.test.mjs
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  REFERENCE, ARTIFACTS, SLOW, env, launch, shutdown, open, demo, shadowText, clickPixel, result,
} from './harness.mjs';

before(() => launch([REFERENCE]));
after(shutdown);
afterEach(async () => { for (const p of env.context.pages()) if (p.url().startsWith(env.baseUrl)) await p.close(); });

/** Runs in the page before its scripts: records the element's events as the document sees
 * them (they bubble out of the element and out of any shadow root it sits in). */
function recordEvents() {
  window.__events = [];
  for (const type of ['ruac-model', 'ruac-encoded', 'ruac-ready', 'ruac-result', 'ruac-error']) {
    document.addEventListener(type, (e) => window.__events.push({ type, target: e.target.localName, detail: type === 'ruac-result' ? { k: e.detail.k } : e.detail }));
  }
}
const events = (page, type) => page.evaluate((t) => window.__events.filter((e) => e.type === t), type);

const waitReady = (page) => page.waitForFunction(() => document.querySelector('ruac-demo').shadowRoot.querySelector('[data-id=state]').textContent === 'ready', null, { timeout: SLOW });

/** Non-blank: the image canvas has pixels of more than one colour. */
const canvasColours = (page) => demo(page, (el) => {
  const c = el.shadowRoot.querySelector('canvas[data-id=image]');
  if (!c.width) return 0;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const seen = new Set();
  for (let i = 0; i < d.length && seen.size < 100; i += 4 * 97) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
  return seen.size;
});

test('the page opens ready: a sample photo encoded with the default model, a hint, then a click gives a mask', { timeout: SLOW * 3 }, async () => {
  const { page, errors } = await open('?backend=cpu', { model: null, init: recordEvents });
  await waitReady(page);
  // Nothing was chosen: the default model and the gallery's first photo.
  assert.match(await shadowText(page, 'model'), /ruac-photo\.safetensors/);
  assert.deepEqual(await demo(page, (el) => [el.ready, el.encoded, el.points.length, el.box, el.current.width, el.current.height]), [true, true, 0, null, 384, 255]);
  assert.ok(await canvasColours(page) > 20, 'the photo is drawn');
  assert.equal(await shadowText(page, 'help'), 'Click the object, or drag a box; Shift-click (or right-click) for a negative point.');
  assert.match(await shadowText(page, 'keys'), /Z.*undo.*Esc.*clear.*M.*next candidate mask.*H.*heat map/s);
  const ready = await events(page, 'ruac-ready');
  assert.equal(ready.length, 1);
  assert.deepEqual([ready[0].target, ready[0].detail.width, ready[0].detail.height], ['ruac-demo', 384, 255]);
  // The cat's head (gallery/chelsea.jpg).
  await clickPixel(page, 180, 100);
  const r = await result(page);
  assert.equal(r.k, 3);
  const n = r.width * r.height;
  const inside = r.masks.slice(r.best * n, (r.best + 1) * n).filter((v) => v > 0).length;
  assert.ok(inside > 0.01 * n && inside < 0.9 * n, `a mask of the object (${inside} of ${n} pixels)`);
  await page.screenshot({ path: path.join(ARTIFACTS, 'opens-ready.png'), fullPage: true });
  assert.deepEqual(errors, []);
});

test('a shift-click is a negative point; the points differ in shape; the single/multi-mask toggle', { timeout: SLOW * 3 }, async () => {
  const { page, errors } = await open('?backend=cpu');
  await waitReady(page);
  await clickPixel(page, 200, 120);
  await page.keyboard.down('Shift');
  await clickPixel(page, 60, 60);
  await page.keyboard.up('Shift');
  assert.deepEqual(await demo(page, (el) => el.points), [[200.5, 120.5, 1], [60.5, 60.5, 0]]);
  const shapes = await demo(page, (el) => [...el.shadowRoot.querySelectorAll('svg[data-id=prompts] .pt')].map((g) => [g.dataset.label, g.localName, g.querySelectorAll('path').length, g.getAttribute('fill')]));
  assert.deepEqual(shapes, [['1', 'circle', 0, '#2ecc40'], ['0', 'g', 1, 'none']], 'a filled disc and a ring with a cross');
  assert.equal((await result(page)).k, 3);
  const toggle = page.locator('ruac-demo select[data-id=multimask]');
  await demo(page, (el) => { el.result = null; });
  await toggle.selectOption('single');
  await page.waitForFunction(() => document.querySelector('ruac-demo').result, null, { timeout: SLOW });
  assert.equal((await result(page)).k, 1, 'single-mask: one candidate');
  assert.equal((await page.locator('ruac-demo .cand').allInnerTexts()).length, 1);
  await demo(page, (el) => { el.result = null; });
  await toggle.selectOption('multi');
  await page.waitForFunction(() => document.querySelector('ruac-demo').result, null, { timeout: SLOW });
  assert.equal((await result(page)).k, 3, 'multi-mask: three candidates');
  assert.deepEqual(errors, []);
});

test('keyboard: M cycles the candidates, H the heat map, Z undoes, Esc clears; every control has a label', { timeout: SLOW * 3 }, async () => {
  const { page, errors } = await open('?backend=cpu');
  await waitReady(page);
  await clickPixel(page, 200, 120); // also focuses the image
  await clickPixel(page, 60, 60, { button: 'right' });
  const best = await demo(page, (el) => el.result.best);
  assert.equal(await demo(page, (el) => el.selected), best);
  await page.keyboard.press('m');
  assert.equal(await demo(page, (el) => el.selected), (best + 1) % 3);
  assert.match(await page.locator('ruac-demo .cand.chosen').innerText(), new RegExp(`mask ${(best + 1) % 3 + 1}`));
  await page.keyboard.press('m');
  await page.keyboard.press('m');
  assert.equal(await demo(page, (el) => el.selected), best, 'three presses: back to the first');
  const heatOn = () => page.locator('ruac-demo input[data-id=showHeat]').isChecked();
  assert.equal(await heatOn(), true);
  await page.keyboard.press('h');
  assert.equal(await heatOn(), false);
  await page.keyboard.press('h');
  assert.equal(await heatOn(), true);
  await demo(page, (el) => { el.result = null; });
  await page.keyboard.press('z');
  await page.waitForFunction(() => document.querySelector('ruac-demo').result, null, { timeout: SLOW });
  assert.deepEqual(await demo(page, (el) => el.points), [[200.5, 120.5, 1]], 'Z: the last point undone');
  await page.keyboard.press('Escape');
  assert.deepEqual(await demo(page, (el) => [el.points, el.result]), [[], null], 'Esc: cleared');
  await page.keyboard.press('Control+z');
  await page.waitForFunction(() => document.querySelector('ruac-demo').result, null, { timeout: SLOW });
  assert.deepEqual(await demo(page, (el) => el.points), [[200.5, 120.5, 1]], 'Ctrl+Z: the clear undone');
  // Typing in the URL field is typing, not shortcuts.
  await page.locator('ruac-demo select[data-id=modelPick]').selectOption('url');
  await page.locator('ruac-demo input[data-id=url]').fill('');
  await page.locator('ruac-demo input[data-id=url]').press('z');
  assert.equal((await demo(page, (el) => el.points)).length, 1);
  // Every control has an accessible name: its aria-label, its <label>, its text or its image's alt.
  const unnamed = await demo(page, (el) => [...el.shadowRoot.querySelectorAll('button, input, select')]
    .filter((c) => !(c.getAttribute('aria-label') || c.closest('label')?.textContent.trim() || c.textContent.trim() || c.querySelector('img')?.alt))
    .map((c) => c.outerHTML.slice(0, 80)));
  assert.deepEqual(unnamed, []);
  assert.deepEqual(errors, []);
});

test('custom element: model and backend are observed, defining it twice is harmless, events bubble to the document', { timeout: SLOW * 3 }, async () => {
  const { page, errors } = await open('', { init: recordEvents });
  await waitReady(page);
  assert.match(await shadowText(page, 'model'), /ruac-micro\.safetensors/);
  // A changed `model` attribute (a name) loads that model and encodes the image again.
  await demo(page, (el) => { el.modelReady = false; el.setAttribute('model', 'default'); });
  await waitReady(page);
  assert.match(await shadowText(page, 'model'), /ruac-photo\.safetensors/);
  assert.match((await events(page, 'ruac-model')).at(-1).detail.info.name, /ruac-photo/);
  // A changed `backend` attribute loads the model again on that backend.
  for (const [backend, shown] of [['webgpu', /WebGPU/], ['cpu', /CPU/]]) {
    await demo(page, (el, b) => { el.modelReady = false; el.setAttribute('backend', b); }, backend);
    await waitReady(page);
    assert.match(await shadowText(page, 'backend'), shown);
    assert.match(await shadowText(page, 'model'), /ruac-photo\.safetensors/);
  }
  await clickPixel(page, 180, 100);
  const res = await events(page, 'ruac-result');
  assert.deepEqual([res.at(-1).target, res.at(-1).detail.k], ['ruac-demo', 3]);
  // The module a second time (another URL: another module instance): no error, the first
  // definition stays and the element still answers.
  const twice = await page.evaluate(async () => {
    const first = customElements.get('ruac-demo');
    const mod = await import(new URL('web/ruac-demo.js?twice', location.href).href);
    return { same: customElements.get('ruac-demo') === first, other: mod.RuacDemo !== first, isFirst: document.querySelector('ruac-demo') instanceof first };
  });
  assert.deepEqual(twice, { same: true, other: true, isFirst: true });
  await clickPixel(page, 100, 200);
  // An element inside another element's shadow root: its events still reach the document.
  const composed = await page.evaluate(async () => {
    const host = document.createElement('div');
    document.body.append(host);
    const inner = document.createElement('ruac-demo');
    inner.setAttribute('model', 'micro');
    inner.setAttribute('sample', 'none');
    inner.setAttribute('backend', 'cpu');
    const seen = new Promise((resolve) => document.addEventListener('ruac-model', (e) => resolve(e.target === host), { once: true }));
    host.attachShadow({ mode: 'open' }).append(inner);
    const ok = await seen;
    const state = inner.shadowRoot.querySelector('[data-id=state]').textContent;
    host.remove();
    return { ok, state };
  });
  assert.deepEqual(composed, { ok: true, state: 'ready: open an image' }, 'retargeted to the shadow host; sample="none" starts empty');
  assert.deepEqual(errors, []);
});

test('public API: loadModel, setImage and predict resolve to what they did and reject with the message shown', { timeout: SLOW * 3 }, async () => {
  const { page, errors } = await open('?backend=cpu');
  await waitReady(page);
  const out = await page.evaluate(async () => {
    const el = document.querySelector('ruac-demo');
    const fails = async (p) => { try { await p; return null; } catch (e) { return `${e.name}: ${e.message}`; } };
    const model = await el.loadModel('micro');
    const image = await el.setImage('web/gallery/coffee.jpg');
    const r = await el.predict({ points: [[190, 130, 1], [20, 20, 0]] });
    const same = r === el.result;
    const boxed = await el.predict({ box: [100, 50, 300, 220] });
    const points = el.points.length === 0 && el.box.length === 4;
    const bitmap = await el.setImage(await createImageBitmap(new ImageData(new Uint8ClampedArray(32 * 24 * 4).fill(200), 32, 24)));
    const fromBitmap = await el.predict({ points: [[16, 12]] });
    return {
      model: model.info.name, image, k: r.k, same, points, boxed: boxed.k,
      bitmap, fromBitmap: [fromBitmap.width, fromBitmap.height],
      badPrompt: await fails(el.predict({ points: [1, 2, 3] })),
      badImage: await fails(el.setImage('web/gallery/missing.jpg')),
      notAnImage: await fails(el.setImage(new Blob(['hello']))),
      badModel: await fails(el.loadModel('web/models/missing.safetensors')),
      stillThere: [el.modelReady, el.current.width, el.modelInfo.name],
    };
  });
  assert.equal(out.model, 'ruac-micro.safetensors');
  assert.deepEqual(out.image, { width: 384, height: 256 });
  assert.deepEqual([out.k, out.same, out.points, out.boxed], [3, true, true, 3]);
  assert.deepEqual([out.bitmap, out.fromBitmap], [{ width: 32, height: 24 }, [32, 24]]);
  assert.match(out.badPrompt, /^TypeError: predict\(\{points/);
  assert.match(out.badImage, /Could not load the image missing\.jpg: HTTP 404/);
  assert.match(out.notAnImage, /is not an image the browser can decode/);
  assert.match(out.badModel, /Could not load the model: .*missing\.safetensors.*HTTP 404/);
  assert.deepEqual(out.stillThere, [true, 32, 'ruac-micro.safetensors']);
  // The 404s the browser logs are the two refused URLs.
  assert.deepEqual(errors.filter((e) => !/Failed to load resource: .* 404/.test(e)), []);
});
