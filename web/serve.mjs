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

/** Starts the server; resolves to `{ server, url }`. Port 0 picks a free port. */
export function serve({ root, port = 8000, host = '127.0.0.1', quiet = false } = {}) {
  const base = path.resolve(root);
  const server = http.createServer((req, res) => {
    let rel;
    try {
      rel = decodeURIComponent(req.url.split(/[?#]/)[0]);
    } catch {
      res.writeHead(400).end('bad request');
      return;
    }
    let file = path.join(base, path.normalize(rel));
    if (!file.startsWith(base)) {
      res.writeHead(403).end('forbidden');
      return;
    }
    fs.stat(file, (err, st) => {
      if (!err && st.isDirectory()) {
        file = path.join(file, 'index.html');
        st = fs.existsSync(file) ? fs.statSync(file) : null;
      }
      if (err || !st) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${rel}`);
        return;
      }
      res.writeHead(200, {
        'content-type': MIME[path.extname(file).toLowerCase()] || 'application/octet-stream',
        'content-length': st.size,
        // Always revalidate: a rebuilt pkg/ or a replaced model is picked up on reload.
        'cache-control': 'no-cache',
      });
      if (req.method === 'HEAD') res.end();
      else fs.createReadStream(file).pipe(res);
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
