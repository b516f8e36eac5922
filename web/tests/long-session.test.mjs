// The page under a long session (issue 16, item 5), in headless Chromium on the CPU fallback
// with the micro model: 200 clicks and 20 image swaps, 20 embed/remove cycles of
// <ruac-demo>, 50 malformed files, and a worker that dies mid-request. Memory is read over
// CDP after forced garbage collections (the page's JS heap and its ArrayBuffers) and from the
// worker (its wasm memory); workers are counted as CDP targets. docs/RELIABILITY.md has the
// numbers. `make test-browser` runs it after browser.test.mjs.
//
//   node --test web/tests/long-session.test.mjs
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  REFERENCE, FIXTURES, CASE, TOL_CPU, SLOW, MICRO, env, launch, shutdown,
  open, demo, shadowText, openImage, clickPixel, waitForResult, result, compareWithNative,
} from './harness.mjs';
import { malformedImages, malformedWeights } from './malformed.mjs';

/** Growth allowed over a long session, after garbage collection: the page's JS heap plus its
 * ArrayBuffers (measured: see docs/RELIABILITY.md), and the worker's wasm memory. */
const HEAP_BOUND = 2 * 1048576;
const WASM_BOUND = 1048576;
/** Growth allowed for 20 elements embedded and removed (each holds about 1 MB while alive). */
const EMBED_HEAP_BOUND = 1048576;

before(() => launch([REFERENCE]));
after(shutdown);
// A failed test leaves no page (and no worker) to the next one.
afterEach(async () => { for (const p of env.context.pages()) if (p.url().startsWith(env.baseUrl)) await p.close(); });

const MB = (b) => `${(b / 1048576).toFixed(2)} MB`;

/** Runs in the page before its scripts: counts the workers made and terminated and records
 * their error events (whoever handles them). */
function instrumentWorkers() {
  const log = { created: 0, terminated: 0, errors: [] };
  window.__workers = log;
  const Base = window.Worker;
  window.Worker = class extends Base {
    constructor(...args) {
      super(...args);
      log.created++;
      this.addEventListener('error', (e) => log.errors.push(e.message || 'error event'));
      this.addEventListener('messageerror', () => log.errors.push('messageerror'));
    }
    terminate() { log.terminated++; return super.terminate(); }
  };
}
const workerLog = (page) => page.evaluate(() => window.__workers);

/** The page's JS heap and ArrayBuffer stores after three forced collections, in bytes. */
async function pageHeap(cdp) {
  for (let i = 0; i < 3; i++) await cdp.send('HeapProfiler.collectGarbage');
  const h = await cdp.send('Runtime.getHeapUsage');
  return { heap: h.usedSize, buffers: h.backingStorageSize, total: h.usedSize + h.backingStorageSize };
}

/** The page's workers running web/worker.js (playwright tracks them through CDP's auto-attach;
 * a worker leaves the list when its target is destroyed). */
const workers = (page) => page.workers().filter((w) => w.url().endsWith('/web/worker.js'));

