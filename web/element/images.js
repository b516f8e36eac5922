// <ruac-demo>'s image: where it comes from (the gallery, the file chooser, a drop, a paste),
// decoding with size checks (image-ops.js), the canvas it is drawn on, and its encoding by
// the model (once per image; clicks then only decode).
import { decodeImage } from '../image-ops.js';
import { WEB } from './template.js';

const GALLERY = [
  ['chelsea.jpg', 'Chelsea the cat'],
  ['coffee.jpg', 'Coffee cup'],
  ['astronaut.jpg', 'Astronaut (NASA)'],
  ['cell.jpg', 'Cell in saline, quantitative phase (for the LiteMedSAM model)'],
  ['retina.jpg', 'Retina, fundus photograph (for the LiteMedSAM model)'],
];

/** The photo the element opens with (the `sample` attribute or `?sample=` overrides it;
 * `none`: start empty). */
export const SAMPLE = new URL('gallery/chelsea.jpg', WEB).href;

/** Mixin: `fillGallery`, `loadSample`, `openBlob`, `setCurrent`, `encode`, `wireImages`,
 * `onPaste`. State on the element: `original` (ImageData as loaded), `current` (what the
 * model sees, after a stress test), `encoded` (the worker holds `current`'s features),
 * `opened` (images opened so far: a later one wins over an earlier one still decoding),
 * `encoding` (the encode in flight). */
export const Images = (Base) => class extends Base {
  /** Opens the sample photo unless an image was opened meanwhile (or is already there).
   * The page's `?sample=` overrides the attribute, as `?model=` does. */
  async loadSample() {
    const attr = new URLSearchParams(location.search).get('sample') || this.getAttribute('sample');
    if (attr === 'none' || this.original) return;
    const url = attr ? new URL(attr, document.baseURI).href : SAMPLE;
    const seq = this.opened || 0;
    const name = decodeURIComponent(new URL(url).pathname.split('/').pop());
    try {
      const r = await fetch(url);
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const blob = await r.blob();
      if ((this.opened || 0) !== seq) return; // the visitor was quicker
      await this.openBlob(blob, name);
    } catch (e) {
      if (this.isConnected) this.showError(`Could not load the sample ${name}: ${e.message}`);
    }
  }

  fillGallery() {
    const g = this.$('gallery');
    if (g.childElementCount) return; // an element connected again keeps its gallery
    for (const [file, title] of GALLERY) {
      const b = document.createElement('button');
      b.className = 'thumb';
      b.title = title;
      b.dataset.sample = file;
      const img = document.createElement('img');
      img.src = new URL(`gallery/${file}`, WEB).href;
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

  /** Every image source ends here: a refused file leaves the previous image in place; of two
   * images opened in quick succession the later one stays. Resolves to null, or to the
   * message shown. `blob`: anything createImageBitmap takes (Blob, ImageBitmap, img, canvas,
   * ImageData). */
  async openBlob(blob, name) {
    const seq = this.opened = (this.opened || 0) + 1;
    let decoded;
    try {
      decoded = await decodeImage(blob, name);
    } catch (e) {
      if (seq === this.opened) this.showError(e.message);
      return e.message;
    }
    if (seq !== this.opened) return null; // a later image replaced this one
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
    return null;
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

  encode() {
    const p = this.encodeNow();
    this.encoding = p;
    p.finally(() => { if (this.encoding === p) this.encoding = null; });
    return p;
  }

  async encodeNow() {
    if (!this.modelReady || !this.current) { this.updateState(); return; }
    this.progress('encoding the image');
    this.encoded = false;
    this.updateState();
    // Only the latest encode may declare the element encoded (an image replaced while its
    // predecessor was encoding; the worker answers in order).
    const gen = this.encodeGen = (this.encodeGen || 0) + 1;
    try {
      const img = this.current;
      const rgba = new Uint8Array(img.data); // a copy: the canvas keeps its own
      const r = await this.call('setImage', { rgba: rgba.buffer, width: img.width, height: img.height }, [rgba.buffer]);
      if (gen !== this.encodeGen) return;
      this.setBackend(r);
      this.$('tenc').textContent = `${r.ms.toFixed(0)} ms`;
      this.encoded = true;
      this.updateState();
      this.emit('ruac-encoded', r);
      this.emit('ruac-ready', { model: this.modelInfo, width: img.width, height: img.height });
      if (this.points.length || this.box) await this.predict();
    } catch (e) {
      if (gen === this.encodeGen) this.showError(`Could not encode the image: ${e.message}`);
    } finally {
      if (gen === this.encodeGen) { this.updateState(); this.done(); }
    }
  }

  /** The window's paste event (added while connected, see ruac-demo.js). */
  onPaste(e) {
    const item = [...(e.clipboardData?.items || [])].find((i) => i.kind === 'file');
    if (item) this.openBlob(item.getAsFile(), 'the pasted image');
  }

  /** Drop and the file chooser (shadow-root listeners, wired once). */
  wireImages() {
    const stage = this.$('stage');
    stage.addEventListener('dragover', (e) => { e.preventDefault(); stage.classList.add('drag'); });
    stage.addEventListener('dragleave', () => stage.classList.remove('drag'));
    stage.addEventListener('drop', (e) => {
      e.preventDefault();
      stage.classList.remove('drag');
      const f = e.dataTransfer.files[0];
      if (f) this.openBlob(f, f.name);
    });
    this.$('file').addEventListener('change', (e) => {
      const f = e.target.files[0];
      if (f) this.openBlob(f, f.name);
      e.target.value = '';
    });
  }
};
