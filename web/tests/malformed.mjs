// Fifty malformed files for the page (long-session.test.mjs), generated from the committed
// fixtures: 25 images (for the file chooser and the drop zone) and 25 model files (for the
// model picker's file chooser): empty, truncated, bit-flipped, wrong magic, and headers
// that claim enormous sizes. `expect` is the message the page must show for each.
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, FIXTURES, PNG_SIGNATURE, pngChunk, greyPng } from './harness.mjs';

const u32be = (v) => { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b; };
const u64le = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return b; };
const ihdr = (w, h, depth = 8, colour = 2) => pngChunk('IHDR', Buffer.concat([u32be(w), u32be(h), Buffer.from([depth, colour, 0, 0, 0])]));
const iend = pngChunk('IEND', Buffer.alloc(0));
/** A copy of `buf` with byte `at` XORed with `mask` (a bit flip for a one-bit mask). */
const flip = (buf, at, mask = 0xff) => { const b = Buffer.from(buf); b[at] ^= mask; return b; };
/** Seeded bytes (xorshift32), so every run drops the same files. */
const noise = (n, seed) => { const b = Buffer.alloc(n); let s = seed >>> 0; for (let i = 0; i < n; i++) { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; b[i] = s & 0xff; } return b; };
/** A safetensors file: the 8-byte header length, the JSON header, the data. */
const safetensors = (header, data = Buffer.alloc(0)) => { const h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header)); return Buffer.concat([u64le(h.length), h, data]); };

const NOT_IMAGE = (name) => new RegExp(`${name.replace(/\./g, '\\.')} is not an image the browser can decode`);
const NOT_MODEL = (name) => new RegExp(`Could not load the model: .*${name.replace(/\./g, '\\.')}`);

export function malformedImages() {
  const cat = fs.readFileSync(path.join(FIXTURES, 'cat-64.png'));
  const jpg = fs.readFileSync(path.join(ROOT, 'web/gallery/chelsea.jpg'));
  const model = fs.readFileSync(path.join(ROOT, 'web/models/ruac-micro.safetensors'));
  const pt = fs.readFileSync(path.join(ROOT, 'crates/ruac-core/tests/fixtures/sam2.1_micro.pt'));
  const idat = cat.indexOf('IDAT'); // the first IDAT chunk's type; its data follow
  const files = {
    'empty.png': Buffer.alloc(0),
    'text.png': Buffer.from('this is not an image\n'),
    'signature-only.png': PNG_SIGNATURE,
    'cat-first-200-bytes.png': cat.subarray(0, 200),
    'claims-100000x100000.png': Buffer.concat([PNG_SIGNATURE, ihdr(100000, 100000), cat.subarray(idat - 4, cat.length)]),
    'claims-0x0.png': Buffer.concat([PNG_SIGNATURE, ihdr(0, 0), iend]),
    'claims-2147483647-square.png': Buffer.concat([PNG_SIGNATURE, ihdr(0x7fffffff, 0x7fffffff), iend]),
    'ihdr-crc-flipped.png': flip(cat, 8 + 8 + 13, 0x01),
    'zlib-header-flipped.png': flip(cat, idat + 4, 0xff),
    'wrong-magic.png': flip(cat, 1, 0x01),
    'bit-depth-7.png': Buffer.concat([PNG_SIGNATURE, ihdr(64, 43, 7), cat.subarray(idat - 4)]),
    'colour-type-5.png': Buffer.concat([PNG_SIGNATURE, ihdr(64, 43, 8, 5), cat.subarray(idat - 4)]),
    'chunk-claims-2gb.png': Buffer.concat([PNG_SIGNATURE, ihdr(64, 43), u32be(0x7fffffff), Buffer.from('IDAT'), noise(64, 1)]),
    'no-idat.png': Buffer.concat([PNG_SIGNATURE, ihdr(64, 43), iend]),
    'jpeg-soi-only.jpg': Buffer.from([0xff, 0xd8]),
    'jpeg-claims-65500x65500.jpg': Buffer.from([0xff, 0xd8, 0xff, 0xc0, 0, 11, 8, 0xff, 0xdc, 0xff, 0xdc, 1, 1, 0x11, 0, 0xff, 0xd9]),
    'chelsea-first-300-bytes.jpg': jpg.subarray(0, 300),
    'gif-claims-65535x65535.gif': Buffer.concat([Buffer.from('GIF89a'), Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0]), Buffer.from([0x3b])]),
    'bmp-claims-100000x100000.bmp': (() => { const b = Buffer.alloc(54); b.write('BM', 0); b.writeUInt32LE(54, 10); b.writeUInt32LE(40, 14); b.writeInt32LE(100000, 18); b.writeInt32LE(100000, 22); b.writeUInt16LE(1, 26); b.writeUInt16LE(24, 28); b.writeUInt32LE(54, 2); return b; })(),
    'webp-garbage.webp': Buffer.concat([Buffer.from('RIFF'), Buffer.from([0xff, 0xff, 0xff, 0x7f]), Buffer.from('WEBPVP8 '), noise(256, 2)]),
    'random.jpg': noise(4096, 3),
    'a-zip.png': pt.subarray(0, 4096),
    'a-safetensors.jpg': model.subarray(0, 4096),
    'tiff.tif': Buffer.concat([Buffer.from('II*\0'), noise(512, 4)]),
  };
  return [
    ...Object.entries(files).map(([name, buffer]) => ({ kind: 'image', name, buffer, expect: NOT_IMAGE(name) })),
    // A real 10000 x 7000 PNG: it decodes, and is refused for its size (over 8192²).
    { kind: 'image', name: 'real-10000x7000.png', buffer: greyPng(10000, 7000), expect: /real-10000x7000\.png is 10000×7000: larger than 8192×8192 pixels/ },
  ];
}

