// Inferno colormap (ruac_core::viz::inferno) as packed RGBA8: t = v / vmax clamped to
// [0, 1], non-finite to 0, entry round(255 t) of the 256-colour table.
struct P {
    n: u32, inv: f32, _p0: u32, _p1: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> vals: array<f32>;
@group(0) @binding(2) var<storage, read> lut: array<u32>;
@group(0) @binding(3) var<storage, read_write> rgba: array<u32>;

@compute @workgroup_size(256, 1, 1)
fn colormap(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    let v = vals[i];
    let t0 = v * p.inv;
    var t = 0.0;
    // Bit test: compilers may assume floats are never NaN, so `t0 != t0` is not reliable.
    if ((bitcast<u32>(t0) & 0x7f800000u) != 0x7f800000u) { t = clamp(t0, 0.0, 1.0); }
    rgba[i] = lut[u32(floor(t * 255.0 + 0.5))];
}