/** Waits (10 s at most) for `n` workers, none of them `old`; returns how many there are. */
async function waitForWorkers(page, n, old = null) {
  const until = Date.now() + 10_000;
  const ok = () => workers(page).length === n && !workers(page).includes(old);
  while (!ok() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  return workers(page).length;
}

/** The event types of the listeners on `expression` (window, document). */
async function listeners(cdp, expression) {
  const { result: obj } = await cdp.send('Runtime.evaluate', { expression });
  const { listeners: l } = await cdp.send('DOMDebugger.getEventListeners', { objectId: obj.objectId });
  await cdp.send('Runtime.releaseObject', { objectId: obj.objectId });
  return l.map((x) => x.type).sort();
}

/** Live <ruac-demo> instances (connected or not) in the page's heap. */
async function liveDemos(cdp) {
  const { result: proto } = await cdp.send('Runtime.evaluate', { expression: "customElements.get('ruac-demo').prototype" });
  const { objects } = await cdp.send('Runtime.queryObjects', { prototypeObjectId: proto.objectId });
  const { result: n } = await cdp.send('Runtime.callFunctionOn', { objectId: objects.objectId, functionDeclaration: 'function () { return this.length; }', returnByValue: true });
  await cdp.send('Runtime.releaseObject', { objectId: objects.objectId });
  await cdp.send('Runtime.releaseObject', { objectId: proto.objectId });
  return n.value;
}

/** Waits for the message line to be visible and to match `re`. */
const waitForMessage = (page, re) => page.waitForFunction(([src, flags]) => {
  const m = document.querySelector('ruac-demo').shadowRoot.querySelector('[data-id=message]');
  return !m.hidden && new RegExp(src, flags).test(m.textContent);
}, [re.source, re.flags], { timeout: SLOW });

const wasmBytes = async (page) => (await demo(page, (el) => el.workerMemory())).wasmBytes;

/** Mask logits, uncertainty and IoU equal to the last bit. */
function sameResult(a, b, label) {
  assert.deepEqual([a.k, a.width, a.height], [b.k, b.width, b.height], `${label}: shape`);
  assert.deepEqual(a.masks, b.masks, `${label}: mask logits`);
  assert.deepEqual(a.uncertainty, b.uncertainty, `${label}: uncertainty`);
  assert.deepEqual(a.iou, b.iou, `${label}: IoU`);
}

const CAT = path.join(FIXTURES, CASE.image);
const [REF_X, REF_Y] = CASE.points[0].map(Math.floor);

/** The reference image and click, from scratch: the native numbers. */
async function referenceClick(page) {
  await openImage(page, CAT);
  await clickPixel(page, REF_X, REF_Y);
  return result(page);
}

/** Drops a file on the stage, as the browser hands a dragged file to the page. */
const dropFile = (page, name, buffer) => demo(page, (el, [b64, n]) => {
  const dt = new DataTransfer();
  dt.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], n));
  el.shadowRoot.querySelector('[data-id=stage]').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
}, [buffer.toString('base64'), name]);

/** Opens an image the way a visitor would: the file chooser, a gallery button or a drop. */
async function swapImage(page, how, what) {
  await demo(page, (el) => { el.encoded = false; });
  if (how === 'file') await page.locator('ruac-demo input[data-id=file]').setInputFiles(what);
  if (how === 'gallery') await page.locator(`ruac-demo button[data-sample="${what}"]`).click();
  if (how === 'drop') await dropFile(page, path.basename(what), fs.readFileSync(what));
  await page.waitForFunction(() => document.querySelector('ruac-demo').encoded, null, { timeout: SLOW });
}

