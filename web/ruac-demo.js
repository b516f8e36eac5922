// <ruac-demo>: the RUAC web demo as one custom element (issue #5, "The page").
//
//   <script type="module" src="web/ruac-demo.js"></script>
//   <ruac-demo model="web/models/ruac-photo.safetensors" backend="auto"></ruac-demo>
//
// Attributes (observed: a change reloads): `model` (a name of MODELS or a URL; the page's
// `?model=` overrides it on connect), `backend` (`auto`, `webgpu`, `cpu`; `?backend=`
// overrides it), `sample` (the photo it opens with; `none`: start empty). Events (bubbling,
// composed; README.md lists their payloads): `ruac-model`, `ruac-encoded`, `ruac-ready`,
// `ruac-result`, `ruac-error`, `ruac-worker-restart`. API: `loadModel`, `setImage`,
// `predict` (below, "public API").
//
// This file is the element itself: its lifecycle, the status line, and the model worker
// (started on connect, restarted when it dies, terminated on disconnect). Its parts are
// mixins in web/element/: models.js (picker and loading), images.js (sources and encoding),
// prompts.js (pointer, history, predict), view.js (overlay, legend, hover, exports),
// stress.js (stress test); template.js holds the markup.
import { WEB, TEMPLATE } from './element/template.js';
import { WorkerClient } from './element/worker-client.js';
import { Models } from './element/models.js';
import { Images } from './element/images.js';
import { Prompts } from './element/prompts.js';
import { View } from './element/view.js';
import { Stress } from './element/stress.js';

/** A worker that dies this many times within RESTART_WINDOW_MS is not restarted again. */
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 60_000;

export class RuacDemo extends Stress(View(Prompts(Images(Models(HTMLElement))))) {
  static get observedAttributes() { return ['model', 'backend']; }

  constructor() {
    super();
    this.attachShadow({ mode: 'open' });
    this.shadowRoot.innerHTML = TEMPLATE;
    this.$ = (id) => this.shadowRoot.querySelector(`[data-id="${id}"]`);
    this.points = []; // [x, y, label]
    this.box = null; // [x0, y0, x1, y1]
    this.history = [];
    this.result = null;
    this.selected = 0;
    this.original = null; // ImageData as loaded
    this.current = null; // ImageData the model sees (after a stress test)
    this.field = null; // displacement of the current stress test
    this.baseline = null; // prediction on the original image, for the stress report
    this.errors = null;
    this.busy = false;
    this.queued = false;
    this.restarts = []; // times of the worker's restarts, for MAX_RESTARTS
    this.client = new WorkerClient(new URL('worker.js', WEB), {
      onProgress: (phase, loaded, total) => this.progress(phase, loaded, total),
      onDeath: (reason, answered) => this.workerDied(reason, answered),
    });
    // Listeners inside the shadow root live and die with the element: wired once.
    this.wirePrompts();
    this.wireImages();
    this.wireView();
    this.wireStress();
    this.wireModels();
  }

  connectedCallback() {
    if (this.client.running) return; // moved within the page: nothing to redo
    this.backendPref = this.backendWanted();
    // Listeners outside the shadow root (window, document) go with `connected`.
    this.connected = new AbortController();
    window.addEventListener('paste', (e) => this.onPaste(e), { signal: this.connected.signal });
    this.client.start();
    this.start();
  }

  disconnectedCallback() {
    // A move (remove + insert in one task) keeps everything; a removal releases the worker,
    // its wasm memory, the window's listeners, and fails what was pending.
    queueMicrotask(() => { if (!this.isConnected) this.release(); });
  }

  release() {
    this.connected?.abort();
    this.connected = null;
    this.client.stop('the demo was removed from the page');
    this.modelReady = false;
    this.encoded = false;
    this.updateState();
  }

  backendWanted() {
    return new URLSearchParams(location.search).get('backend') || this.getAttribute('backend') || 'auto';
  }

