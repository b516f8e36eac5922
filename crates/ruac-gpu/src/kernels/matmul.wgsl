// Batched, strided C = act(alpha * A B + bias) (+ C if accumulate), 64x64 tiles,
// 16x16 threads each computing 4x4 outputs. Strides let one kernel read transposed
// operands (attention keys, z^T in the Bayesian head) without copies.
// B's element type: f16 in the `matmul_wf16` variant (weights stored in half precision on
// adapters with shader-f16); every product and sum stays f32.
alias BT = f32;
struct P {
    m: u32, n: u32, k: u32, bias_mode: u32,
    a_off: u32, a_bs: u32, a_rs: u32, a_ks: u32,
    b_off: u32, b_bs: u32, b_ks: u32, b_ns: u32,
    c_off: u32, c_bs: u32, c_rs: u32, c_ns: u32,
    act: u32, accumulate: u32, alpha: f32, bias_off: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<BT>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;
var<workgroup> As: array<f32, 1024>; // [BK][BM]
var<workgroup> Bs: array<f32, 1024>; // [BK][BN]

@compute @workgroup_size(16, 16, 1)
fn matmul(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let bt = wg.z;
    let row0 = wg.y * BM;
    let col0 = wg.x * BN;
    let tid = lid.y * 16u + lid.x;
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; }
    let abase = p.a_off + bt * p.a_bs;
    let bbase = p.b_off + bt * p.b_bs;
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        for (var l = 0u; l < 4u; l++) {
            let e = tid + l * 256u;
            let r = e / BK;
            let kk = e % BK;
            let gr = row0 + r;
            let gk = k0 + kk;
            var v = 0.0;
            if (gr < p.m && gk < p.k) { v = a[abase + gr * p.a_rs + gk * p.a_ks]; }
            As[kk * BM + r] = v;
        }
        for (var l = 0u; l < 4u; l++) {
            let e = tid + l * 256u;
            let kk = e / BN;
            let cc = e % BN;
            let gk = k0 + kk;
            let gc = col0 + cc;
            var v = 0.0;
            if (gk < p.k && gc < p.n) { v = f32(b[bbase + gk * p.b_ks + gc * p.b_ns]); }
            Bs[kk * BN + cc] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = As[kk * BM + lid.y + 16u * i];
                bv[i] = Bs[kk * BN + lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] += av[i] * bv[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + lid.y + 16u * i;
        if (r >= p.m) { continue; }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x + 16u * j;
            if (col >= p.n) { continue; }
            var v = acc[i * 4u + j] * p.alpha;
            if (p.bias_mode == 1u) { v += bias[p.bias_off + col]; }
            if (p.bias_mode == 2u) { v += bias[p.bias_off + r]; }
            v = activate(v, p.act);
            let idx = p.c_off + bt * p.c_bs + r * p.c_rs + col * p.c_ns;
            if (p.accumulate == 1u) { v += c[idx]; }
            c[idx] = v;
        }
    }
}

// The same product without workgroup memory or barriers, each thread a 4x4 block read
// straight from the buffers: faster on CPU adapters (lavapipe, SwiftShader), where
// workgroup memory is ordinary memory and every barrier is a context switch.
@compute @workgroup_size(8, 8, 1)
fn matmul_direct(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let bt = wg.z;
    let row0 = wg.y * 32u + lid.y * 4u;
    let col0 = wg.x * 32u + lid.x * 4u;
    if (row0 >= p.m || col0 >= p.n) { return; }
    let abase = p.a_off + bt * p.a_bs;
    let bbase = p.b_off + bt * p.b_bs;
    var rows: array<u32, 4>;
    var cols: array<u32, 4>;
    for (var i = 0u; i < 4u; i++) {
        rows[i] = min(row0 + i, p.m - 1u);
        cols[i] = min(col0 + i, p.n - 1u);
    }
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; }
    for (var kk = 0u; kk < p.k; kk++) {
        let a0 = a[abase + rows[0] * p.a_rs + kk * p.a_ks];
        let a1 = a[abase + rows[1] * p.a_rs + kk * p.a_ks];
        let a2 = a[abase + rows[2] * p.a_rs + kk * p.a_ks];
        let a3 = a[abase + rows[3] * p.a_rs + kk * p.a_ks];
        let bk = bbase + kk * p.b_ks;
        let b0 = f32(b[bk + cols[0] * p.b_ns]);
        let b1 = f32(b[bk + cols[1] * p.b_ns]);
        let b2 = f32(b[bk + cols[2] * p.b_ns]);
        let b3 = f32(b[bk + cols[3] * p.b_ns]);
        acc[0] += a0 * b0; acc[1] += a0 * b1; acc[2] += a0 * b2; acc[3] += a0 * b3;
        acc[4] += a1 * b0; acc[5] += a1 * b1; acc[6] += a1 * b2; acc[7] += a1 * b3;
        acc[8] += a2 * b0; acc[9] += a2 * b1; acc[10] += a2 * b2; acc[11] += a2 * b3;
        acc[12] += a3 * b0; acc[13] += a3 * b1; acc[14] += a3 * b2; acc[15] += a3 * b3;
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + i;
        if (r >= p.m) { continue; }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + j;
            if (col >= p.n) { continue; }
            var v = acc[i * 4u + j] * p.alpha;
            if (p.bias_mode == 1u) { v += bias[p.bias_off + col]; }
            if (p.bias_mode == 2u) { v += bias[p.bias_off + r]; }
            v = activate(v, p.act);
            let idx = p.c_off + bt * p.c_bs + r * p.c_rs + col * p.c_ns;
            if (p.accumulate == 1u) { v += c[idx]; }
            c[idx] = v;
        }
    }
}