test('200 clicks and 20 image swaps: the JS heap and the wasm memory do not grow, the reference click is unchanged', { timeout: SLOW * 3 }, async () => {
  // Started empty (no sample photo), so the warm-up below is the worker's whole history: with
  // the sample encoded first the allocator reached its high-water mark only in the session
  // (measured once: 14.31 -> 16.06 MB, then flat from 200 to 600 clicks), not in the warm-up.
  const { page, errors } = await open('?backend=cpu&sample=none', { workers: true, init: instrumentWorkers });
  const cdp = await env.context.newCDPSession(page);
  const swaps = [
    ['file', CAT], ['gallery', 'coffee.jpg'], ['file', path.join(FIXTURES, 'chelsea-300.png')],
    ['drop', CAT], ['gallery', 'astronaut.jpg'],
  ];
  // 20 swaps, 10 clicks each (every third a negative one), at seeded positions: the session.
  let seed = 12345, clicks = 0;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
  const round = async (swapCount) => {
    for (let s = 0; s < swapCount; s++) {
      const [how, what] = swaps[s % swaps.length];
      await swapImage(page, how, what);
      const [w, h] = await demo(page, (el) => [el.current.width, el.current.height]);
      for (let c = 0; c < 10; c++) {
        await clickPixel(page, Math.floor(rand() * w), Math.floor(rand() * h), c % 3 === 2 ? { button: 'right' } : {});
        clicks++;
      }
      assert.equal((await demo(page, (el) => el.points)).length, 10, `swap ${s}: the clicks of this image only`);
    }
  };
  // Warm-up: one round of the session's own pattern (every image, ten clicks each), so that
  // the allocator has met every size the session asks for. Its high-water mark depends on the
  // order of allocations, not only on the largest image: with a shorter warm-up it was reached
  // inside the session once, then stayed flat for hundreds of clicks (a plateau, not a leak).
  // A leak still shows: it grows with every one of the 200 measured clicks.
  await round(swaps.length);
  clicks = 0;
  const r0 = await referenceClick(page);
  compareWithNative(r0, TOL_CPU, 'before the session');
  const before = { ...(await pageHeap(cdp)), wasm: await wasmBytes(page) };
  const windowBefore = await listeners(cdp, 'window');

  const t0 = Date.now();
  await round(20);
  const seconds = (Date.now() - t0) / 1000;

  const r1 = await referenceClick(page);
  sameResult(r1, r0, 'the reference click after 200 clicks');
  const afterM = { ...(await pageHeap(cdp)), wasm: await wasmBytes(page) };
  console.log(`${clicks} clicks, 20 swaps in ${seconds.toFixed(1)} s; JS heap ${MB(before.heap)} -> ${MB(afterM.heap)}, ` +
    `ArrayBuffers ${MB(before.buffers)} -> ${MB(afterM.buffers)}, wasm memory ${MB(before.wasm)} -> ${MB(afterM.wasm)}`);
  assert.equal(clicks, 200);
  assert.ok(afterM.total - before.total <= HEAP_BOUND, `JS heap + ArrayBuffers grew by ${MB(afterM.total - before.total)} > ${MB(HEAP_BOUND)}`);
  assert.ok(afterM.wasm - before.wasm <= WASM_BOUND, `wasm memory grew by ${MB(afterM.wasm - before.wasm)} > ${MB(WASM_BOUND)}`);
  assert.deepEqual(await listeners(cdp, 'window'), windowBefore, 'no listener added to the window');
  assert.equal(workers(page).length, 1, 'one worker');
  const log = await workerLog(page);
  assert.deepEqual([log.created, log.terminated, log.errors], [1, 0, []]);
  assert.deepEqual(errors, []);
  await page.close();
});

test('20 embed/remove cycles of <ruac-demo>: no worker, listener, element or memory left behind', { timeout: SLOW * 3 }, async () => {
  // index.html's own element loads first; it is removed like the others.
  const { page, errors } = await open('?backend=cpu', { workers: true, init: instrumentWorkers });
  const cdp = await env.context.newCDPSession(page);
  const cat = fs.readFileSync(CAT).toString('base64');
  /** Embeds an element, lets it load the model, encode an image and answer a click, removes it. */
  const cycle = async () => {
    await page.evaluate(async ([model, b64, [x, y]]) => {
      const el = document.createElement('ruac-demo');
      el.setAttribute('model', model);
      el.setAttribute('backend', 'cpu');
      document.body.append(el);
      const until = (f) => new Promise((resolve, reject) => {
        const t0 = performance.now();
        const poll = () => (f() ? resolve() : performance.now() - t0 > 60_000 ? reject(new Error('timed out')) : setTimeout(poll, 10));
        poll();
      });
      await until(() => el.modelReady);
      await el.openBlob(new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))]), 'cat.png');
      el.points = [[x + 0.5, y + 0.5, 1]];
      el.promptsChanged();
      await until(() => el.result);
      el.remove();
    }, [MICRO, cat, [REF_X, REF_Y]]);
    return waitForWorkers(page, 0);
  };
  await page.evaluate(() => document.querySelector('ruac-demo').remove());
  assert.equal(await waitForWorkers(page, 0), 0, 'the page\'s element: worker terminated on removal');
  await cycle(); // warm-up: the module's code and the page's caches
  const before = await pageHeap(cdp);
  const windowBefore = await listeners(cdp, 'window');
  const documentBefore = await listeners(cdp, 'document');
  for (let i = 0; i < 20; i++) assert.equal(await cycle(), 0, `cycle ${i}: no worker left`);
  const afterM = await pageHeap(cdp);
  const alive = await liveDemos(cdp);
  const log = await workerLog(page);
  console.log(`20 embed/remove cycles: JS heap ${MB(before.heap)} -> ${MB(afterM.heap)}, ArrayBuffers ${MB(before.buffers)} -> ${MB(afterM.buffers)}; ` +
    `workers made ${log.created}, terminated ${log.terminated}; live elements ${alive}`);
  // Chromium keeps the last removed host of a shadow root holding a <select> alive until the
  // next one is made (a plain custom element with only a <select> does the same): one, never more.
  assert.ok(alive <= 1, `${alive} removed elements still alive (all but Chromium's last one should be collected)`);
  assert.deepEqual([log.created, log.terminated, log.errors], [22, 22, []], 'every worker terminated');
  assert.deepEqual(await listeners(cdp, 'window'), windowBefore, 'the window\'s listeners are the ones before');
  assert.deepEqual(await listeners(cdp, 'document'), documentBefore, 'the document\'s listeners are the ones before');
  assert.ok(afterM.total - before.total <= EMBED_HEAP_BOUND, `JS heap + ArrayBuffers grew by ${MB(afterM.total - before.total)} > ${MB(EMBED_HEAP_BOUND)}`);
  assert.deepEqual(errors, []);
  await page.close();
});

