// Prompt encoder (sam2/modeling/sam/prompt_encoder.py): random-Fourier positional encoding
// [sin, cos](2 pi (2x - 1) G) of points and of the embedding grid, plus label embeddings.
struct P {
    n: u32, d: u32, inv_w: f32, inv_h: f32,
    gh: u32, gw: u32, _p0: u32, _p1: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> gauss: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> coords: array<f32>;
@group(0) @binding(4) var<storage, read> labels: array<f32>;
@group(0) @binding(5) var<storage, read> emb: array<f32>;

fn fourier(x: f32, y: f32, c: u32) -> f32 {
    let half = p.d / 2u;
    let f = c % half;
    let cx = x * 2.0 - 1.0;
    let cy = y * 2.0 - 1.0;
    let t = (cx * gauss[f] + cy * gauss[half + f]) * 6.283185307179586;
    return select(cos(t), sin(t), c < half);
}

// `_embed_points`: coordinates already shifted by +0.5 (the padding point is (0, 0), label
// -1); emb holds point_embeddings[0..4] then not_a_point_embed, `d` values each.
@compute @workgroup_size(256, 1, 1)
fn points(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n * p.d) { return; }
    let pt = i / p.d;
    let c = i % p.d;
    let lab = i32(round(labels[pt]));
    var v = fourier(coords[2u * pt] * p.inv_w, coords[2u * pt + 1u] * p.inv_h, c);
    if (lab == -1) { v = emb[4u * p.d + c]; }
    if (lab >= 0 && lab <= 3) { v += emb[u32(lab) * p.d + c]; }
    out[i] = v;
}

// `get_dense_pe`: encoding of the cell centres of a gh x gw grid, `gh*gw, d` (token-major,
// as the two-way transformer reads it). inv_w, inv_h are 1/gw, 1/gh.
@compute @workgroup_size(256, 1, 1)
fn grid(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.gh * p.gw * p.d) { return; }
    let px = i / p.d;
    let c = i % p.d;
    let x = (f32(px % p.gw) + 0.5) * p.inv_w;
    let y = (f32(px / p.gw) + 0.5) * p.inv_h;
    out[i] = fourier(x, y, c);
}
