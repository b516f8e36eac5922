// SAM 2.1 preprocessing (sam2/utils/transforms.py; ruac_core::image_io::preprocess):
// antialiased bilinear resize to S x S (PyTorch's _upsample_bilinear2d_aa weights, computed
// on the CPU), ImageNet normalisation; output channels-last `S, S, 3`.
struct P {
    w: u32, h: u32, s: u32, row0: u32,
    nrows: u32, maxt: u32, byte_shift: u32, _p: u32,
}
@group(0) @binding(0) var<uniform> p: P;
// resize_w
@group(0) @binding(1) var<storage, read> img: array<u32>;
@group(0) @binding(2) var<storage, read> taps: array<u32>;
@group(0) @binding(3) var<storage, read> wts: array<f32>;
@group(0) @binding(4) var<storage, read_write> tmp: array<f32>;
// resize_h
@group(0) @binding(5) var<storage, read> tmp_in: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

fn byte_at(i: u32) -> f32 {
    let j = i + p.byte_shift;
    return f32((img[j / 4u] >> (8u * (j % 4u))) & 255u);
}

// Width pass over `nrows` image rows starting at row0 (the chunk uploaded to `img`):
// tmp[(c * h + y) * s + ox] = sum_k w_k * byte / 255.
@compute @workgroup_size(256, 1, 1)
fn resize_w(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.nrows * p.s) { return; }
    let ox = i % p.s;
    let yl = i / p.s;
    let x0 = taps[ox * 2u];
    let nt = taps[ox * 2u + 1u];
    for (var c = 0u; c < 3u; c++) {
        var acc = 0.0;
        for (var k = 0u; k < nt; k++) {
            acc += wts[ox * p.maxt + k] * (byte_at((yl * p.w + x0 + k) * 3u + c) / 255.0);
        }
        tmp[(c * p.h + p.row0 + yl) * p.s + ox] = acc;
    }
}

const MEAN = vec3<f32>(0.485, 0.456, 0.406);
const STD = vec3<f32>(0.229, 0.224, 0.225);

// Height pass and normalisation, written channels-last.
@compute @workgroup_size(256, 1, 1)
fn resize_h(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.s * p.s * 3u) { return; }
    let c = i % 3u;
    let px = i / 3u;
    let ox = px % p.s;
    let oy = px / p.s;
    let y0 = taps[oy * 2u];
    let nt = taps[oy * 2u + 1u];
    var acc = 0.0;
    for (var k = 0u; k < nt; k++) {
        acc += wts[oy * p.maxt + k] * tmp_in[(c * p.h + y0 + k) * p.s + ox];
    }
    out[i] = (acc - MEAN[c]) / STD[c];
}
