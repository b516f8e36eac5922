// <ruac-demo>'s stress test: a style shift and a smooth elastic deformation of the image
// (image-ops.js, RUAC's two attack families), the prompts moved with the content, and the
// pixels whose label changed against the unstressed prediction, set beside the uncertainty.
import { styleShift, displacementField, warpImage, warpMask, warpPoint } from '../image-ops.js';

/** Mixin: `applyStress`, `resetStress`, `updateErrors`, `wireStress`. State on the element:
 * `stressed`, `field` (the current deformation), `origPrompts` (the prompts on the original
 * image), `baseline` (the unstressed result), `errors` (changed pixels, 0/1 per pixel). */
export const Stress = (Base) => class extends Base {
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

  /** The stress test's buttons (shadow-root listeners, wired once). */
  wireStress() {
    this.$('sApply').onclick = () => this.applyStress();
    this.$('sReset').onclick = () => this.resetStress();
  }
};
