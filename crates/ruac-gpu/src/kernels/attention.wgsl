// Scaled dot-product attention softmax(q k^T * scale) v, fused with an online softmax
// (no score matrix in memory: Hiera's global blocks at 1024 px would need 268 MB).
// One thread per query row; the 64 threads of a workgroup share tiles of 16 keys and
// values in workgroup memory. Strided (batch, head, token) addressing, head_dim contiguous.
struct P {
    nq: u32, nk: u32, hd: u32, scale: f32,
    q_off: u32, q_bs: u32, q_hs: u32, q_ns: u32,
    k_off: u32, k_bs: u32, k_hs: u32, k_ns: u32,
    v_off: u32, v_bs: u32, v_hs: u32, v_ns: u32,
    o_off: u32, o_bs: u32, o_hs: u32, o_ns: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;

const TK: u32 = 16u;
const MAXD: u32 = 128u;
var<workgroup> ks: array<f32, 2048>;
var<workgroup> vs: array<f32, 2048>;

@compute @workgroup_size(64, 1, 1)
fn attention(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let h = wg.y;
    let bt = wg.z;
    let qi = wg.x * 64u + lid.x;
    let live = qi < p.nq;
    var qv: array<f32, 128>;
    var acc: array<f32, 128>;
    let qb = p.q_off + bt * p.q_bs + h * p.q_hs + min(qi, p.nq - 1u) * p.q_ns;
    for (var d = 0u; d < p.hd; d++) {
        qv[d] = q[qb + d] * p.scale;
        acc[d] = 0.0;
    }
    var m = -3.0e38;
    var l = 0.0;
    let kb = p.k_off + bt * p.k_bs + h * p.k_hs;
    let vb = p.v_off + bt * p.v_bs + h * p.v_hs;
    for (var j0 = 0u; j0 < p.nk; j0 += TK) {
        let cnt = min(TK, p.nk - j0);
        for (var e = lid.x; e < cnt * p.hd; e += 64u) {
            let jj = e / p.hd;
            let d = e % p.hd;
            ks[jj * MAXD + d] = k[kb + (j0 + jj) * p.k_ns + d];
            vs[jj * MAXD + d] = v[vb + (j0 + jj) * p.v_ns + d];
        }
        workgroupBarrier();
        for (var jj = 0u; jj < cnt; jj++) {
            var s = 0.0;
            for (var d = 0u; d < p.hd; d++) { s += qv[d] * ks[jj * MAXD + d]; }
            if (s > m) {
                let corr = exp(m - s);
                l *= corr;
                for (var d = 0u; d < p.hd; d++) { acc[d] *= corr; }
                m = s;
            }
            let pj = exp(s - m);
            l += pj;
            for (var d = 0u; d < p.hd; d++) { acc[d] += pj * vs[jj * MAXD + d]; }
        }
        workgroupBarrier();
    }
    if (live) {
        let ob = p.o_off + bt * p.o_bs + h * p.o_hs + qi * p.o_ns;
        for (var d = 0u; d < p.hd; d++) { o[ob + d] = acc[d] / l; }
    }
}

// The same without workgroup memory or barriers (keys and values read from the buffers):
// the variant for CPU adapters, where workgroup memory buys nothing and barriers cost.
@compute @workgroup_size(64, 1, 1)
fn attention_direct(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let h = wg.y;
    let bt = wg.z;
    let qi = wg.x * 64u + lid.x;
    if (qi >= p.nq) { return; }
    var qv: array<f32, 128>;
    var acc: array<f32, 128>;
    let qb = p.q_off + bt * p.q_bs + h * p.q_hs + qi * p.q_ns;
    for (var d = 0u; d < p.hd; d++) {
        qv[d] = q[qb + d] * p.scale;
        acc[d] = 0.0;
    }
    var m = -3.0e38;
    var l = 0.0;
    let kb = p.k_off + bt * p.k_bs + h * p.k_hs;
    let vb = p.v_off + bt * p.v_bs + h * p.v_hs;
    for (var j = 0u; j < p.nk; j++) {
        var s = 0.0;
        let kj = kb + j * p.k_ns;
        for (var d = 0u; d < p.hd; d++) { s += qv[d] * k[kj + d]; }
        if (s > m) {
            let corr = exp(m - s);
            l *= corr;
            for (var d = 0u; d < p.hd; d++) { acc[d] *= corr; }
            m = s;
        }
        let pj = exp(s - m);
        l += pj;
        let vj = vb + j * p.v_ns;
        for (var d = 0u; d < p.hd; d++) { acc[d] += pj * v[vj + d]; }
    }
    let ob = p.o_off + bt * p.o_bs + h * p.o_hs + qi * p.o_ns;
    for (var d = 0u; d < p.hd; d++) { o[ob + d] = acc[d] / l; }
}
