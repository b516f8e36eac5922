// <ruac-demo>'s model: the picker, loading (the embedded default, a URL, a file), the list of
// models in the browser cache. The worker parses the bytes and reports what it loaded
// (ModelInfo from ruac-web); nothing here reads a model's contents.
import { WEB } from './template.js';

/** The embedded default (docs/MODEL_CARD_PHOTO.md): RUAC on LiteMedSAM's pretrained TinyViT,
 * fine-tuned for photos with clicks and boxes, f16. */
export const DEFAULT_MODEL = new URL('models/ruac-photo.safetensors', WEB).href;

/** The models shipped beside the page, by name: the `model` attribute, `?model=`, the picker
 * and `el.loadModel(name)` take these names as well as URLs. `cacheFirst`: kept in the Cache
 * API and read from there next time (the default is fetched fresh, the cache serving only
 * offline). */
export const MODELS = {
  default: { url: DEFAULT_MODEL, cacheFirst: false },
  photo: { url: DEFAULT_MODEL, cacheFirst: false },
  /** The synthetic-shapes micro model (docs/MODEL_CARD.md), kept in the picker for what it is. */
  micro: { url: new URL('models/ruac-micro.safetensors', WEB).href, cacheFirst: false },
  /** RUAC's head trained on LiteMedSAM (docs/MODEL_CARD_LITE_MEDSAM.md), f16, about 20 MB,
   * fetched only when chosen. */
  'lite-medsam': { url: new URL('models/ruac-lite-medsam.safetensors', WEB).href, cacheFirst: true },
  // Hub presets: fetched from `<hub>/<repo>/resolve/main/<file>` (the `hub` attribute or
  // `?hub=`, default HUB), kept in the Cache API; `size` in bytes where exact (`about`:
  // shown only: Meta's parameter counts × 4 bytes, f32), `sha256` checked where this table has
  // it (the RUAC release's; none for Meta's files yet).
  'ruac-sam2.1-hiera-bplus': {
    hub: { repo: 'HongyouZhou/ruac-sam2.1-hiera-bplus', file: 'model.safetensors' }, source: 'RUAC release',
    label: 'RUAC on SAM 2.1 Hiera B+ (the released model)', size: 330_844_812,
    sha256: '678dae09c6834504d20e825793d8270f83dbc1c3c2d542ce843247d7154b46e4',
  },
  'sam2.1-hiera-tiny': { hub: { repo: 'facebook/sam2.1-hiera-tiny', file: 'sam2.1_hiera_tiny.pt' }, source: 'Meta', label: 'SAM 2.1 Hiera tiny', about: 156e6 },
  'sam2.1-hiera-small': { hub: { repo: 'facebook/sam2.1-hiera-small', file: 'sam2.1_hiera_small.pt' }, source: 'Meta', label: 'SAM 2.1 Hiera small', about: 184e6 },
  'sam2.1-hiera-base-plus': { hub: { repo: 'facebook/sam2.1-hiera-base-plus', file: 'sam2.1_hiera_base_plus.pt' }, source: 'Meta', label: 'SAM 2.1 Hiera base+', about: 323e6 },
  'sam2.1-hiera-large': { hub: { repo: 'facebook/sam2.1-hiera-large', file: 'sam2.1_hiera_large.pt' }, source: 'Meta', label: 'SAM 2.1 Hiera large', about: 898e6 },
};

/** The Hugging Face hub; the `hub` attribute or `?hub=` points elsewhere (a mirror, a test). */
export const HUB = 'https://huggingface.co';

/** Bytes of memory the page needs to run a model file of `bytes` bytes with f32 weights:
 * measured, a 324 MB base-plus-sized RUAC checkpoint took 1114 MiB of the worker's wasm
 * memory after loading, a 1024x768 encode and a click (web/tests/real-size.test.mjs,
 * BENCHMARKS.md), about 3.5x the file (the file's bytes, the weights, the activations). */
