// The markup of <ruac-demo>'s shadow root, and the URLs of the assets beside it.
// Every asset (worker, wasm, styles, gallery, models) is resolved relative to web/, the
// folder above this module, so the demo works from any static host and inside another page.

/** web/: the folder that holds ruac-demo.js, worker.js, demo.css, gallery/ and models/. */
export const WEB = new URL('../', import.meta.url);

/** The shadow root's markup; every element a part of the element reads has a `data-id`. */
export const TEMPLATE = `
<link rel="stylesheet" href="${new URL('demo.css', WEB).href}">
<div class="ruac">
  <div class="bar">
    <span class="status"><b>Backend:</b> <span data-id="backend">starting…</span></span>
    <span class="status"><b>Model:</b> <span data-id="model">–</span></span>
    <span class="status"><b>Encode:</b> <span data-id="tenc">–</span> · <b>Decode:</b> <span data-id="tdec">–</span></span>
    <span class="status"><b>Status:</b> <span data-id="state" role="status">starting…</span></span>
  </div>
  <div class="progress" data-id="progress" hidden><progress data-id="pbar"></progress> <span data-id="ptext"></span></div>
  <div class="message" data-id="message" role="alert" hidden></div>
  <div class="layout">
    <div class="left">
      <div class="stage" data-id="stage" tabindex="0" role="application" aria-label="image: click or drag a box to segment" aria-describedby="hint-line">
        <div class="drop-hint" data-id="hint">Drop an image here, paste one, choose a file or a sample below.</div>
        <canvas data-id="image" class="layer"></canvas>
        <canvas data-id="overlay" class="layer"></canvas>
        <svg data-id="prompts" class="layer" preserveAspectRatio="none"></svg>
        <div class="tooltip" data-id="tooltip" hidden></div>
      </div>
      <div class="help" data-id="help" id="hint-line">Click the object, or drag a box; Shift-click (or right-click) for a negative point.</div>
      <div class="help keys" data-id="keys">Keys (image focused): <kbd>Z</kbd> or <kbd>Ctrl</kbd>+<kbd>Z</kbd> undo ·
        <kbd>Esc</kbd> clear · <kbd>M</kbd> next candidate mask · <kbd>H</kbd> uncertainty heat map on/off</div>
      <div class="row">
        <label class="button">Choose image…<input type="file" accept="image/*" data-id="file" aria-label="choose an image file" hidden></label>
        <span class="gallery" data-id="gallery"></span>
      </div>
      <div class="row">
        <button data-id="undo" aria-keyshortcuts="Z Control+Z">Undo</button>
        <button data-id="clear" aria-keyshortcuts="Escape">Clear</button>
        <span class="spacer"></span>
        <button data-id="exportMask">Mask PNG</button>
        <button data-id="exportUnc">Uncertainty PNG</button>
        <button data-id="exportRle">COCO RLE JSON</button>
      </div>
    </div>
    <div class="right">
      <section>
        <h3>Candidate masks</h3>
        <div class="row"><label>masks per prompt
          <select data-id="multimask">
            <option value="auto">model's rule (three; one for a SAM 1 box)</option>
            <option value="multi">three candidates (multi-mask)</option>
            <option value="single">one mask (single-mask)</option>
          </select></label></div>
        <div class="candidates" data-id="candidates"><span class="muted">Click the image.</span></div>
      </section>
      <section>
        <h3>View</h3>
        <label><input type="checkbox" data-id="showMask" checked> mask fill</label>
        <label><input type="checkbox" data-id="showOutline" checked> outline</label>
        <label><input type="checkbox" data-id="showHeat" checked aria-keyshortcuts="H"> uncertainty</label>
        <div class="row"><span>opacity</span><input type="range" min="0" max="100" value="60" data-id="opacity" aria-label="overlay opacity"></div>
        <div class="row"><span>uncertainty</span>
          <select data-id="mode" aria-label="uncertainty estimate">
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
          <div><canvas data-id="mini" class="mini" role="img" aria-label="uncertainty of the chosen mask"></canvas><div class="muted">RUAC: an uncertainty for every pixel</div></div>
        </div>
        <div class="muted" data-id="stats"></div>
      </section>
      <section>
        <h3>Stress test</h3>
        <div class="row"><span>brightness</span><input type="range" min="-50" max="50" value="0" data-id="sBright" aria-label="stress test: brightness"></div>
        <div class="row"><span>contrast</span><input type="range" min="30" max="200" value="100" data-id="sContrast" aria-label="stress test: contrast"></div>
        <div class="row"><span>colour shift</span><input type="range" min="0" max="100" value="0" data-id="sColor" aria-label="stress test: colour shift"></div>
        <div class="row"><span>elastic (px)</span><input type="range" min="0" max="30" value="0" data-id="sElastic" aria-label="stress test: elastic deformation in pixels"></div>
        <div class="row"><button data-id="sApply">Apply and re-run</button><button data-id="sReset">Original image</button>
          <label><input type="checkbox" data-id="sErrors" checked> show changed pixels</label></div>
        <div class="muted" data-id="sReport"></div>
      </section>
      <section>
        <h3>Model</h3>
        <div class="row">
          <select data-id="modelPick" aria-label="model">
            <option value="default">Embedded default: RUAC on LiteMedSAM for photos (clicks and boxes)</option>
            <option value="micro">Synthetic shapes: ruac-micro (a toy trained on procedural scenes)</option>
            <option value="lite-medsam">Medical and microscopy: RUAC on LiteMedSAM (20 MB, box prompts)</option>
            <optgroup label="From the Hugging Face hub (SAM 2.1 family, 1024 px)" data-id="hubPresets"></optgroup>
            <option value="file">A .safetensors / .pth file from disk…</option>
            <option value="url">A .safetensors / .pth file from a URL…</option>
          </select>
        </div>
        <div class="row" data-id="urlRow" hidden><input type="url" data-id="url" aria-label="model URL" placeholder="https://…/model.safetensors"><button data-id="urlLoad">Load</button></div>
        <input type="file" accept=".safetensors,.pth,.pt" data-id="modelFile" aria-label="choose a model file" hidden>
        <div class="muted">SAM 2.1 / RUAC, or SAM 1 family (SAM ViT, MobileSAM, LiteMedSAM; box prompts for LiteMedSAM)</div>
        <div class="muted" data-id="cached"></div>
      </section>
    </div>
  </div>
</div>`;
