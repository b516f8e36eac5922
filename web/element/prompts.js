// <ruac-demo>'s prompts: the pointer on the stage (click, shift- or right-click, drag a box),
// their history (undo, clear), their drawing over the image, and the predict request they
// trigger. Prompt rules (limits, placement in the model's input, which masks to return) are
// ruac-core's, applied in the worker; here a click only becomes image pixel coordinates.

/** Pointer travel (CSS px) past which a press is a box drag, not a click. */
const DRAG_PX = 5;

/** Mixin: `promptsChanged`, `pushHistory`, `undo`, `clear`, `drawPrompts`, `toImage`,
 * `predict`, `nextCandidate`, `toggleHeat`, `onKey`, `wirePrompts`. State on the element:
 * `points` ([x, y, label]), `box` ([x0, y0, x1, y1] or null), `history`, `result`,
 * `selected`; `busy`/`queued` serialise predict requests (the last prompts win),
 * `predicting` is the run in flight. */
export const Prompts = (Base) => class extends Base {
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

  drawPrompts() {
    const svg = this.$('prompts');
    const s = this.current ? Math.max(this.current.width, this.current.height) / 100 : 1;
    let html = '';
    if (this.box) {
      const [x0, y0, x1, y1] = this.box;
      html += `<rect x="${x0}" y="${y0}" width="${x1 - x0}" height="${y1 - y0}" fill="none" stroke="#ffd400" stroke-width="${0.4 * s}"/>`;
    }
    // Positive: a filled green disc; negative: a red ring with a cross (shape, not only colour).
    for (const [x, y, l] of this.points) {
      if (l) {
        html += `<circle class="pt pos" data-label="1" cx="${x}" cy="${y}" r="${1.2 * s}" fill="#2ecc40" stroke="white" stroke-width="${0.3 * s}"/>`;
      } else {
        const r = 1.2 * s, d = 0.7 * s;
        html += `<g class="pt neg" data-label="0" stroke-width="${0.45 * s}" fill="none">` +
          `<circle cx="${x}" cy="${y}" r="${r}" stroke="white" stroke-width="${0.9 * s}"/><circle cx="${x}" cy="${y}" r="${r}" stroke="#ff4136"/>` +
          `<path d="M${x - d} ${y - d}L${x + d} ${y + d}M${x - d} ${y + d}L${x + d} ${y - d}" stroke="#ff4136"/></g>`;
      }
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

  /** Runs the current prompts (the last ones win while a request is in flight). Resolves to
   * `{result}` or `{error}` (the message shown) of the last run. */
  predict() {
    if (!this.encoded) return Promise.resolve({ error: 'the image is not encoded yet' });
    if (this.busy) { this.queued = true; return this.predicting; }
    this.busy = true;
    this.predicting = this.predictLoop();
    return this.predicting;
  }

  async predictLoop() {
    try {
      do {
        this.queued = false;
        // A click added to a shown result refines it: the chosen mask's low-resolution logits
        // go with the new points as the mask prompt (SAM's interactive tools); any other
        // change (undo, clear, a box, a setting) starts afresh.
        const maskInput = this.refineNext || [];
        this.refineNext = null;
        const args = {
          maskInput,
          points: this.points.flat(),
          bbox: this.box ? this.box : [],
          mode: this.$('mode').value,
          multimask: this.$('multimask').value,
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
        this.emit('ruac-result', r);
      } while (this.queued);
      return { result: this.result };
    } catch (e) {
      const text = `Prediction failed: ${e.message}`;
      this.showError(text);
      return { error: text };
    } finally {
      this.busy = false;
    }
  }

  /** The low-resolution logits of the mask on show, for the next click's mask prompt; null
   * without a result for the current prompts. */
  lowResOfSelected() {
    const r = this.result;
    if (!r || !r.lowResLogits || !(this.points.length || this.box)) return null;
    const n = r.lowRes * r.lowRes;
    return Array.from(r.lowResLogits.subarray(this.selected * n, (this.selected + 1) * n));
  }

  /** The next candidate mask (M). */
  nextCandidate() {
    if (!this.result) return;
    this.selected = (this.selected + 1) % this.result.k;
    this.render();
  }

  /** The uncertainty heat map on or off (H). */
  toggleHeat() {
    const c = this.$('showHeat');
    c.checked = !c.checked;
    this.render();
  }

  /** Shortcuts while focus is inside the element (not in a text field or a list). */
  onKey(e) {
    const t = e.composedPath()[0];
    if (t && (t.tagName === 'SELECT' || t.tagName === 'TEXTAREA' || (t.tagName === 'INPUT' && !['checkbox', 'range', 'button'].includes(t.type)))) return;
    if (e.altKey) return;
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    const mod = e.ctrlKey || e.metaKey;
    if (key === 'z' && !e.shiftKey) this.undo();
    else if (mod) return;
    else if (key === 'Escape') this.clear();
    else if (key === 'm') this.nextCandidate();
    else if (key === 'h') this.toggleHeat();
    else return;
    e.preventDefault();
  }

  /** The stage's pointer, the buttons and the mode (shadow-root listeners, wired once). */
  wirePrompts() {
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
      if (Math.hypot(e.clientX - this.down.cx, e.clientY - this.down.cy) > DRAG_PX) {
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
      if (Math.hypot(e.clientX - d.cx, e.clientY - d.cy) > DRAG_PX) {
        const [x1, y1] = this.toImage(e);
        const [x0, y0] = d.at;
        this.box = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
      } else {
        // The centre of the pixel clicked: what the visitor sees, and reproducible.
        const x = Math.min(this.current.width - 1, Math.floor(d.at[0])) + 0.5;
        const y = Math.min(this.current.height - 1, Math.floor(d.at[1])) + 0.5;
        this.refineNext = this.lowResOfSelected();
        this.points.push([x, y, d.neg ? 0 : 1]);
      }
      this.promptsChanged();
    });
    stage.addEventListener('pointerleave', () => { this.$('tooltip').hidden = true; });
    this.$('undo').onclick = () => this.undo();
    this.$('clear').onclick = () => this.clear();
    this.$('mode').addEventListener('change', () => { if (this.points.length || this.box) this.predict(); });
    this.$('multimask').addEventListener('change', () => { if (this.points.length || this.box) this.predict(); });
    // On the element itself: it goes with the element (nothing on the window).
    this.addEventListener('keydown', (e) => this.onKey(e));
  }
};