export const memoryNeeded = (bytes) => 3.5 * bytes;
/** A WebAssembly module addresses at most 4 GiB (wasm32), whichever backend computes. */
export const WASM_MAX = 4 * 2 ** 30;

/** Why this device cannot hold a model file of `bytes` bytes, or null. `deviceGiB`: the
 * browser's `navigator.deviceMemory` (rounded, at most 8 in Chromium; absent elsewhere): a
 * model may take at most half of it. Said before anything downloads. */
export function cannotHold(bytes, deviceGiB) {
  if (!bytes) return null;
  const need = memoryNeeded(bytes);
  const gb = (b) => `${(b / 1e9).toFixed(1)} GB`;
  if (need > WASM_MAX) {
    return `this ${gb(bytes)} model needs about ${gb(need)} of memory in the page, more than a WebAssembly module can address (4.3 GB); run it natively (trainer segment) instead`;
  }
  if (deviceGiB && need > (deviceGiB * 2 ** 30) / 2) {
    return `this ${gb(bytes)} model needs about ${gb(need)} of memory in the page, and this device reports ${deviceGiB} GB in all; choose a smaller model`;
  }
  return null;
}

/** "331 MB" (exact size) or "about 156 MB". */
const sizeText = (m) => (m.size ? `${(m.size / 1e6).toFixed(0)} MB` : m.about ? `about ${(m.about / 1e6).toFixed(0)} MB` : 'size unknown');

/** Mixin: `modelUrl`, `modelSourceFor`, `loadModelUrl`, `loadSource`, `refreshCached`,
 * `wireModels`. State on the element: `modelReady`, `modelInfo`, `modelSource` (what the
 * worker holds, to load again into a restarted worker), `loading` (the load in flight). */
