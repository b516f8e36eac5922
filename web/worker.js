// The model runs here, off the page's main thread, so the page stays responsive while the
// CPU backend encodes. Messages: {id, op, ...args} in; {id, ok, result | error, fatal} out,
// plus {op: 'progress', id, loaded, total, phase} while a model downloads. `fatal`: the wasm
// instance trapped (a Rust panic aborts) and this worker cannot serve again; the page
// (web/element/worker-client.js) replaces it.
import init, { Session, maskPng, uncertaintyPng, cocoRle, infernoLut, multimaskFor } from '../pkg/ruac_web.js';

const CACHE = 'ruac-models-v1';
let ready = null;
let session = null;
/** 'sam2' or 'sam1' (ModelInfo.family) of the loaded model. */
let family = 'sam2';

function post(msg, transfer = []) {
  self.postMessage(msg, transfer);
}

const MB = (b) => `${(b / 1048576).toFixed(1)} MB`;

/** Reads a Response body with progress reports. `size`: the bytes expected where known (a
 * hub preset's published size), for the progress bar when the server sends no length and to
 * tell a cut transfer from a complete one. */
async function readWithProgress(id, response, label, url, size = 0) {
  const length = Number(response.headers.get('content-length')) || 0;
  const total = length || size;
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  for (;;) {
    let step;
    try {
      step = await reader.read();
    } catch (e) {
      throw new Error(`the download from ${url} was interrupted after ${MB(loaded)}${total ? ` of ${MB(total)}` : ''} (${message(e)}); nothing was kept, try again`);
    }
    if (step.done) break;
    chunks.push(step.value);
    loaded += step.value.length;
    post({ op: 'progress', id, loaded, total, phase: label });
  }
  const expected = length || size;
  if (expected && loaded !== expected) {
    throw new Error(`the download from ${url} ended after ${loaded} bytes, ${expected} expected (an interrupted transfer); nothing was kept, try again`);
  }
  let out;
  try {
    out = new Uint8Array(loaded);
  } catch (e) {
    throw new Error(`not enough memory in this tab to hold the ${MB(loaded)} model (${message(e)}); close other tabs or choose a smaller model`);
  }
  let off = 0;
  for (const c of chunks) { out.set(c, off); off += c.length; }
  return out;
}

/** Lower-case hex SHA-256 (SubtleCrypto: a secure context, as WebGPU needs too). */
async function sha256Hex(bytes) {
  if (!self.crypto?.subtle) throw new Error('this page is not a secure context (https or localhost), so the SHA-256 check cannot run');
  const d = new Uint8Array(await self.crypto.subtle.digest('SHA-256', bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

async function openCache() {
  try { return self.caches ? await self.caches.open(CACHE) : null; } catch { return null; }
}

/**
 * Model bytes from a URL. `cacheFirst`: a model picked by URL is kept in the Cache API and
 * read from there next time; the embedded default is fetched fresh (so a replaced file is
 * seen) and the cached copy serves only when the network fails (offline).
 */
async function fetchModel(id, url, cacheFirst, { size = 0, sha256 = null } = {}) {
  const cache = await openCache();
  if (cache && cacheFirst) {
    const hit = await cache.match(url);
    if (hit) return { bytes: await readWithProgress(id, hit, 'from cache', url), cached: true };
  }
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    const hit = cache && await cache.match(url);
    if (hit) return { bytes: await readWithProgress(id, hit, 'from cache (offline)', url), cached: true };
    throw new Error(`cannot download the model from ${url}: ${e.message} (offline, or the server does not let this page read the file: no CORS headers)`);
  }
  if (!response.ok) throw new Error(`cannot download the model from ${url}: HTTP ${response.status} ${response.statusText}`);
  const bytes = await readWithProgress(id, response, 'downloading', url, size);
  if (sha256) {
    post({ op: 'progress', id, loaded: 0, total: 0, phase: 'checking the SHA-256' });
    const got = await sha256Hex(bytes);
    if (got !== sha256.toLowerCase()) {
      throw new Error(`the file from ${url} does not match its published SHA-256 (expected ${sha256}, got ${got}): a corrupted or altered download; it was not kept`);
    }
  }
  if (cache) {
    try {
      await cache.put(url, new Response(bytes, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) } }));
    } catch { /* quota or opaque response: the model still loads, only uncached */ }
  }
  return { bytes, cached: false };
}

