// The page's side of web/worker.js: numbered requests and their answers, progress reports,
// and the worker's death. Messages: {id, op, ...args} out; {id, ok, result | error, fatal}
// and {op: 'progress', ...} in.
//
// A worker is dead when it raises an uncaught error (its `error` event) or answers a request
// with `fatal` (the wasm instance trapped, as a Rust panic does, and cannot be used again).
// The client then terminates it, rejects every pending request with a message, and tells its
// owner, which may `start()` a new one. A worker that stops without either sign is not seen.

export class WorkerClient {
  /**
   * @param {URL} url the worker module
   * @param {{onProgress: (phase: string, loaded: number, total: number) => void,
   *          onDeath: (reason: string, answered: boolean) => void}} hooks onDeath runs after
   *   the pending requests' rejections have been handled; `answered`: whether the worker
   *   had answered anything (false: it never started).
   */
  constructor(url, { onProgress, onDeath }) {
    this.url = url;
    this.onProgress = onProgress;
    this.onDeath = onDeath;
    this.worker = null;
    this.seq = 0;
    this.pending = new Map();
    this.answered = false;
  }

  get running() { return this.worker !== null; }

  /** Starts a worker (a new one after a death). */
  start() {
    if (this.worker) return;
    const w = new Worker(this.url, { type: 'module' });
    w.onmessage = (ev) => this.receive(ev.data);
    w.onerror = (ev) => {
      ev.preventDefault(); // handled here: the element reports it
      this.die(ev.message ? `an uncaught error in the worker: ${ev.message}` : 'the worker script did not load');
    };
    w.onmessageerror = () => this.die('a message from the worker could not be read');
    this.worker = w;
    this.answered = false;
  }

  /** Posts a request; resolves with its result, rejects with an Error carrying the message. */
  call(op, args = {}, transfer = []) {
    if (!this.worker) return Promise.reject(new Error('the model worker is not running'));
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, ...args }, transfer);
    });
  }

  receive(msg) {
    this.answered = true;
    if (msg.op === 'progress') {
      this.onProgress(msg.phase, msg.loaded, msg.total);
      return;
    }
    // A fatal answer fails its request with the others, as the worker's death.
    if (msg.fatal) { this.die(msg.error); return; }
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.ok) p.resolve(msg.result); else p.reject(new Error(msg.error));
  }

  /** Terminates the worker and fails what it had not answered. */
  stop(reason) {
    const w = this.worker;
    if (w) {
      // The browser may keep a terminated Worker object a while: it must not keep us.
      w.onmessage = w.onerror = w.onmessageerror = null;
      w.terminate();
    }
    this.worker = null;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(new Error(reason));
  }

  die(reason) {
    if (!this.worker) return;
    const answered = this.answered;
    this.stop(`the model worker stopped (${reason})`);
    // After the rejections above have run their handlers, so the owner's recovery is last.
    setTimeout(() => this.onDeath(reason, answered), 0);
  }

  /** Test hook: the worker's next request crashes it (`how`: 'throw', an uncaught error and
   * no answer; 'trap', a WebAssembly.RuntimeError as a Rust panic gives). */
  simulateCrash(how) { return this.call('simulateCrash', { how }); }
}
