// The demo's static server under hostile requests, sent over a raw socket (node:net) so that
// nothing normalises them on the way: path traversal (plain, absolute-form, percent-encoded
// dots and separators, backslashes, symbolic links), methods other than GET and HEAD, and the
// headers every answer carries. No browser needed.
//
//   node --test web/tests/serve.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { serve, resolveTarget, isInside } from '../serve.mjs';

const SECRET = 'sibling-secret-7f3a';
let tmp, root, server, port;

before(async () => {
  // <tmp>/site is served; <tmp>/site-old is the sibling whose name starts with the served
  // folder's name (the hole a string-prefix check left open).
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ruac-serve-'));
  root = path.join(tmp, 'site');
  fs.mkdirSync(path.join(root, 'web'), { recursive: true });
  fs.mkdirSync(path.join(root, '.git'));
  fs.mkdirSync(path.join(tmp, 'site-old'));
  fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>ok</title>');
  fs.writeFileSync(path.join(root, 'web', 'a.js'), 'export const a = 1;\n');
  fs.writeFileSync(path.join(root, '.git', 'config'), SECRET);
  fs.writeFileSync(path.join(tmp, 'site-old', 'secret.txt'), SECRET);
  fs.writeFileSync(path.join(tmp, 'secret.txt'), SECRET);
  fs.symlinkSync(path.join(tmp, 'site-old', 'secret.txt'), path.join(root, 'web', 'link.txt'));
  fs.symlinkSync(path.join(root, 'web', 'a.js'), path.join(root, 'web', 'inner-link.js'));
  let url;
  ({ server, url } = await serve({ root, port: 0, quiet: true }));
  port = Number(new URL(url).port);
});

after(() => {
  server?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** Sends `request` as raw bytes and resolves to `{ status, headers, body }` of the answer. */
function raw(request) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    sock.setTimeout(5000, () => { sock.destroy(); reject(new Error(`no answer to ${JSON.stringify(request)}`)); });
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', reject);
    sock.on('end', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const [head, ...rest] = text.split('\r\n\r\n');
      const lines = head.split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status, headers, body: rest.join('\r\n\r\n'), text });
    });
    sock.write(request);
  });
}

const get = (target, method = 'GET') =>
  raw(`${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);

test('serves files under the root with the isolation headers', async () => {
  const r = await get('/web/a.js');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'export const a = 1;\n');
  assert.equal(r.headers['content-type'], 'text/javascript; charset=utf-8');
  assert.equal(r.headers['cross-origin-opener-policy'], 'same-origin');
  assert.equal(r.headers['cross-origin-embedder-policy'], 'require-corp');
  assert.equal(r.headers['cross-origin-resource-policy'], 'same-origin');
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  const index = await get('/?x=1#frag');
  assert.equal(index.status, 200);
  assert.match(index.body, /<title>ok<\/title>/);
  // A symbolic link whose target stays inside the root is served.
  assert.equal((await get('/web/inner-link.js')).status, 200);
  // Percent-encoded ordinary characters still decode.
  assert.equal((await get('/web/%61.js')).status, 200);
});

test('HEAD answers the headers without a body', async () => {
  const r = await get('/web/a.js', 'HEAD');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-length'], '20');
  assert.equal(r.body, '');
});

test('methods other than GET and HEAD get 405 with Allow', async () => {
  for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE']) {
    const r = await get('/web/a.js', m);
    assert.equal(r.status, 405, m);
    assert.equal(r.headers.allow, 'GET, HEAD', m);
  }
  // A body does not change the answer.
  const r = await raw('POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc');
  assert.equal(r.status, 405);
});

test('no request target reaches outside the root', async () => {
  const attacks = [
    // The reported hole: absolute form, climbing to a sibling that shares the name's prefix.
    'http://x/../../../site-old/secret.txt',
    'http://x/../site-old/secret.txt',
    'http://127.0.0.1/index.html',
    '/../site-old/secret.txt',
    '/../../secret.txt',
    '/web/../../site-old/secret.txt',
    '/%2e%2e/site-old/secret.txt',
    '/%2E%2E/%2e%2e/secret.txt',
    '/.%2e/site-old/secret.txt',
    '/..%2fsite-old%2fsecret.txt',
    '/..%2Fsecret.txt',
    '/..%5csite-old%5csecret.txt',
    '/..\\site-old\\secret.txt',
    '/web/%2e%2e/%2e%2e/secret.txt',
    '/%252e%252e/secret.txt',
    '/%c0%ae%c0%ae/secret.txt',
    '/./../secret.txt',
    '//../secret.txt',
    '/web/link.txt',
    '/.git/config',
    '/%2egit/config',
    '*',
    'secret.txt',
  ];
  for (const target of attacks) {
    const r = await get(target);
    assert.notEqual(r.status, 200, `${target} answered 200`);
    assert.ok(r.status >= 400 && r.status < 500, `${target}: ${r.status}`);
    assert.ok(!r.text.includes(SECRET), `${target} leaked the file`);
  }
});

test('resolveTarget: absolute form and dot segments are refused, components compared', () => {
  const base = path.join(tmp, 'site');
  assert.equal(resolveTarget(base, 'http://x/a').status, 400);
  assert.equal(resolveTarget(base, '/a/%2e%2e/b').status, 400);
  assert.equal(resolveTarget(base, '/a/%zz').status, 400);
  assert.equal(resolveTarget(base, '/a/b.js').file, path.join(base, 'a', 'b.js'));
  assert.equal(isInside(base, path.join(tmp, 'site-old', 'x')), false);
  assert.equal(isInside(base, path.join(base, 'x')), true);
  assert.equal(isInside(base, base), true);
  assert.equal(isInside(base, path.join(base, '..x')), true, 'a name starting with two dots is a child');
});

test('an unknown file is a 404 that names the path', async () => {
  const r = await get('/web/missing.js');
  assert.equal(r.status, 404);
  assert.match(r.body, /not found: \/web\/missing\.js/);
});
