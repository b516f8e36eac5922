// Element-wise kernels: broadcast add in place (residuals, positional embeddings,
// no_mem_embed), activations in place.
struct P {
    n: u32, nb: u32, b_off: u32, y_off: u32,
    op: u32, lo: f32, hi: f32, _p: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

// y[y_off + i] += b[b_off + i % nb]
@compute @workgroup_size(256, 1, 1)
fn add_bcast(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    y[p.y_off + i] += b[p.b_off + i % p.nb];
}

// y[y_off + i] = act(y[y_off + i]) (op as in common.wgsl::activate), or clamp for op 4.
@compute @workgroup_size(256, 1, 1)
fn unary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    let v = y[p.y_off + i];
    if (p.op == 4u) {
        y[p.y_off + i] = clamp(v, p.lo, p.hi);
    } else {
        y[p.y_off + i] = activate(v, p.op);
    }
}
