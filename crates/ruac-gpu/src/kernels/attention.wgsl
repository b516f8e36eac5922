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
    // Additive score bias (0: none, 1: dense `bias[b][h][q][k]`, 2: decomposed relative
    // positions `bias[b][h][q][ky] + bias[b][h][q][g + kx]` for keys on a g x g grid).
    bias_mode: u32, b_bs: u32, b_hs: u32, b_qs: u32,
    g: u32,
    // attention_direct over keys k_begin..k_end only, resuming from / saving to `st`
    // (phase bit 0: resume, bit 1: last chunk, write o).
    k_begin: u32, k_end: u32, phase: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
// Softmax state (m, l, acc[hd]) per (batch, head, query) between key chunks.
@group(0) @binding(6) var<storage, read_write> st: array<f32>;

// The score bias of query `qi` and key `j` (TinyViT's attention biases, SAM ViT's
// decomposed relative positions).
fn score_bias(bt: u32, h: u32, qi: u32, j: u32) -> f32 {
    let base = bt * p.b_bs + h * p.b_hs + qi * p.b_qs;
    if (p.bias_mode == 1u) { return bias[base + j]; }
    if (p.bias_mode == 2u) { return bias[base + j / p.g] + bias[base + p.g + j % p.g]; }
    return 0.0;
}

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
            if (p.bias_mode != 0u) { s += score_bias(bt, h, min(qi, p.nq - 1u), j0 + jj); }
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
// Long key loops run as several dispatches over key chunks: lavapipe (llvmpipe) ends any
// loop after 65535 iterations, nested ones counted together.
@compute @workgroup_size(64, 1, 1)
fn attention_direct(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
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
    let sb = ((bt * nwg.y + h) * p.nq + qi) * (p.hd + 2u);
    if ((p.phase & 1u) != 0u) {
        m = st[sb];
        l = st[sb + 1u];
        for (var d = 0u; d < p.hd; d++) { acc[d] = st[sb + 2u + d]; }
    }
    let kb = p.k_off + bt * p.k_bs + h * p.k_hs;
    let vb = p.v_off + bt * p.v_bs + h * p.v_hs;
    for (var j = p.k_begin; j < p.k_end; j++) {
        var s = 0.0;
        let kj = kb + j * p.k_ns;
        for (var d = 0u; d < p.hd; d++) { s += qv[d] * k[kj + d]; }
        if (p.bias_mode != 0u) { s += score_bias(bt, h, qi, j); }
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
    if ((p.phase & 2u) == 0u) {
        st[sb] = m;
        st[sb + 1u] = l;
        for (var d = 0u; d < p.hd; d++) { st[sb + 2u + d] = acc[d]; }
        return;
    }
    let ob = p.o_off + bt * p.o_bs + h * p.o_hs + qi * p.o_ns;
    for (var d = 0u; d < p.hd; d++) { o[ob + d] = acc[d] / l; }
}

// SAM ViT's `add_decomposed_rel_pos` terms for queries on a g x g grid (`nq = g*g`): for
// t < g, Σ_c q[c] rel_pos_h[y - t + g - 1][c]; for t = g + kx, Σ_c q[c] rel_pos_w[x - kx +
// g - 1][c] (unscaled q, as the reference). rel_pos_h is read from `k`, rel_pos_w from `v`,
// written to `o` at the bias strides with 2g values per query.
@compute @workgroup_size(64, 1, 1)
fn rel_pos(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let h = wg.y;
    let bt = wg.z;
    let i = wg.x * 64u + lid.x;
    let g2 = 2u * p.g;
    if (i >= p.nq * g2) { return; }
    let qi = i / g2;
    let t = i % g2;
    let qb = p.q_off + bt * p.q_bs + h * p.q_hs + qi * p.q_ns;
    var s = 0.0;
    if (t < p.g) {
        let r = ((qi / p.g) + p.g - 1u - t) * p.hd;
        for (var d = 0u; d < p.hd; d++) { s += q[qb + d] * k[r + d]; }
    } else {
        let r = ((qi % p.g) + p.g - 1u - (t - p.g)) * p.hd;
        for (var d = 0u; d < p.hd; d++) { s += q[qb + d] * v[r + d]; }
    }
    o[bt * p.b_bs + h * p.b_hs + qi * p.b_qs + t] = s;
}