let adapterName = '';

function describe(s) {
  const isGpu = s.isGpu();
  // wgpu reports no adapter details in the browser; the WebGPU API does.
  // The module's label ends with the weights' precision and size (" · f16 weights, 2.4 MB").
  const label = s.backend();
  const tail = label.includes(' · ') ? label.slice(label.indexOf(' · ')) : '';
  const backend = isGpu && adapterName ? `WebGPU (${adapterName})${tail}` : label;
  return { backend, isGpu, info: JSON.parse(s.modelInfo()), notice: s.takeNotice() };
}

/** The WebGPU adapter the browser offers, or null (no WebGPU, insecure context, no adapter). */
async function probeAdapter() {
  if (!self.navigator?.gpu) return null;
  try {
    const a = await self.navigator.gpu.requestAdapter();
    if (!a) return null;
    const i = a.info || {};
    const name = [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' ') || 'unknown adapter';
    return { name, fallback: Boolean(i.isFallbackAdapter ?? a.isFallbackAdapter) };
  } catch {
    return null;
  }
}

/**
 * `auto` picks WebGPU on a hardware adapter and the CPU otherwise: a software fallback
 * adapter (SwiftShader) is far slower than candle's SIMD128 path (BENCHMARKS.md).
 * `webgpu` and `cpu` are taken as asked.
 */
async function resolveBackend(pref) {
  const a = pref === 'cpu' ? null : await probeAdapter();
  adapterName = a ? a.name : '';
  if (pref !== 'auto') return { backend: pref, note: null };
  if (!a) return { backend: 'cpu', note: 'WebGPU is not available here (it needs a WebGPU browser and https or localhost); running on the CPU.' };
  if (a.fallback) return { backend: 'cpu', note: `The only WebGPU adapter is a software fallback (${a.name}), slower than the CPU backend; running on the CPU (?backend=webgpu forces WebGPU).` };
  return { backend: 'auto', note: null };
}

