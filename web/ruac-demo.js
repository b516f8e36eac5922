// <ruac-demo>: the RUAC web demo as one custom element (issue #5, "The page").
//
//   <script type="module" src="web/ruac-demo.js"></script>
//   <ruac-demo model="web/models/ruac-photo.safetensors" backend="auto"></ruac-demo>
//
// Every asset (worker, wasm, styles, gallery, default model) is resolved relative to this
// module, so the folder works from any static host and inside another page.
import { decodeImage, styleShift, displacementField, warpImage, warpMask, warpPoint, renderOverlay, heatImage, maskStats } from './image-ops.js';

const HERE = new URL('.', import.meta.url);
/** The embedded default (docs/MODEL_CARD_PHOTO.md): RUAC on LiteMedSAM's pretrained TinyViT,
 * fine-tuned for photos with clicks and boxes, f16. */
const DEFAULT_MODEL = new URL('models/ruac-photo.safetensors', HERE).href;
/** The synthetic-shapes micro model (docs/MODEL_CARD.md), kept in the picker for what it is. */
const MICRO_MODEL = 'models/ruac-micro.safetensors';
const GALLERY = [
  ['chelsea.jpg', 'Chelsea the cat'],
  ['coffee.jpg', 'Coffee cup'],
  ['astronaut.jpg', 'Astronaut (NASA)'],
  ['cell.jpg', 'Cell in saline, quantitative phase (for the LiteMedSAM model)'],
  ['retina.jpg', 'Retina, fundus photograph (for the LiteMedSAM model)'],
];

/** The medical and microscopy model of the picker (docs/MODEL_CARD_LITE_MEDSAM.md): RUAC's
 * head trained on LiteMedSAM, f16, about 20 MB, fetched only when chosen. */
const LITE_MEDSAM_MODEL = 'models/ruac-lite-medsam.safetensors';

