// LayerNorm over the last (channel) dimension of `rows x c` values, then an optional
// activation (LayerNorm2d + GELU in the mask decoder). Channels-last activations make
// SAM's LayerNorm2d the same kernel. One workgroup of 64 threads per row, two passes
// (mean, then variance of the centred values) for accuracy.
struct P {
    rows: u32, c: u32, eps: f32, act: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bb: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

var<workgroup> red: array<f32, 64>;

fn reduce_sum(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
        if (lid < s) { red[lid] += red[lid + s]; }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(64, 1, 1)
fn layernorm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wg.x + wg.y * nwg.x;
    if (row >= p.rows) { return; }
    let base = row * p.c;
    var s = 0.0;
    for (var i = lid.x; i < p.c; i += 64u) { s += x[base + i]; }
    let mean = reduce_sum(lid.x, s) / f32(p.c);
    var s2 = 0.0;
    for (var i = lid.x; i < p.c; i += 64u) {
        let d = x[base + i] - mean;
        s2 += d * d;
    }
    let inv = 1.0 / sqrt(reduce_sum(lid.x, s2) / f32(p.c) + p.eps);
    for (var i = lid.x; i < p.c; i += 64u) {
        y[base + i] = activate((x[base + i] - mean) * inv * w[i] + bb[i], p.act);
    }
}

// One thread per row, no workgroup memory or barriers: the variant for CPU adapters.
@compute @workgroup_size(64, 1, 1)
fn layernorm_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = gid.x + gid.y * nwg.x * 64u;
    if (row >= p.rows) { return; }
    let base = row * p.c;
    var s = 0.0;
    for (var i = 0u; i < p.c; i++) { s += x[base + i]; }
    let mean = s / f32(p.c);
    var s2 = 0.0;
    for (var i = 0u; i < p.c; i++) {
        let d = x[base + i] - mean;
        s2 += d * d;
    }
    let inv = 1.0 / sqrt(s2 / f32(p.c) + p.eps);
    for (var i = 0u; i < p.c; i++) {
        y[base + i] = activate((x[base + i] - mean) * inv * w[i] + bb[i], p.act);
    }
}
