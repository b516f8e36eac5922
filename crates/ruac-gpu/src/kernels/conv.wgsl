// Convolutions on channels-last (NHWC, batch 1) activations with PyTorch weight layouts.
struct P {
    ih: u32, iw: u32, cin: u32, oh: u32,
    ow: u32, cout: u32, kh: u32, kw: u32,
    stride: u32, pad: u32, act: u32, has_skip: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> skip: array<f32>;

// nn.Conv2d (weight `cout, cin, kh, kw`, zero padding): patch embedding 7x7/4 and the mask
// prompt's 2x2/2 convolutions. One thread per output value.
@compute @workgroup_size(256, 1, 1)
fn conv2d(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.oh * p.ow * p.cout) { return; }
    let co = i % p.cout;
    let px = i / p.cout;
    let ox = px % p.ow;
    let oy = px / p.ow;
    var acc = bias[co];
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = i32(oy * p.stride + ky) - i32(p.pad);
        if (iy < 0 || iy >= i32(p.ih)) { continue; }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = i32(ox * p.stride + kx) - i32(p.pad);
            if (ix < 0 || ix >= i32(p.iw)) { continue; }
            let xb = (u32(iy) * p.iw + u32(ix)) * p.cin;
            for (var ci = 0u; ci < p.cin; ci++) {
                acc += x[xb + ci] * w[((co * p.cin + ci) * p.kh + ky) * p.kw + kx];
            }
        }
    }
    y[i] = activate(acc, p.act);
}

// nn.ConvTranspose2d(kernel 2, stride 2) (weight `cin, cout, 2, 2`): every output pixel
// has exactly one input pixel. Adds `skip` (the high-res features) before the activation.
@compute @workgroup_size(256, 1, 1)
fn conv_t2x2(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.oh * p.ow * p.cout) { return; }
    let co = i % p.cout;
    let px = i / p.cout;
    let ox = px % p.ow;
    let oy = px / p.ow;
    let xb = ((oy / 2u) * p.iw + ox / 2u) * p.cin;
    let tap = (oy % 2u) * 2u + ox % 2u;
    var acc = 0.0;
    for (var ci = 0u; ci < p.cin; ci++) {
        acc += x[xb + ci] * w[(ci * p.cout + co) * 4u + tap];
    }
    acc += bias[co];
    if (p.has_skip == 1u) { acc += skip[i]; }
    y[i] = activate(acc, p.act);
}

// Depthwise nn.Conv2d (groups = channels, weight `c, 1, kh, kw`, cin = cout = c): TinyViT's
// MBConv, patch merging and local convolutions. One thread per output value.
@compute @workgroup_size(256, 1, 1)
fn dwconv(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.oh * p.ow * p.cout) { return; }
    let co = i % p.cout;
    let px = i / p.cout;
    let ox = px % p.ow;
    let oy = px / p.ow;
    var acc = bias[co];
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = i32(oy * p.stride + ky) - i32(p.pad);
        if (iy < 0 || iy >= i32(p.ih)) { continue; }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = i32(ox * p.stride + kx) - i32(p.pad);
            if (ix < 0 || ix >= i32(p.iw)) { continue; }
            acc += x[(u32(iy) * p.iw + u32(ix)) * p.cin + co] * w[(co * p.kh + ky) * p.kw + kx];
        }
    }
    y[i] = activate(acc, p.act);
}

// Patches of a convolution as rows (`oh*ow, kh*kw*cin`, column `(ky*kw + kx)*cin + ci`,
// zeros in the padding), so that the convolution is one matmul with the weights.
@compute @workgroup_size(256, 1, 1)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let kk = p.kh * p.kw * p.cin;
    if (i >= p.oh * p.ow * kk) { return; }
    let col = i % kk;
    let px = i / kk;
    let ci = col % p.cin;
    let tap = col / p.cin;
    let kx = tap % p.kw;
    let ky = tap / p.kw;
    let ox = px % p.ow;
    let oy = px / p.ow;
    let iy = i32(oy * p.stride + ky) - i32(p.pad);
    let ix = i32(ox * p.stride + kx) - i32(p.pad);
    var v = 0.0;
    if (iy >= 0 && iy < i32(p.ih) && ix >= 0 && ix < i32(p.iw)) { v = x[(u32(iy) * p.iw + u32(ix)) * p.cin + ci]; }
    y[i] = v;
}