const TEMPLATE = `
<link rel="stylesheet" href="${new URL('demo.css', HERE).href}">
<div class="ruac">
  <div class="bar">
    <span class="status"><b>Backend:</b> <span data-id="backend">starting…</span></span>
    <span class="status"><b>Model:</b> <span data-id="model">–</span></span>
    <span class="status"><b>Encode:</b> <span data-id="tenc">–</span> · <b>Decode:</b> <span data-id="tdec">–</span></span>
  </div>
  <div class="progress" data-id="progress" hidden><progress data-id="pbar"></progress> <span data-id="ptext"></span></div>
  <div class="message" data-id="message" role="alert" hidden></div>
  <div class="layout">
    <div class="left">
      <div class="stage" data-id="stage" tabindex="0">
        <div class="drop-hint" data-id="hint">Drop an image here, paste one, choose a file or a sample below.</div>
        <canvas data-id="image" class="layer"></canvas>
        <canvas data-id="overlay" class="layer"></canvas>
        <svg data-id="prompts" class="layer" preserveAspectRatio="none"></svg>
        <div class="tooltip" data-id="tooltip" hidden></div>
      </div>
      <div class="help">Left click: positive point · right click or shift-click: negative point · drag: box</div>
      <div class="row">
        <label class="button">Choose image…<input type="file" accept="image/*" data-id="file" hidden></label>
        <span class="gallery" data-id="gallery"></span>
      </div>
      <div class="row">
        <button data-id="undo">Undo</button>
        <button data-id="clear">Clear</button>
        <span class="spacer"></span>
        <button data-id="exportMask">Mask PNG</button>
        <button data-id="exportUnc">Uncertainty PNG</button>
        <button data-id="exportRle">COCO RLE JSON</button>
      </div>
    </div>
    <div class="right">
      <section>
        <h3>Candidate masks</h3>
        <div class="candidates" data-id="candidates"><span class="muted">Click the image.</span></div>
      </section>
      <section>
        <h3>View</h3>
        <label><input type="checkbox" data-id="showMask" checked> mask fill</label>
        <label><input type="checkbox" data-id="showOutline" checked> outline</label>
        <label><input type="checkbox" data-id="showHeat" checked> uncertainty</label>
        <div class="row"><span>opacity</span><input type="range" min="0" max="100" value="60" data-id="opacity"></div>
        <div class="row"><span>uncertainty</span>
          <select data-id="mode">
            <option value="mc">Monte Carlo, 20 draws (released default)</option>
            <option value="analytic">Analytic (closed form)</option>
          </select>
        </div>
        <div class="legend"><canvas data-id="legendBar" width="256" height="12"></canvas>
          <div class="ticks"><span data-id="l0">0</span><span data-id="l1"></span><span data-id="l2"></span></div>
          <div class="unit" data-id="unit"></div>
        </div>
      </section>
      <section>
        <h3>One score per mask vs. one per pixel</h3>
        <div class="versus">
          <div><div class="big" data-id="score">–</div><div class="muted">predicted IoU: the decoder's single number for the whole mask</div></div>
          <div><canvas data-id="mini" class="mini"></canvas><div class="muted">RUAC: an uncertainty for every pixel</div></div>
        </div>
        <div class="muted" data-id="stats"></div>
      </section>
      <section>
        <h3>Stress test</h3>
        <div class="row"><span>brightness</span><input type="range" min="-50" max="50" value="0" data-id="sBright"></div>
        <div class="row"><span>contrast</span><input type="range" min="30" max="200" value="100" data-id="sContrast"></div>
        <div class="row"><span>colour shift</span><input type="range" min="0" max="100" value="0" data-id="sColor"></div>
        <div class="row"><span>elastic (px)</span><input type="range" min="0" max="30" value="0" data-id="sElastic"></div>
        <div class="row"><button data-id="sApply">Apply and re-run</button><button data-id="sReset">Original image</button>
          <label><input type="checkbox" data-id="sErrors" checked> show changed pixels</label></div>
        <div class="muted" data-id="sReport"></div>
      </section>
      <section>
        <h3>Model</h3>
        <div class="row">
          <select data-id="modelPick">
            <option value="default">Embedded default: RUAC on LiteMedSAM for photos (clicks and boxes)</option>
            <option value="micro">Synthetic shapes: ruac-micro (a toy trained on procedural scenes)</option>
            <option value="lite-medsam">Medical and microscopy: RUAC on LiteMedSAM (20 MB, box prompts)</option>
            <option value="file">A .safetensors / .pth file from disk…</option>
            <option value="url">A .safetensors / .pth file from a URL…</option>
          </select>
        </div>
        <div class="row" data-id="urlRow" hidden><input type="url" data-id="url" placeholder="https://…/model.safetensors"><button data-id="urlLoad">Load</button></div>
        <input type="file" accept=".safetensors,.pth,.pt" data-id="modelFile" hidden>
        <div class="muted">SAM 2.1 / RUAC, or SAM 1 family (SAM ViT, MobileSAM, LiteMedSAM; box prompts for LiteMedSAM)</div>
        <div class="muted" data-id="cached"></div>
      </section>
    </div>
  </div>
</div>`;

