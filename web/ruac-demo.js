// <ruac-demo>: the RUAC web demo as one custom element (issue #5, "The page").
//
//   <script type="module" src="web/ruac-demo.js"></script>
//   <ruac-demo model="web/models/ruac-photo.safetensors" backend="auto"></ruac-demo>
//
// Attributes: `model` (a URL; the page's `?model=` overrides it), `backend` (`auto`,
// `webgpu`, `cpu`; `?backend=` overrides it). Events: `ruac-model`, `ruac-encoded`,
// `ruac-result` (detail: the worker's answer), `ruac-error` (detail: the message shown),
// `ruac-worker-restart` (detail: why the worker stopped).
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

class RuacDemo extends Stress(View(Prompts(Images(Models(HTMLElement))))) {
  static get observedAttributes() { return ['model']; }

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
    const params = new URLSearchParams(location.search);
    this.backendPref = params.get('backend') || this.getAttribute('backend') || 'auto';
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
  }

  attributeChangedCallback(name, old, value) {
    if (name === 'model' && old !== null && old !== value && this.client.running) this.loadModelUrl(this.modelUrl(), false);
  }

  call(op, args = {}, transfer = []) { return this.client.call(op, args, transfer); }

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
    this.dispatchEvent(new CustomEvent('ruac-error', { detail: text }));
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
    // Connected again after a removal: the model it had, else the attribute's.
    await (this.modelSource ? this.loadModel(this.modelSource) : this.loadModelUrl(this.modelUrl(), false));
    this.refreshCached();
  }

  /** The worker stopped (WorkerClient's onDeath; pending requests have failed with a message
   * already): start a new one, load the model it held and encode the image again, which runs
   * the current prompts again. */
  async workerDied(reason, answered) {
    if (!this.isConnected) return;
    this.modelReady = false;
    this.encoded = false;
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
    this.dispatchEvent(new CustomEvent('ruac-worker-restart', { detail: reason }));
    this.modelInfo = null; // the new worker holds no model: nothing to keep on failure
    this.client.start();
    try {
      this.lut = await this.call('lut');
    } catch (e) {
      return; // died again: its own workerDied reports it
    }
    if (!this.modelSource) return;
    await this.loadModel(this.modelSource);
    if (this.modelReady) this.showNote(`The model worker stopped (${reason}) and was restarted; the model and the image were loaded again.`);
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

customElements.define('ruac-demo', RuacDemo);