export function malformedWeights() {
  const model = fs.readFileSync(path.join(ROOT, 'web/models/ruac-micro.safetensors'));
  const pt = fs.readFileSync(path.join(ROOT, 'crates/ruac-core/tests/fixtures/sam2.1_micro.pt'));
  const n = Number(model.readBigUInt64LE(0));
  const header = JSON.parse(model.subarray(8, 8 + n).toString());
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  // A float of the micro model's data set to NaN / +Inf (its exponent bits flipped to ones).
  const withValue = (tensor, bits) => {
    const b = Buffer.from(model);
    b.writeUInt32LE(bits, 8 + n + header[tensor].data_offsets[0]);
    return b;
  };
  // The first digit of the first shape in the header, one bit flipped: shape and size disagree.
  const shapeDigit = model.indexOf('"shape":[', 8) + '"shape":['.length;
  // The zip's first entry (data.pkl): its bytes start after the 30-byte local header.
  const pkl = 30 + pt.readUInt16LE(26) + pt.readUInt16LE(28);
  const eocd = pt.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const files = {
    'empty.safetensors': Buffer.alloc(0),
    'five-bytes.safetensors': model.subarray(0, 5),
    'header-claims-8-exabytes.safetensors': Buffer.concat([u64le(8n * 10n ** 18n), Buffer.from('{}')]),
    'header-past-the-end.safetensors': Buffer.concat([u64le(1_000_000), Buffer.from('{"a":1}')]),
    'header-length-zero.safetensors': Buffer.concat([u64le(0), noise(64, 5)]),
    'header-cut.safetensors': model.subarray(0, 8 + (n >> 1)),
    'header-not-an-object.safetensors': safetensors('[1, 2, 3]'),
    'header-garbage.safetensors': Buffer.concat([u64le(16), noise(16, 6)]),
    'dtype-F99.safetensors': safetensors({ a: { dtype: 'F99', shape: [1], data_offsets: [0, 4] } }, Buffer.alloc(4)),
    'tensor-claims-1e15-elements.safetensors': safetensors({ a: { dtype: 'F32', shape: [100000, 100000, 100000], data_offsets: [0, 4] } }, Buffer.alloc(4)),
    'offsets-past-the-end.safetensors': safetensors({ a: { dtype: 'F32', shape: [1000], data_offsets: [0, 4000] } }, Buffer.alloc(4)),
    'offsets-reversed.safetensors': safetensors({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, Buffer.alloc(8)),
    'no-tensors.safetensors': safetensors({}),
    'unrelated-tensor.safetensors': safetensors({ weight: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } }, Buffer.alloc(16)),
    'micro-cut-at-three-quarters.safetensors': model.subarray(0, (model.length * 3) >> 2),
    'micro-shape-bit-flipped.safetensors': flip(model, shapeDigit, 0x04),
    'micro-header-length-bit-flipped.safetensors': flip(model, 5, 0x01),
    'micro-one-weight-nan.safetensors': withValue(names[0], 0x7fc00000),
    'micro-one-weight-inf.safetensors': withValue(names[names.length >> 1], 0x7f800000),
    'pt-cut-in-half.pt': pt.subarray(0, pt.length >> 1),
    'pt-without-its-last-100-bytes.pt': pt.subarray(0, pt.length - 100),
    'pt-central-directory-offset-flipped.pt': flip(pt, eocd + 16 + 2, 0x80),
    'pt-pickle-opcode-flipped.pt': flip(pt, pkl + 2, 0xff),
    'an-image.pth': fs.readFileSync(path.join(ROOT, 'web/gallery/chelsea.jpg')),
    'random.pth': noise(4096, 7),
  };
  return Object.entries(files).map(([name, buffer]) => ({ kind: 'weights', name, buffer, expect: NOT_MODEL(name) }));
}