class RuacDemo extends HTMLElement {
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
    this.seq = 0;
    this.pending = new Map();
    this.busy = false;
    this.queued = false;
    this.lastPredict = null;
  }

  connectedCallback() {
    if (this.worker) return;
    const params = new URLSearchParams(location.search);
    this.backendPref = params.get('backend') || this.getAttribute('backend') || 'auto';
    this.worker = new Worker(new URL('worker.js', HERE), { type: 'module' });
    this.worker.onmessage = (ev) => this.onWorker(ev.data);
    this.worker.onerror = (ev) => this.showError(`The model worker failed to start (${ev.message || 'is pkg/ built? run make demo'}).`);
    this.wireUi();
    this.start();
  }

  attributeChangedCallback(name, old, value) {
    if (name === 'model' && old !== null && old !== value && this.worker) this.loadModelUrl(this.modelUrl(), false);
  }

  modelUrl() {
    // `?model=` (a URL relative to the page) overrides the attribute: a link can name a model.
    const m = new URLSearchParams(location.search).get('model') || this.getAttribute('model');
    return m ? new URL(m, document.baseURI).href : DEFAULT_MODEL;
  }

  // ---- worker plumbing ----
  call(op, args = {}, transfer = []) {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, ...args }, transfer);
    });
  }

  onWorker(msg) {
    if (msg.op === 'progress') {
      this.progress(msg.phase, msg.loaded, msg.total);
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.ok) p.resolve(msg.result); else p.reject(new Error(msg.error));
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

  // ---- start-up and models ----
  async start() {
    try {
      this.lut = await this.call('lut');
      this.drawLegend(Math.LN2, 'nats');
    } catch (e) {
      this.showError(`The demo's module did not load: ${e.message}`);
      return;
    }
    this.fillGallery();
    await this.loadModelUrl(this.modelUrl(), false);
    this.refreshCached();
  }

  async loadModelUrl(url, cacheFirst) {
    return this.loadModel({ kind: 'url', url, cacheFirst });
  }

  async loadModel(source, transfer = []) {
    this.progress('loading the model');
    this.$('model').textContent = 'loading…';
    this.modelReady = false;
    try {
      const r = await this.call('load', { source, backend: this.backendPref }, transfer);
      this.clearMessage();
      this.setBackend(r);
      const i = r.info;
      const kind = i.family === 'sam1' ? (i.ruac ? 'RUAC on SAM 1' : 'SAM 1') : (i.ruac ? 'RUAC' : 'SAM 2.1');
      this.$('model').textContent = `${i.name} (${kind} ${i.config}, ${i.image_size}px, ${(i.parameters / 1e6).toFixed(2)} M params${r.cached ? ', from cache' : ''})`;
      this.modelInfo = i;
      this.modelReady = true;
      this.dispatchEvent(new CustomEvent('ruac-model', { detail: r }));
      if (this.current) await this.encode();
    } catch (e) {
      this.$('model').textContent = this.modelInfo ? `${this.modelInfo.name} (previous model kept)` : 'none';
      this.modelReady = !!this.modelInfo;
      this.showError(`Could not load the model: ${e.message}`);
    } finally {
      this.done();
      this.refreshCached();
    }
  }

  async refreshCached() {
    try {
      const urls = await this.call('cachedModels');
      const el = this.$('cached');
      el.textContent = urls.length ? 'In the browser cache: ' : '';
      for (const u of urls) {
        const name = decodeURIComponent(u.split('/').pop());
        const a = document.createElement('button');
        a.textContent = name;
        a.title = `load ${u} from the cache`;
        a.onclick = () => this.loadModelUrl(u, true);
        const x = document.createElement('button');
        x.textContent = '×';
        x.title = 'remove from the cache';
        x.onclick = async () => { await this.call('forgetCached', { url: u }); this.refreshCached(); };
        el.append(a, x, ' ');
      }
    } catch { /* the cache is optional */ }
  }

  // ---- images ----
  fillGallery() {
    const g = this.$('gallery');
    for (const [file, title] of GALLERY) {
      const b = document.createElement('button');
      b.className = 'thumb';
      b.title = title;
      b.dataset.sample = file;
      const img = document.createElement('img');
      img.src = new URL(`gallery/${file}`, HERE).href;
      img.alt = title;
      b.append(img);
      b.onclick = async () => {
        try {
          const r = await fetch(img.src);
          if (!r.ok) throw new Error(`HTTP ${r.status}`);
          await this.openBlob(await r.blob(), file);
        } catch (e) { this.showError(`Could not load the sample ${file}: ${e.message}`); }
      };
      g.append(b);
    }
  }

  async openBlob(blob, name) {
    let decoded;
    try {
      decoded = await decodeImage(blob, name);
    } catch (e) {
      this.showError(e.message);
      return;
    }
    this.clearMessage();
    this.showNote(decoded.note);
    this.original = decoded.image;
    this.stressed = false;
    this.origPrompts = null;
    this.field = null;
    this.baseline = null;
    this.errors = null;
    this.$('sReport').textContent = '';
    await this.setCurrent(decoded.image, true);
  }

  async setCurrent(image, resetPrompts) {
    this.current = image;
    const c = this.$('image');
    c.width = image.width;
    c.height = image.height;
    c.getContext('2d').putImageData(image, 0, 0);
    this.$('hint').hidden = true;
    this.$('prompts').setAttribute('viewBox', `0 0 ${image.width} ${image.height}`);
    this.$('stage').style.setProperty('--ar', String(image.width / image.height));
    if (resetPrompts) {
      this.points = [];
      this.box = null;
      this.history = [];
      this.result = null;
      this.renderCandidates();
      this.$('overlay').getContext('2d').clearRect(0, 0, 1e5, 1e5);
    }
    this.drawPrompts();
    await this.encode();
  }

  async encode() {
    if (!this.modelReady || !this.current) return;
    this.progress('encoding the image');
    this.encoded = false;
    try {
      const img = this.current;
      const rgba = new Uint8Array(img.data); // a copy: the canvas keeps its own
      const r = await this.call('setImage', { rgba: rgba.buffer, width: img.width, height: img.height }, [rgba.buffer]);
      this.setBackend(r);
      this.$('tenc').textContent = `${r.ms.toFixed(0)} ms`;
      this.encoded = true;
      this.dispatchEvent(new CustomEvent('ruac-encoded', { detail: r }));
      if (this.points.length || this.box) await this.predict();
    } catch (e) {
      this.showError(`Could not encode the image: ${e.message}`);
    } finally {
      this.done();
    }
  }

  // ---- prompts ----
  /** After the visitor edits prompts: on a stressed image, keep the prompts' positions on
   * the original image in step (x + d(x), the warp's forward map), and drop the baseline,
   * which was computed for other prompts. */
  promptsChanged() {
    if (this.stressed) {
      const f = this.field;
      const back = (x, y) => {
        if (!f) return [x, y];
        const i = Math.min(f.height - 1, Math.floor(y)) * f.width + Math.min(f.width - 1, Math.floor(x));
        return [Math.min(f.width, Math.max(0, x + f.dx[i])), Math.min(f.height, Math.max(0, y + f.dy[i]))];
      };
      this.origPrompts = {
        points: this.points.map(([x, y, l]) => [...back(x, y), l]),
        box: this.box && [...back(this.box[0], this.box[1]), ...back(this.box[2], this.box[3])],
      };
      this.baseline = null;
      this.$('sReport').textContent = 'Prompts changed on the stressed image: press "Original image" for a new baseline.';
    }
    this.drawPrompts();
    if (this.points.length || this.box) this.predict(); else this.clearResult();
  }

  pushHistory() { this.history.push({ points: this.points.map((p) => [...p]), box: this.box && [...this.box] }); }

  undo() {
    const h = this.history.pop();
    if (!h) return;
    this.points = h.points;
    this.box = h.box;
    this.promptsChanged();
  }

  clear() {
    if (!this.points.length && !this.box) return;
    this.pushHistory();
    this.points = [];
    this.box = null;
    this.promptsChanged();
  }

  clearResult() {
    this.result = null;
    this.renderCandidates();
    this.$('overlay').getContext('2d').clearRect(0, 0, 1e5, 1e5);
    this.$('score').textContent = '–';
    this.$('stats').textContent = '';
  }

  drawPrompts() {
    const svg = this.$('prompts');
    const s = this.current ? Math.max(this.current.width, this.current.height) / 100 : 1;
    let html = '';
    if (this.box) {
      const [x0, y0, x1, y1] = this.box;
      html += `<rect x="${x0}" y="${y0}" width="${x1 - x0}" height="${y1 - y0}" fill="none" stroke="#ffd400" stroke-width="${0.4 * s}"/>`;
    }
    for (const [x, y, l] of this.points) {
      html += `<circle cx="${x}" cy="${y}" r="${1.2 * s}" fill="${l ? '#2ecc40' : '#ff4136'}" stroke="white" stroke-width="${0.3 * s}"/>`;
    }
    if (this.dragBox) {
      const [x0, y0, x1, y1] = this.dragBox;
      html += `<rect x="${Math.min(x0, x1)}" y="${Math.min(y0, y1)}" width="${Math.abs(x1 - x0)}" height="${Math.abs(y1 - y0)}" fill="none" stroke="#ffd400" stroke-dasharray="${s}" stroke-width="${0.4 * s}"/>`;
    }
    svg.innerHTML = html;
  }

  /** Client coordinates to image pixel coordinates (continuous). */
  toImage(ev) {
    const r = this.$('image').getBoundingClientRect();
    const x = ((ev.clientX - r.left) / r.width) * this.current.width;
    const y = ((ev.clientY - r.top) / r.height) * this.current.height;
    return [Math.min(this.current.width, Math.max(0, x)), Math.min(this.current.height, Math.max(0, y))];
  }

  // ---- prediction ----
  async predict() {
    if (!this.encoded) return;
    if (this.busy) { this.queued = true; return; }
    this.busy = true;
    try {
      do {
        this.queued = false;
        const args = {
          points: this.points.flat(),
          bbox: this.box ? this.box : [],
          mode: this.$('mode').value,
          samples: 20,
          seed: 0,
        };
        const r = await this.call('predict', args);
        this.setBackend(r);
        this.$('tdec').textContent = `${r.ms.toFixed(0)} ms`;
        this.result = r;
        this.selected = r.best;
        // On the unstressed image every result is the baseline the stress test compares to.
        if (!this.stressed) this.baseline = r;
        this.updateErrors();
        this.render();
        this.dispatchEvent(new CustomEvent('ruac-result', { detail: r }));
      } while (this.queued);
    } catch (e) {
      this.showError(`Prediction failed: ${e.message}`);
    } finally {
      this.busy = false;
    }
  }

  renderCandidates() {
    const c = this.$('candidates');
    c.innerHTML = '';
    if (!this.result) { c.innerHTML = '<span class="muted">Click the image.</span>'; return; }
    this.result.iou.forEach((iou, k) => {
      const b = document.createElement('button');
      b.className = 'cand' + (k === this.selected ? ' chosen' : '');
      b.dataset.k = k;
      b.innerHTML = `mask ${k + 1}<br><b>IoU ${iou.toFixed(3)}</b>${k === this.result.best ? '<br><small>best</small>' : ''}`;
      b.onclick = () => { this.selected = k; this.render(); };
      c.append(b);
    });
  }

  render() {
    const r = this.result;
    if (!r) return;
    this.renderCandidates();
    renderOverlay(this.$('overlay').getContext('2d'), r, this.selected, this.lut, {
      showMask: this.$('showMask').checked,
      showOutline: this.$('showOutline').checked,
      showHeat: this.$('showHeat').checked,
      opacity: this.$('opacity').value / 100,
      errors: this.$('sErrors').checked ? this.errors : null,
    });
    this.drawLegend(r.maxValue, r.unit);
    const k = this.selected;
    const st = maskStats(r, k);
    this.$('score').textContent = r.iou[k].toFixed(3);
    const mini = this.$('mini');
    mini.width = r.width;
    mini.height = r.height;
    mini.getContext('2d').putImageData(heatImage(r, k, this.lut), 0, 0);
    const pct = st.area ? ((100 * st.uncertainIn) / st.area).toFixed(1) : '0';
    this.$('stats').textContent = `Mask ${k + 1}: ${st.area} px; mean uncertainty inside ${st.meanIn.toFixed(3)}, whole image ${st.meanAll.toFixed(3)} (${r.unit}); ` +
      `${st.uncertainIn} mask pixels (${pct}%) above half the maximum. The IoU is the same number for all of them.`;
  }

  drawLegend(vmax, unit) {
    if (!this.lut) return;
    const c = this.$('legendBar');
    const ctx = c.getContext('2d');
    for (let i = 0; i < 256; i++) {
      ctx.fillStyle = `rgb(${this.lut[i * 3]},${this.lut[i * 3 + 1]},${this.lut[i * 3 + 2]})`;
      ctx.fillRect(i, 0, 1, c.height);
    }
    this.$('l0').textContent = '0';
    this.$('l1').textContent = (vmax / 2).toFixed(3);
    this.$('l2').textContent = vmax.toFixed(3);
    this.$('unit').textContent = `uncertainty in ${unit}`;
  }

  hover(ev) {
    const tip = this.$('tooltip');
    const r = this.result;
    if (!r || !this.current) { tip.hidden = true; return; }
    const [fx, fy] = this.toImage(ev);
    const x = Math.min(r.width - 1, Math.floor(fx)), y = Math.min(r.height - 1, Math.floor(fy));
    const i = this.selected * r.width * r.height + y * r.width + x;
    const p = 1 / (1 + Math.exp(-r.masks[i]));
    tip.hidden = false;
    tip.textContent = `(${x}, ${y})  p = ${p.toFixed(3)}  u = ${r.uncertainty[i].toFixed(3)} ${r.mode === 'mc' ? 'nats' : ''}`;
    const sr = this.$('stage').getBoundingClientRect();
    tip.style.left = `${ev.clientX - sr.left + 12}px`;
    tip.style.top = `${ev.clientY - sr.top + 12}px`;
  }

  // ---- stress test ----
  async applyStress() {
    if (!this.original) { this.showError('Choose an image first.'); return; }
    this.progress('applying the stress test');
    await new Promise((r) => setTimeout(r, 0));
    const seed = 7;
    let img = styleShift(this.original, {
      brightness: this.$('sBright').value / 100,
      contrast: this.$('sContrast').value / 100,
      color: this.$('sColor').value / 100,
      seed,
    });
    const strength = Number(this.$('sElastic').value);
    const f = strength > 0 ? displacementField(img.width, img.height, { strength, spacing: Math.max(16, Math.max(img.width, img.height) / 6), seed }) : null;
    if (f) img = warpImage(img, f);
    // Prompts were placed on the original image: move them with the content.
    if (!this.stressed) this.origPrompts = { points: this.points.map((p) => [...p]), box: this.box && [...this.box] };
    const orig = this.origPrompts;
    this.stressed = true;
    this.points = orig.points.map(([x, y, l]) => (f ? [...warpPoint(f, x, y), l] : [x, y, l]));
    if (orig.box) {
      const [a, b] = f ? warpPoint(f, orig.box[0], orig.box[1]) : orig.box;
      const [c2, d] = f ? warpPoint(f, orig.box[2], orig.box[3]) : orig.box.slice(2);
      this.box = [Math.min(a, c2), Math.min(b, d), Math.max(a, c2), Math.max(b, d)];
    } else this.box = null;
    this.field = f;
    await this.setCurrent(img, false);
  }

  async resetStress() {
    if (!this.original) return;
    if (this.origPrompts) { this.points = this.origPrompts.points; this.box = this.origPrompts.box; }
    this.origPrompts = null;
    this.stressed = false;
    this.field = null;
    this.errors = null;
    this.$('sReport').textContent = '';
    for (const [id, v] of [['sBright', 0], ['sContrast', 100], ['sColor', 0], ['sElastic', 0]]) this.$(id).value = v;
    await this.setCurrent(this.original, false);
  }

  /** Pixels where the stressed prediction differs from the original one (moved by the same
   * deformation): the errors the stress caused, to set beside the uncertainty. */
  updateErrors() {
    const base = this.baseline;
    const r = this.result;
    this.errors = null;
    if (!this.stressed || !base || !r || base.width !== r.width || base.height !== r.height) return;
    const n = r.width * r.height;
    const kb = base.best, k = r.best;
    let ref = new Uint8Array(n);
    for (let i = 0; i < n; i++) ref[i] = base.masks[kb * n + i] > 0 ? 1 : 0;
    if (this.field) ref = warpMask(ref, this.field);
    const err = new Uint8Array(n);
    let nErr = 0, uErr = 0, uOk = 0;
    for (let i = 0; i < n; i++) {
      const u = r.uncertainty[k * n + i];
      if ((r.masks[k * n + i] > 0 ? 1 : 0) !== ref[i]) { err[i] = 1; nErr++; uErr += u; } else uOk += u;
    }
    this.errors = err;
    const mErr = nErr ? uErr / nErr : 0, mOk = n - nErr ? uOk / (n - nErr) : 0;
    this.$('sReport').textContent = nErr
      ? `${nErr} pixels changed against the unstressed mask (cyan). Mean uncertainty there ${mErr.toFixed(3)} vs ${mOk.toFixed(3)} elsewhere; the IoU score went ${base.iou[kb].toFixed(3)} → ${r.iou[k].toFixed(3)}.`
      : `No pixel changed against the unstressed mask; the IoU score went ${base.iou[kb].toFixed(3)} → ${r.iou[k].toFixed(3)}.`;
  }

  // ---- export ----
  async exportAs(kind) {
    const r = this.result;
    if (!r) { this.showError('Nothing to export yet: click the image first.'); return; }
    const n = r.width * r.height, k = this.selected;
    const plane = (a) => a.slice(k * n, (k + 1) * n);
    try {
      let blob, name;
      if (kind === 'mask') {
        blob = new Blob([await this.call('exportMask', { plane: plane(r.masks), width: r.width, height: r.height })], { type: 'image/png' });
        name = 'mask.png';
      } else if (kind === 'unc') {
        blob = new Blob([await this.call('exportUncertainty', { plane: plane(r.uncertainty), width: r.width, height: r.height, vmax: r.maxValue, unit: r.mode === 'mc' ? 'nats' : 'entropy' })], { type: 'image/png' });
        name = 'uncertainty.png';
      } else {
        blob = new Blob([await this.call('exportRle', { plane: plane(r.masks), width: r.width, height: r.height, score: r.iou[k] })], { type: 'application/json' });
        name = 'mask_rle.json';
      }
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = name;
      this.shadowRoot.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    } catch (e) {
      this.showError(`Export failed: ${e.message}`);
    }
  }

  // ---- wiring ----
  wireUi() {
    const stage = this.$('stage');
    stage.addEventListener('contextmenu', (e) => e.preventDefault());
    stage.addEventListener('pointerdown', (e) => {
      // Prompts made while the image is still encoding are kept; encode() runs them after.
      if (!this.current) return;
      stage.setPointerCapture(e.pointerId);
      this.down = { at: this.toImage(e), cx: e.clientX, cy: e.clientY, neg: e.button === 2 || e.shiftKey };
    });
    stage.addEventListener('pointermove', (e) => {
      this.hover(e);
      if (!this.down) return;
      if (Math.hypot(e.clientX - this.down.cx, e.clientY - this.down.cy) > 5) {
        this.dragBox = [...this.down.at, ...this.toImage(e)];
        this.drawPrompts();
      }
    });
    stage.addEventListener('pointerup', (e) => {
      if (!this.down) return;
      const d = this.down;
      this.down = null;
      this.dragBox = null;
      this.pushHistory();
      // New prompts on a stressed image have no unstressed counterpart to compare with.
      this.errors = null;
      if (Math.hypot(e.clientX - d.cx, e.clientY - d.cy) > 5) {
        const [x1, y1] = this.toImage(e);
        const [x0, y0] = d.at;
        this.box = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
      } else {
        // The centre of the pixel clicked: what the visitor sees, and reproducible.
        const x = Math.min(this.current.width - 1, Math.floor(d.at[0])) + 0.5;
        const y = Math.min(this.current.height - 1, Math.floor(d.at[1])) + 0.5;
        this.points.push([x, y, d.neg ? 0 : 1]);
      }
      this.promptsChanged();
    });
    stage.addEventListener('pointerleave', () => { this.$('tooltip').hidden = true; });
    stage.addEventListener('dragover', (e) => { e.preventDefault(); stage.classList.add('drag'); });
    stage.addEventListener('dragleave', () => stage.classList.remove('drag'));
    stage.addEventListener('drop', (e) => {
      e.preventDefault();
      stage.classList.remove('drag');
      const f = e.dataTransfer.files[0];
      if (f) this.openBlob(f, f.name);
    });
    window.addEventListener('paste', (e) => {
      const item = [...(e.clipboardData?.items || [])].find((i) => i.kind === 'file');
      if (item) this.openBlob(item.getAsFile(), 'the pasted image');
    });
    this.$('file').addEventListener('change', (e) => {
      const f = e.target.files[0];
      if (f) this.openBlob(f, f.name);
      e.target.value = '';
    });
    this.$('undo').onclick = () => this.undo();
    this.$('clear').onclick = () => this.clear();
    for (const id of ['showMask', 'showOutline', 'showHeat', 'opacity', 'sErrors']) this.$(id).addEventListener('input', () => this.render());
    this.$('mode').addEventListener('change', () => { if (this.points.length || this.box) this.predict(); });
    this.$('exportMask').onclick = () => this.exportAs('mask');
    this.$('exportUnc').onclick = () => this.exportAs('unc');
    this.$('exportRle').onclick = () => this.exportAs('rle');
    this.$('sApply').onclick = () => this.applyStress();
    this.$('sReset').onclick = () => this.resetStress();
    const pick = this.$('modelPick');
    pick.addEventListener('change', () => {
      this.$('urlRow').hidden = pick.value !== 'url';
      if (pick.value === 'default') this.loadModelUrl(this.modelUrl(), false);
      if (pick.value === 'micro') this.loadModelUrl(new URL(MICRO_MODEL, HERE).href, false);
      if (pick.value === 'lite-medsam') this.loadModelUrl(new URL(LITE_MEDSAM_MODEL, HERE).href, true);
      if (pick.value === 'file') this.$('modelFile').click();
    });
    this.$('modelFile').addEventListener('change', async (e) => {
      const f = e.target.files[0];
      e.target.value = '';
      if (!f) return;
      this.progress('reading the file', 0, f.size);
      const bytes = await f.arrayBuffer();
      const cacheKey = new URL(`ruac-local-models/${encodeURIComponent(f.name)}`, HERE).href;
      await this.loadModel({ kind: 'bytes', bytes, name: f.name, cacheKey }, [bytes]);
    });
    this.$('urlLoad').onclick = () => {
      const u = this.$('url').value.trim();
      if (!u) return;
      let url;
      try { url = new URL(u, document.baseURI).href; } catch { this.showError(`${u} is not a URL.`); return; }
      this.loadModelUrl(url, true);
    };
  }

  /** Test hook: the next GPU call fails as a lost device would. */
  simulateGpuFailure() { return this.call('simulateGpuFailure'); }
}

customElements.define('ruac-demo', RuacDemo);