test('50 malformed files through the file choosers and the drop zone: a message for each, then the same mask as before', { timeout: SLOW * 3 }, async () => {
  const { page, errors } = await open('?backend=cpu', { workers: true, init: instrumentWorkers });
  const cdp = await env.context.newCDPSession(page);
  const r0 = await referenceClick(page);
  await demo(page, (el) => { window.__restarts = 0; el.addEventListener('ruac-worker-restart', () => window.__restarts++); });
  const files = [...malformedImages(), ...malformedWeights()];
  assert.equal(files.length, 50);
  let dropped = 0;
  for (const [i, f] of files.entries()) {
    await demo(page, (el) => el.clearMessage());
    if (f.kind === 'image' && i % 2) {
      // Half of the images are dropped on the stage, as a visitor drags a file there.
      await dropFile(page, f.name, f.buffer);
      dropped++;
    } else {
      const input = f.kind === 'image' ? 'file' : 'modelFile';
      await page.locator(`ruac-demo input[data-id=${input}]`).setInputFiles({ name: f.name, mimeType: 'application/octet-stream', buffer: f.buffer });
    }
    await page.waitForFunction((n) => {
      const m = document.querySelector('ruac-demo').shadowRoot.querySelector('[data-id=message]');
      return !m.hidden && m.textContent.includes(n);
    }, f.name, { timeout: SLOW });
    const shown = await page.locator('ruac-demo [data-id=message]');
    assert.match(await shown.innerText(), f.expect, f.name);
    assert.equal(await shown.getAttribute('class'), 'message error', `${f.name}: shown as an error`);
    assert.ok(await shown.isVisible(), `${f.name}: visible`);
  }
  assert.equal(dropped, 12);
  // The page kept its image and its model, and answers exactly as before.
  assert.match(await shadowText(page, 'model'), /ruac-micro\.safetensors \(previous model kept\)/);
  assert.deepEqual(await demo(page, (el) => [el.current.width, el.current.height, el.modelReady]), [64, 43, true]);
  await demo(page, (el) => el.clear());
  await clickPixel(page, REF_X, REF_Y);
  sameResult(await result(page), r0, 'the reference click after 50 malformed files');
  // Nothing refused was kept in the Cache API (the picker lists what is there).
  const cached = await page.evaluate(async () => (await (await caches.open('ruac-models-v1')).keys()).map((r) => r.url));
  assert.deepEqual(cached.filter((u) => files.some((f) => u.endsWith(encodeURIComponent(f.name)))), []);
  assert.equal(await page.evaluate(() => window.__restarts), 0, 'no file crashed the worker');
  assert.equal(workers(page).length, 1);
  assert.deepEqual((await workerLog(page)).errors, []);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a worker that dies mid-request is replaced: the request fails with a message, then is answered with the same mask', { timeout: SLOW * 3 }, async () => {
  const { page, errors } = await open('?backend=cpu', { workers: true, init: instrumentWorkers });
  const cdp = await env.context.newCDPSession(page);
  await demo(page, (el) => {
    window.__shown = [];
    el.addEventListener('ruac-error', (e) => window.__shown.push(e.detail));
  });
  const shownErrors = () => page.evaluate(() => window.__shown.splice(0));
  // The model from disk: a restarted worker must read it again from its File.
  await demo(page, (el) => { el.modelReady = false; });
  await page.locator('ruac-demo input[data-id=modelFile]').setInputFiles({ name: 'from-disk.safetensors', mimeType: 'application/octet-stream', buffer: fs.readFileSync(MICRO) });
  await page.waitForFunction(() => document.querySelector('ruac-demo').modelReady, null, { timeout: SLOW });
  const r0 = await referenceClick(page);
  compareWithNative(r0, TOL_CPU, 'before the crashes');
  await clickPixel(page, 10, 30, { button: 'right' });
  const twoPoints = await result(page);
  const undo = async () => {
    await demo(page, (el) => { el.result = null; el.undo(); });
    await waitForResult(page);
  };
  await undo();
  const size = await demo(page, (el) => [el.current.width, el.current.height]);
  const bb = await page.locator('ruac-demo canvas[data-id=image]').boundingBox();
  // The same negative click as `twoPoints`'s second point.
  const negativeClick = () => page.mouse.click(bb.x + (10.5 * bb.width) / size[0], bb.y + (30.5 * bb.height) / size[1], { button: 'right' });

  /** Arms a crash (`how`), makes the request `act` sends, and checks that the request failed
   * with `failure` shown, and that a new worker holds the model. */
  const crash = async (how, act, reason, failure, dead) => {
    const [old] = workers(page);
    await demo(page, (el, h) => el.simulateWorkerCrash(h), how);
    await demo(page, (el) => { el.result = null; el.clearMessage(); });
    await act();
    await waitForMessage(page, /restarted/);
    assert.equal(await shadowText(page, 'message'), `The model worker stopped (${reason}) and was restarted; the model and the image were loaded again.`);
    assert.deepEqual(await shownErrors(), [`${failure}: the model worker stopped (${reason})`], 'the pending request failed with a message');
    assert.equal(await waitForWorkers(page, 1, old), 1, 'one worker');
    assert.notEqual(workers(page)[0], old, 'a new worker');
    assert.equal((await workerLog(page)).terminated, dead, 'the dead worker was terminated');
    assert.match(await shadowText(page, 'model'), /^from-disk\.safetensors \(RUAC micro/);
  };

  // 1. An uncaught error in the worker during a click's predict: no answer, an error event.
  await crash('throw', negativeClick, 'an uncaught error in the worker: Uncaught Error: simulated worker crash during predict', 'Prediction failed', 1);
  await waitForResult(page);
  sameResult(await result(page), twoPoints, 'the click, answered by the new worker');

  // 2. A wasm trap (what a Rust panic gives) during a click's predict: the answer is fatal.
  await undo();
  await crash('trap', negativeClick, 'unreachable executed (simulated Rust panic)', 'Prediction failed', 2);
  await waitForResult(page);
  sameResult(await result(page), twoPoints, 'the click after a trap');

  // 3. A crash while a new image is encoded: the new worker encodes it; a click then answers.
  await crash('throw', () => page.locator('ruac-demo input[data-id=file]').setInputFiles(CAT), 'an uncaught error in the worker: Uncaught Error: simulated worker crash during setImage', 'Could not encode the image', 3);
  await page.waitForFunction(() => document.querySelector('ruac-demo').encoded, null, { timeout: SLOW });
  await clickPixel(page, REF_X, REF_Y);
  sameResult(await result(page), r0, 'the reference click after three crashes');

  // 4. A fourth death within a minute: no restart loop; the page says what to do.
  await demo(page, (el) => el.simulateWorkerCrash('trap'));
  await negativeClick();
  await waitForMessage(page, /not restarted/);
  const reason = 'unreachable executed (simulated Rust panic)';
  assert.deepEqual(await shownErrors(), [`Prediction failed: the model worker stopped (${reason})`,
    `The model worker stopped again (${reason}), 4 times within a minute; it is not restarted. Reload the page.`]);
  assert.equal(await waitForWorkers(page, 0), 0);
  const log = await workerLog(page);
  assert.deepEqual([log.created, log.terminated], [4, 4]);
  assert.deepEqual(log.errors, ['Uncaught Error: simulated worker crash during predict', 'Uncaught Error: simulated worker crash during setImage'], 'the error events were the simulated ones');
  assert.deepEqual(errors, []);
  await page.close();
});