const ops = {
  async load({ id, source, backend }) {
    let bytes, name, cached = false;
    if (source.kind === 'url') {
      ({ bytes, cached } = await fetchModel(id, source.url, source.cacheFirst, source));
      name = decodeURIComponent(new URL(source.url).pathname.split('/').pop() || source.url);
    } else {
      bytes = new Uint8Array(source.bytes);
      name = source.name;
    }
    post({ op: 'progress', id, loaded: 0, total: 0, phase: 'building the model' });
    const choice = await resolveBackend(backend);
    let s;
    try {
      s = await Session.create(bytes, name, choice.backend);
    } catch (e) {
      // Out of memory: say so (a wasm trap keeps its type, so the worker is still replaced).
      if (!/memory|alloc|capacity/i.test(message(e))) throw e;
      const Err = e instanceof Error ? e.constructor : Error;
      throw new Err(`${message(e)}: not enough memory to build this ${MB(bytes.length)} model in the browser (a wasm module has at most 4 GB); choose a smaller one`);
    }
    if (session) session.free();
    session = s;
    // A file from disk is kept in the Cache API once it has loaded (a refused file is not).
    if (source.kind !== 'url' && source.cacheKey) {
      const cache = await openCache();
      try { if (cache) await cache.put(source.cacheKey, new Response(bytes)); } catch { /* uncached */ }
    }
    const d = describe(s);
    family = d.info.family;
    return { ...d, notice: d.notice || choice.note, cached };
  },
  async cachedModels() {
    const cache = await openCache();
    if (!cache) return [];
    return (await cache.keys()).map((r) => r.url);
  },
  async forgetCached({ url }) {
    const cache = await openCache();
    return cache ? cache.delete(url) : false;
  },
  async setImage({ rgba, width, height }) {
    if (!session) throw new Error('no model loaded yet');
    const t0 = performance.now();
    await session.setImage(new Uint8Array(rgba), width, height);
    return { ms: performance.now() - t0, ...describe(session) };
  },
  async predict({ points, bbox, maskInput = [], mode, multimask = 'auto', samples, seed }) {
    if (!session) throw new Error('no model loaded yet');
    session.setUncertainty(mode, samples, seed);
    const t0 = performance.now();
    // `auto`: ruac-core's rule, three candidates except SAM 1 with a box (its single mask, what
    // LiteMedSAM is trained for); `multi` and `single`: the visitor's choice.
    const multi = multimask === 'auto' ? multimaskFor(family, bbox.length === 4) : multimask === 'multi';
    const p = await session.predict(new Float32Array(points), new Float32Array(bbox), new Float32Array(maskInput), multi);
    const ms = performance.now() - t0;
    const r = {
      k: p.k, width: p.width, height: p.height, masks: p.masks(), uncertainty: p.uncertainty(),
      iou: Array.from(p.iou()), objScore: p.objScore, best: p.best, mode: p.mode, unit: p.unit,
      maxValue: p.maxValue, lowRes: p.lowRes, lowResLogits: p.lowResLogits(), refined: maskInput.length > 0,
      ms, ...describe(session),
    };
    p.free();
    return r;
  },
  async exportMask({ plane, width, height }) { return maskPng(plane, width, height); },
  async exportUncertainty({ plane, width, height, vmax, unit }) { return uncertaintyPng(plane, width, height, vmax, unit); },
  async exportRle({ plane, width, height, score }) { return cocoRle(plane, width, height, score); },
  async lut() { return infernoLut(); },
  async simulateGpuFailure() { if (session) session.simulateGpuFailure(); return true; },
  /** The wasm instance's linear memory in bytes (it grows and never shrinks). */
  async memory() { return { wasmBytes: (await ready).memory.buffer.byteLength }; },
  /** Test hook: the next request crashes this worker (see handle). */
  async simulateCrash({ how }) { crashNext = how; return true; },
};

/** Set by the simulateCrash test hook: 'throw' or 'trap'. */
let crashNext = null;
/** After a simulated 'throw' crash: this worker answers nothing more. */
let dead = false;

function message(e) {
  if (e instanceof Error) return e.message;
  return String(e);
}

// One request at a time, in order: the session is not re-entrant (a GPU encode awaits the
// device, and a click arriving meanwhile must wait for it, not fail as busy).
let queue = Promise.resolve();
self.onmessage = (ev) => { queue = queue.then(() => handle(ev)); };

async function handle(ev) {
  const { id, op } = ev.data;
  if (dead) return;
  try {
    if (!ready) ready = init();
    await ready;
    if (crashNext && op !== 'simulateCrash') {
      const how = crashNext;
      crashNext = null;
      if (how === 'trap') throw new WebAssembly.RuntimeError('unreachable executed (simulated Rust panic)');
      dead = true;
      setTimeout(() => { throw new Error(`simulated worker crash during ${op}`); }, 0);
      return;
    }
    const f = ops[op];
    if (!f) throw new Error(`unknown request ${op}`);
    const result = await f(ev.data);
    const transfer = [];
    if (result && result.masks) transfer.push(result.masks.buffer, result.uncertainty.buffer);
    if (result instanceof Uint8Array) transfer.push(result.buffer);
    post({ id, ok: true, result }, transfer);
  } catch (e) {
    post({ id, ok: false, error: message(e), fatal: e instanceof WebAssembly.RuntimeError });
  }
}