export const Models = (Base) => class extends Base {
  /** What to load on connect: `?model=` (a name or a URL relative to the page) overrides the
   * attribute, so a link can name a model; neither: the default. */
  modelUrl() {
    const m = new URLSearchParams(location.search).get('model') || this.getAttribute('model');
    return this.modelSourceFor(m || 'default');
  }

  hubBase() {
    const h = new URLSearchParams(location.search).get('hub') || this.getAttribute('hub') || HUB;
    return new URL(h, document.baseURI).href.replace(/\/+$/, '');
  }

  /** A name of MODELS, else a URL relative to the page, as a `{kind: 'url'}` source (a hub
   * preset's with its `size` and `sha256`, which the worker checks). */
  modelSourceFor(nameOrUrl) {
    const key = String(nameOrUrl).trim();
    const known = Object.hasOwn(MODELS, key) ? MODELS[key] : null;
    if (known?.hub) {
      const url = `${this.hubBase()}/${known.hub.repo}/resolve/main/${known.hub.file}`;
      return { kind: 'url', url, cacheFirst: true, size: known.size || 0, about: known.about || 0, sha256: known.sha256 || null, name: key };
    }
    if (known) return { kind: 'url', url: known.url, cacheFirst: known.cacheFirst };
    let url;
    try { url = new URL(key, document.baseURI).href; } catch { throw new Error(`${key} is neither a model name (${Object.keys(MODELS).join(', ')}) nor a URL.`); }
    return { kind: 'url', url, cacheFirst: false };
  }

  async loadModelUrl(url, cacheFirst) {
    return this.loadSource({ kind: 'url', url, cacheFirst });
  }

  /** `source`: `{kind: 'url', url, cacheFirst}` or `{kind: 'file', file, cacheKey}`. On
   * failure the previous model stays (unless the worker that held it was replaced).
   * Resolves to the worker's answer, or to `{error}` (the message shown). */
  loadSource(source) {
    const p = this.loadSourceNow(source);
    this.loading = p;
    p.finally(() => { if (this.loading === p) this.loading = null; });
    return p;
  }

  async loadSourceNow(source) {
    this.progress('loading the model');
    this.$('model').textContent = 'loading…';
    this.modelReady = false;
    this.modelLoading = true;
    this.updateState();
    try {
      // A model this device cannot hold is refused before it downloads or is read.
      const refusal = cannotHold(source.kind === 'file' ? source.file.size : source.size || source.about, navigator.deviceMemory);
      if (refusal) throw new Error(refusal);
      let request = source, transfer = [];
      if (source.kind === 'file') {
        // Read here, per load: the File stays cheap to keep for a worker restart.
        this.progress('reading the file', 0, source.file.size);
        const bytes = await source.file.arrayBuffer();
        request = { kind: 'bytes', bytes, name: source.file.name, cacheKey: source.cacheKey };
        transfer = [bytes];
      }
      const r = await this.call('load', { source: request, backend: this.backendPref }, transfer);
      this.clearMessage();
      this.setBackend(r);
      const i = r.info;
      const kind = i.family === 'sam1' ? (i.ruac ? 'RUAC on SAM 1' : 'SAM 1') : (i.ruac ? 'RUAC' : 'SAM 2.1');
      this.$('model').textContent = `${i.name} (${kind} ${i.config}, ${i.image_size}px, ${(i.parameters / 1e6).toFixed(2)} M params${r.cached ? ', from cache' : ''})`;
      this.modelInfo = i;
      this.modelSource = source;
      this.modelReady = true;
      this.modelLoading = false;
      this.emit('ruac-model', r);
      if (this.current) await this.encode();
      return r;
    } catch (e) {
      this.$('model').textContent = this.modelInfo ? `${this.modelInfo.name} (previous model kept)` : 'none';
      this.modelReady = !!this.modelInfo;
      this.modelLoading = false;
      // Say which file, where the reason does not (a file that parses but is no SAM model).
      const name = source.kind === 'file' ? source.file.name : source.name || decodeURIComponent(new URL(source.url).pathname.split('/').pop());
      const text = `Could not load the model: ${!name || e.message.includes(name) ? '' : `${name}: `}${e.message}`;
      this.showError(text);
      return { error: text };
    } finally {
      this.updateState();
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
        a.setAttribute('aria-label', `load ${name} from the browser cache`);
        a.onclick = () => this.loadModelUrl(u, true);
        const x = document.createElement('button');
        x.textContent = '×';
        x.title = 'remove from the cache';
        x.setAttribute('aria-label', `remove ${name} from the browser cache`);
        x.onclick = async () => { await this.call('forgetCached', { url: u }); this.refreshCached(); };
        el.append(a, x, ' ');
      }
    } catch { /* the cache is optional */ }
  }

  /** The hub presets in the picker, by name, size and source (MODELS as it is now). */
  fillHubPresets() {
    const group = this.$('hubPresets');
    group.textContent = '';
    for (const [name, m] of Object.entries(MODELS)) {
      if (!m.hub) continue;
      const o = document.createElement('option');
      o.value = name;
      o.textContent = `${m.label} · ${sizeText(m)} · ${m.source}: ${m.hub.repo}`;
      group.append(o);
    }
  }

  /** The picker, the file chooser and the URL field (shadow-root listeners, wired once). */
  wireModels() {
    this.fillHubPresets();
    const pick = this.$('modelPick');
    pick.addEventListener('change', () => {
      this.$('urlRow').hidden = pick.value !== 'url';
      if (pick.value === 'default') this.loadSource(this.modelUrl());
      else if (Object.hasOwn(MODELS, pick.value)) this.loadSource(this.modelSourceFor(pick.value));
      if (pick.value === 'file') this.$('modelFile').click();
    });
    this.$('modelFile').addEventListener('change', async (e) => {
      const file = e.target.files[0];
      e.target.value = '';
      if (!file) return;
      const cacheKey = new URL(`ruac-local-models/${encodeURIComponent(file.name)}`, WEB).href;
      await this.loadSource({ kind: 'file', file, cacheKey });
    });
    this.$('urlLoad').onclick = () => {
      const u = this.$('url').value.trim();
      if (!u) return;
      let url;
      try { url = new URL(u, document.baseURI).href; } catch { this.showError(`${u} is not a URL.`); return; }
      this.loadModelUrl(url, true);
    };
  }
};
