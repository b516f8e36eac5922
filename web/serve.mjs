// A static file server for the demo: the repository root on 127.0.0.1 (WebGPU needs a
// secure context, and localhost counts as one), with the MIME types browsers insist on
// (application/wasm for streaming compilation, text/javascript for module workers).
//
//   node web/serve.mjs [--port 8000] [--root .]
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.md': 'text/markdown; charset=utf-8',
  '.safetensors': 'application/octet-stream',
};

/**
 * Headers on every answer. COOP + COEP make the page cross-origin isolated (what
 * SharedArrayBuffer and wasm threads need); CORP lets the page embed what this server sends.
 * A model fetched from another site still works: fetch() is in CORS mode, which COEP allows.
 */
export const SECURITY_HEADERS = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
  'x-content-type-options': 'nosniff',
};

/**
 * Maps a request target to a file under `base`, or to `{ status, reason }`. Only the
 * origin form (`/path?query`) is accepted: the absolute form (`http://host/path`), `*` and
 * anything else are refused. Each segment is percent-decoded on its own, and a segment that
 * is (or decodes to) `.`, `..`, or that holds `/`, `\` or NUL is refused rather than
 * normalised, so `%2e%2e`, `..%2f` and `..\` cannot climb. Hidden names (`.git`) are not
 * served. The result is checked by path components (`path.relative`), never by string prefix.
 */
export function resolveTarget(base, target) {
  if (typeof target !== 'string' || !target.startsWith('/')) {
    return { status: 400, reason: 'only origin-form request targets (/path) are served' };
  }
  const rawPath = target.split(/[?#]/)[0];
  const segments = [];
  for (const raw of rawPath.split('/')) {
    if (raw === '') continue;
    let seg;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return { status: 400, reason: 'bad percent-encoding' };
    }
    if (seg === '.' || seg === '..' || /[/\\\0]/.test(seg) || /[\\\0]/.test(raw)) {
      return { status: 400, reason: 'dot segments, encoded separators and NUL are refused' };
    }
    if (seg.startsWith('.')) return { status: 404, reason: 'hidden files are not served' };
    segments.push(seg);
  }
  const file = path.join(base, ...segments);
  if (!isInside(base, file)) return { status: 403, reason: 'outside the served folder' };
  return { file, rel: '/' + segments.join('/') };
}

/** True when `file` is `base` or below it, compared component by component. */
export function isInside(base, file) {
  const rel = path.relative(base, file);
  return rel === '' || (!path.isAbsolute(rel) && rel.split(path.sep)[0] !== '..');
}

/** Starts the server; resolves to `{ server, url }`. Port 0 picks a free port. */
export function serve({ root, port = 8000, host = '127.0.0.1', quiet = false } = {}) {
  const base = path.resolve(root);
  // Symbolic links are followed only when their target stays inside the served folder.
  const realBase = fs.realpathSync(base);
  const fail = (res, status, text) => {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8',
      ...(status === 405 ? { allow: 'GET, HEAD' } : {}) }).end(`${text}\n`);
  };
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      fail(res, 405, `method not allowed: ${req.method} (only GET and HEAD)`);
      return;
    }
    const r = resolveTarget(base, req.url);
    if (r.status) {
      fail(res, r.status, r.reason);
      return;
    }
    let file = r.file;
    fs.stat(file, (err, st) => {
      if (!err && st.isDirectory()) {
        file = path.join(file, 'index.html');
        st = fs.existsSync(file) ? fs.statSync(file) : null;
      }
      if (err || !st || !st.isFile()) {
        fail(res, 404, `not found: ${r.rel}`);
        return;
      }
      let real;
      try {
        real = fs.realpathSync(file);
      } catch {
        fail(res, 404, `not found: ${r.rel}`);
        return;
      }
      if (!isInside(realBase, real)) {
        fail(res, 403, 'outside the served folder');
        return;
      }
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'content-type': MIME[path.extname(file).toLowerCase()] || 'application/octet-stream',
        'content-length': st.size,
        // Always revalidate: a rebuilt pkg/ or a replaced model is picked up on reload.
        'cache-control': 'no-cache',
      });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      const stream = fs.createReadStream(real);
      stream.on('error', () => res.destroy());
      stream.pipe(res);
    });
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(port, host, () => {
      const url = `http://${host}:${server.address().port}/`;
      if (!quiet) console.log(`RUAC demo: ${url}  (serving ${base}; Ctrl-C stops)`);
      resolve({ server, url });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  const root = arg('--root', path.join(path.dirname(fileURLToPath(import.meta.url)), '..'));
  serve({ root, port: Number(arg('--port', process.env.PORT || 8000)) }).catch((e) => {
    console.error(`cannot serve: ${e.message}${e.code === 'EADDRINUSE' ? ' (port taken: PORT=8001 make demo)' : ''}`);
    process.exit(1);
  });
}
