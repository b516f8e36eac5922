// <ruac-demo>'s result: the candidate masks with their IoU, the overlay (fill, outline,
// uncertainty heat map, changed pixels), the legend, the hover read-out, the one-score-vs-
// per-pixel panel, and the exports. Colours come from ruac-core's table (`infernoLut`, in
// `this.lut`); the PNG and RLE encodings from the wasm module.
import { renderOverlay, heatImage, maskStats } from '../image-ops.js';

/** Mixin: `clearResult`, `renderCandidates`, `render`, `drawLegend`, `hover`, `exportAs`,
 * `wireView`. Reads `result`, `selected`, `errors`, `lut` from the element. */
export const View = (Base) => class extends Base {
  clearResult() {
    this.result = null;
    this.renderCandidates();
    this.$('overlay').getContext('2d').clearRect(0, 0, 1e5, 1e5);
    this.$('score').textContent = '–';
    this.$('stats').textContent = '';
  }

  renderCandidates() {
    const c = this.$('candidates');
    c.innerHTML = '';
    if (!this.result) { c.innerHTML = '<span class="muted">Click the image.</span>'; return; }
    this.result.iou.forEach((iou, k) => {
      const b = document.createElement('button');
      b.className = 'cand' + (k === this.selected ? ' chosen' : '');
      b.setAttribute('aria-pressed', String(k === this.selected));
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

  /** The view's switches and the export buttons (shadow-root listeners, wired once). */
  wireView() {
    for (const id of ['showMask', 'showOutline', 'showHeat', 'opacity', 'sErrors']) this.$(id).addEventListener('input', () => this.render());
    this.$('exportMask').onclick = () => this.exportAs('mask');
    this.$('exportUnc').onclick = () => this.exportAs('unc');
    this.$('exportRle').onclick = () => this.exportAs('rle');
  }
};
