// Data movement on channels-last activations: 2x2 max pooling, Hiera's window
// partition / un-partition, FPN's nearest top-down upsampling, bilinear resizing.
struct P {
    n: u32, b: u32, h: u32, w: u32,
    c: u32, ws: u32, nh: u32, nw: u32,
    in_off: u32, in_ps: u32, row0: u32, col_tab: u32,
    ih: u32, iw: u32, out_off: u32, _p1: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> tab: array<f32>;

// max_pool2d(2) of `b, h, w, c` (h, w the input size, odd edges dropped) read with a pixel
// stride `in_ps` from `in_off` (pools the q slice of a fused qkv tensor in place).
@compute @workgroup_size(256, 1, 1)
fn pool2x2(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    let oh = p.h / 2u;
    let ow = p.w / 2u;
    let ch = i % p.c;
    let px = i / p.c;
    let ox = px % ow;
    let oy = (px / ow) % oh;
    let bi = px / (ow * oh);
    var m = -3.4e38;
    for (var dy = 0u; dy < 2u; dy++) {
        for (var dx = 0u; dx < 2u; dx++) {
            let src = (bi * p.h + oy * 2u + dy) * p.w + ox * 2u + dx;
            m = max(m, x[p.in_off + src * p.in_ps + ch]);
        }
    }
    y[i] = m;
}

// window_partition: `b, h, w, c` -> `b*nh*nw, ws, ws, c`, zero padding (hieradet.py).
@compute @workgroup_size(256, 1, 1)
fn win_part(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    let ch = i % p.c;
    let t = i / p.c;
    let wx = t % p.ws;
    let wy = (t / p.ws) % p.ws;
    let win = t / (p.ws * p.ws);
    let bi = win / (p.nh * p.nw);
    let r = win % (p.nh * p.nw);
    let yy = (r / p.nw) * p.ws + wy;
    let xx = (r % p.nw) * p.ws + wx;
    var v = 0.0;
    if (yy < p.h && xx < p.w) { v = x[((bi * p.h + yy) * p.w + xx) * p.c + ch]; }
    y[i] = v;
}

// window_unpartition (cropping the padding), added to `y` (the block's residual).
@compute @workgroup_size(256, 1, 1)
fn win_unpart_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    let ch = i % p.c;
    let t = i / p.c;
    let xx = t % p.w;
    let yy = (t / p.w) % p.h;
    let bi = t / (p.w * p.h);
    let win = bi * p.nh * p.nw + (yy / p.ws) * p.nw + xx / p.ws;
    y[i] += x[((win * p.ws + yy % p.ws) * p.ws + xx % p.ws) * p.c + ch];
}

// y (h, w, c) += nearest 2x upsampling of x (h/2, w/2, c): FPN top-down fusion.
@compute @workgroup_size(256, 1, 1)
fn up_nearest_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    let ch = i % p.c;
    let t = i / p.c;
    let xx = t % p.w;
    let yy = t / p.w;
    y[i] += x[((yy / 2u) * (p.w / 2u) + xx / 2u) * p.c + ch];
}

// Bilinear resize (align_corners = false, PyTorch/candle weights precomputed in f64 on
// the CPU: per output row (y0, y1, wy), then from col_tab per column (x0, x1, wx)) of one
// `ih x iw` plane at in_off into output rows row0.. of width w (n = rows * w values),
// written from out_off.
@compute @workgroup_size(256, 1, 1)
fn bilinear(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    let xx = i % p.w;
    let yy = p.row0 + i / p.w;
    let y0 = u32(tab[yy * 3u]);
    let y1 = u32(tab[yy * 3u + 1u]);
    let wy = tab[yy * 3u + 2u];
    let x0 = u32(tab[p.col_tab + xx * 3u]);
    let x1 = u32(tab[p.col_tab + xx * 3u + 1u]);
    let wx = tab[p.col_tab + xx * 3u + 2u];
    let v00 = x[p.in_off + y0 * p.iw + x0];
    let v10 = x[p.in_off + y0 * p.iw + x1];
    let v01 = x[p.in_off + y1 * p.iw + x0];
    let v11 = x[p.in_off + y1 * p.iw + x1];
    let top = v00 * (1.0 - wx) + v10 * wx;
    let bottom = v01 * (1.0 - wx) + v11 * wx;
    y[p.out_off + i] = top * (1.0 - wy) + bottom * wy;
}
