// <ruac-demo>'s model: the picker, loading (the embedded default, a URL, a file), the list of
// models in the browser cache. The worker parses the bytes and reports what it loaded
// (ModelInfo from ruac-web); nothing here reads a model's contents.
import { WEB } from './template.js';

/** The embedded default (docs/MODEL_CARD_PHOTO.md): RUAC on LiteMedSAM's pretrained TinyViT,
 * fine-tuned for photos with clicks and boxes, f16. */
export const DEFAULT_MODEL = new URL('models/ruac-photo.safetensors', WEB).href;
/** The synthetic-shapes micro model (docs/MODEL_CARD.md), kept in the picker for what it is. */
const MICRO_MODEL = 'models/ruac-micro.safetensors';
/** The medical and microscopy model of the picker (docs/MODEL_CARD_LITE_MEDSAM.md): RUAC's
 * head trained on LiteMedSAM, f16, about 20 MB, fetched only when chosen. */
const LITE_MEDSAM_MODEL = 'models/ruac-lite-medsam.safetensors';

/** Mixin: `modelUrl`, `loadModelUrl`, `loadModel`, `refreshCached`, `wireModels`.
 * State on the element: `modelReady`, `modelInfo`, `modelSource` (what the worker holds, to
 * load again into a restarted worker). */
export const Models = (Base) => class extends Base {
  modelUrl() {
    // `?model=` (a URL relative to the page) overrides the attribute: a link can name a model.
    const m = new URLSearchParams(location.search).get('model') || this.getAttribute('model');
    return m ? new URL(m, document.baseURI).href : DEFAULT_MODEL;
  }

  async loadModelUrl(url, cacheFirst) {
    return this.loadModel({ kind: 'url', url, cacheFirst });
  }

  /** `source`: `{kind: 'url', url, cacheFirst}` or `{kind: 'file', file, cacheKey}`. On
   * failure the previous model stays (unless the worker that held it was replaced). */
  async loadModel(source) {
    this.progress('loading the model');
    this.$('model').textContent = 'loading…';
    this.modelReady = false;
    try {
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
      this.dispatchEvent(new CustomEvent('ruac-model', { detail: r }));
      if (this.current) await this.encode();
    } catch (e) {
      this.$('model').textContent = this.modelInfo ? `${this.modelInfo.name} (previous model kept)` : 'none';
      this.modelReady = !!this.modelInfo;
      // Say which file, where the reason does not (a file that parses but is no SAM model).
      const name = source.kind === 'file' ? source.file.name : decodeURIComponent(new URL(source.url).pathname.split('/').pop());
      this.showError(`Could not load the model: ${!name || e.message.includes(name) ? '' : `${name}: `}${e.message}`);
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

  /** The picker, the file chooser and the URL field (shadow-root listeners, wired once). */
  wireModels() {
    const pick = this.$('modelPick');
    pick.addEventListener('change', () => {
      this.$('urlRow').hidden = pick.value !== 'url';
      if (pick.value === 'default') this.loadModelUrl(this.modelUrl(), false);
      if (pick.value === 'micro') this.loadModelUrl(new URL(MICRO_MODEL, WEB).href, false);
      if (pick.value === 'lite-medsam') this.loadModelUrl(new URL(LITE_MEDSAM_MODEL, WEB).href, true);
      if (pick.value === 'file') this.$('modelFile').click();
    });
    this.$('modelFile').addEventListener('change', async (e) => {
      const file = e.target.files[0];
      e.target.value = '';
      if (!file) return;
      const cacheKey = new URL(`ruac-local-models/${encodeURIComponent(file.name)}`, WEB).href;
      await this.loadModel({ kind: 'file', file, cacheKey });
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