  /** Before connect the attributes are read by connectedCallback; after, a changed `model`
   * loads that model (the attribute wins over `?model=` now: it was set on purpose), a
   * changed `backend` loads the current model again on the new backend. */
  attributeChangedCallback(name, old, value) {
    if (old === value || !this.client.running || !this.started) return;
    if (name === 'model') {
      let source;
      try { source = this.modelSourceFor(value || 'default'); } catch (e) { this.showError(e.message); return; }
      this.loadSource(source);
    }
    if (name === 'backend') {
      const pref = this.backendWanted();
      if (pref === this.backendPref) return;
      this.backendPref = pref;
      if (this.modelSource) this.loadSource(this.modelSource);
    }
  }

  call(op, args = {}, transfer = []) { return this.client.call(op, args, transfer); }

  /** Every event bubbles and crosses shadow roots, so a page can listen on a container. */
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  /** The status line: what the element waits for, or that it is ready for prompts. */
  updateState() {
    const text = !this.client.running ? 'stopped'
      : this.modelLoading ? 'loading the model…'
      : !this.modelReady ? 'no model: choose one below'
      : !this.current ? 'ready: open an image'
      : !this.encoded ? 'encoding the image…'
      : 'ready';
    this.$('state').textContent = text;
    this.ready = text === 'ready';
  }


  // ---- status ----
  progress(phase, loaded = 0, total = 0) {
    const bar = this.$('pbar');
    this.$('progress').hidden = false;
    if (total > 0) { bar.max = total; bar.value = loaded; } else bar.removeAttribute('value');
    const mb = (b) => (b / 1048576).toFixed(1);
    this.$('ptext').textContent = total > 0 ? `${phase}: ${mb(loaded)} / ${mb(total)} MB` : loaded > 0 ? `${phase}: ${mb(loaded)} MB` : `${phase}…`;
  }
  done() { this.$('progress').hidden = true; }

  showError(text) {
    const m = this.$('message');
    m.hidden = false;
    m.className = 'message error';
    m.textContent = text;
    this.emit('ruac-error', text);
  }
  showNote(text) {
    if (!text) return;
    const m = this.$('message');
    m.hidden = false;
    m.className = 'message note';
    m.textContent = text;
  }
  clearMessage() { this.$('message').hidden = true; }

  setBackend(r) {
    if (!r) return;
    this.$('backend').textContent = r.backend;
    this.backendName = r.backend;
    this.isGpu = r.isGpu;
    if (r.notice) this.showNote(r.notice);
  }

  // ---- start-up and the worker's life ----
  async start() {
    try {
      this.lut = await this.call('lut');
      this.drawLegend(Math.LN2, 'nats');
    } catch (e) {
      if (this.client.running) this.showError(`The demo's module did not load: ${e.message}`);
      return;
    }
    this.fillGallery();
    this.started = true;
    // The sample photo downloads and decodes while the model loads; it is encoded once both
    // are there, so the page opens ready.
    const sample = this.loadSample();
    // Connected again after a removal: the model it had, else the attribute's.
    let source = this.modelSource;
    if (!source) {
      try { source = this.modelUrl(); } catch (e) { this.showError(e.message); this.startDone = true; return; }
    }
    await this.loadSource(source);
    await sample;
    this.startDone = true; // the model loaded (or failed) and the sample encoded (or not)
    this.refreshCached();
  }

  /** The worker stopped (WorkerClient's onDeath; pending requests have failed with a message
   * already): start a new one, load the model it held and encode the image again, which runs
   * the current prompts again. */
  async workerDied(reason, answered) {
    if (!this.isConnected) return;
    this.modelReady = false;
    this.encoded = false;
    this.updateState();
    if (!answered) {
      this.showError(`The model worker failed to start (${reason}; is pkg/ built? run make demo).`);
      return;
    }
    const now = performance.now();
    this.restarts = this.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
    if (this.restarts.length >= MAX_RESTARTS) {
      this.$('model').textContent = 'none';
      this.showError(`The model worker stopped again (${reason}), ${MAX_RESTARTS + 1} times within a minute; it is not restarted. Reload the page.`);
      return;
    }
    this.restarts.push(now);
    this.emit('ruac-worker-restart', reason);
    this.modelInfo = null; // the new worker holds no model: nothing to keep on failure
    this.client.start();
    try {
      this.lut = await this.call('lut');
    } catch (e) {
      return; // died again: its own workerDied reports it
    }
    if (!this.modelSource) return;
    await this.loadSource(this.modelSource);
    if (this.modelReady) this.showNote(`The model worker stopped (${reason}) and was restarted; the model and the image were loaded again.`);
  }

  // ---- public API (README.md, "Embed it") ----
  /** Waits for the model load and the encoding in flight, if any. */
  async settled() {
    while (this.loading || this.encoding) await (this.loading || this.encoding);
  }

  /** Loads a model: a name of MODELS, a URL (relative to the page), or a File/Blob. Resolves
   * to `{backend, isGpu, info, cached}`; rejects with the message the element shows. */
  async loadModel(model) {
    if (!this.client.running) throw new Error('<ruac-demo> is not connected to a document');
    let source;
    if (model instanceof Blob) {
      const file = model instanceof File ? model : new File([model], 'model.safetensors');
      source = { kind: 'file', file, cacheKey: new URL(`ruac-local-models/${encodeURIComponent(file.name)}`, WEB).href };
    } else source = this.modelSourceFor(model instanceof URL ? model.href : model);
    const r = await this.loadSource(source);
    if (r.error) throw new Error(r.error);
    await this.settled();
    return r;
  }

  /** Shows and encodes an image: a URL (string or URL), a Blob/File, an ImageBitmap, an
   * <img>, a canvas or ImageData. Resolves to `{width, height}` once it is encoded (or, with
   * no model yet, once shown); rejects with the message the element shows. */
  async setImage(src) {
    let source = src, name = 'the image';
    if (typeof src === 'string' || src instanceof URL) {
      const url = new URL(src, document.baseURI);
      name = decodeURIComponent(url.pathname.split('/').pop()) || url.href;
      let r;
      try { r = await fetch(url); } catch (e) { r = { ok: false, status: e.message }; }
      if (!r.ok) { const text = `Could not load the image ${name}: HTTP ${r.status}`; this.showError(text); throw new Error(text); }
      source = await r.blob();
    } else if (src instanceof File) name = src.name;
    const error = await this.openBlob(source, name);
    if (error) throw new Error(error);
    await this.settled();
    return { width: this.current.width, height: this.current.height };
  }

  /** `predict({points: [[x, y, label]], box: [x0, y0, x1, y1]})` (image pixels, label 1
   * positive, 0 negative) replaces the prompts and resolves to the result (`el.result`: k,
   * width, height, masks, uncertainty, iou, best, mode, unit, maxValue, ...); rejects with
   * the message shown. Without an argument: runs the current prompts (the UI's path). */
  async predict(prompt) {
    if (prompt === undefined) return super.predict();
    const { points = [], box = null } = prompt || {};
    const ok = Array.isArray(points) && points.every((p) => Array.isArray(p) && p.length >= 2 && p.length <= 3)
      && (box === null || (Array.isArray(box) && box.length === 4));
    if (!ok) throw new TypeError('predict({points: [[x, y, label], ...], box: [x0, y0, x1, y1]}): points are [x, y] or [x, y, label], the box four numbers');
    await this.settled();
    if (!this.current) throw new Error('no image yet: call setImage first');
    if (!this.encoded) throw new Error(this.modelReady ? 'the image could not be encoded' : 'no model loaded');
    this.pushHistory();
    this.points = points.map(([x, y, l = 1]) => [Number(x), Number(y), l ? 1 : 0]);
    this.box = box && box.map(Number);
    this.errors = null;
    this.drawPrompts();
    const r = await super.predict();
    if (r.error) throw new Error(r.error);
    return r.result;
  }

  // ---- test hooks (web/tests/) ----
  /** The next GPU call fails as a lost device would. */
  simulateGpuFailure() { return this.call('simulateGpuFailure'); }
  /** The worker's next request crashes it: 'throw' (an uncaught error, no answer) or 'trap'
   * (a WebAssembly.RuntimeError, what a Rust panic gives). */
  simulateWorkerCrash(how = 'throw') { return this.client.simulateCrash(how); }
  /** `{wasmBytes}`: the worker's wasm memory (it grows, never shrinks). */
  workerMemory() { return this.call('memory'); }
}

// Loaded twice (two copies of the script, or the module under two URLs): the first stays.
if (!customElements.get('ruac-demo')) customElements.define('ruac-demo', RuacDemo);
