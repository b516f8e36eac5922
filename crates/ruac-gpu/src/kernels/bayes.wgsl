// RUAC's Bayesian pixel head (ruac_core::model::bayes_head; BNDL, Hu et al. ICLR 2025;
// ruac/core/bndl/uncertainty.py): Weibull parameters of the pixel factor z and the token
// weights w, their means and variances, Monte Carlo draws with the CPU's PCG32 stream
// (jump-ahead), analytic uncertainty. Plain SAM 2.1's entropy map is here too.
struct P {
    hw: u32, c: u32, k: u32, s: u32,
    hwc: u32, kc2: u32, st_lo: u32, st_hi: u32,
    inc_lo: u32, inc_hi: u32, fw: f32, div: f32,
    n: u32, _p0: u32, _p1: u32, _p2: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
// The small tensors: wk[c], bk, kw0, kw1, bkw, b_bg, b_fg
@group(0) @binding(2) var<storage, read> small: array<f32>;
@group(0) @binding(3) var<storage, read_write> lamf: array<f32>;
@group(0) @binding(4) var<storage, read_write> invkf: array<f32>;
@group(0) @binding(5) var<storage, read_write> zmean: array<f32>;
@group(0) @binding(6) var<storage, read_write> varz: array<f32>;
// linear_add_w(mask tokens), k x 2c, before the ReLU
@group(0) @binding(7) var<storage, read> token_params: array<f32>;
@group(0) @binding(8) var<storage, read_write> lamw: array<f32>;
@group(0) @binding(9) var<storage, read_write> invkw: array<f32>;
@group(0) @binding(10) var<storage, read_write> wdiff: array<f32>;
@group(0) @binding(11) var<storage, read_write> varw: array<f32>;
@group(0) @binding(12) var<storage, read_write> bias_out: array<f32>;
@group(0) @binding(13) var<storage, read> jump: array<u32>;
@group(0) @binding(14) var<storage, read_write> wd: array<f32>;
@group(0) @binding(15) var<storage, read_write> out: array<f32>;
@group(0) @binding(16) var<storage, read> mu: array<f32>;
@group(0) @binding(17) var<storage, read> vv: array<f32>;

// ln Gamma(x), x > 0: shift by 6 and Stirling's series, as ruac_core::model::ops::lgamma.
fn lgamma(x: f32) -> f32 {
    var prod = x;
    for (var k = 1u; k < 6u; k++) { prod *= x + f32(k); }
    let z = x + 6.0;
    let zr = 1.0 / z;
    let zr2 = zr * zr;
    let series = zr * ((zr2 * ((zr2 * ((zr2 * (-1.0 / 1680.0)) + 1.0 / 1260.0)) - 1.0 / 360.0)) + 1.0 / 12.0);
    let stirling = ((z - 0.5) * log(z) - z) + 0.9189385332046727;
    return (stirling + series) - log(prod);
}

fn softplus(x: f32) -> f32 {
    return max(x, 0.0) + log(exp(-abs(x)) + 1.0);
}

// Weibull variance factor Var / lambda^2 in the reference's log-space form.
fn var_factor(inv_k: f32, l1: f32) -> f32 {
    let l2 = lgamma(inv_k * 2.0 + 1.0);
    let d = min(l1 * 2.0 - l2, -1e-7);
    return exp(l2 + log(1.0 - exp(d)));
}

// Local factor, one thread per pixel: a = relu(linear_add x) is the input (a matmul);
// kappa_f = softplus(linear_k a), lambda_f = a / Gamma(1 + 1/kappa_f), mean, variance.
@compute @workgroup_size(256, 1, 1)
fn local_z(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let px = flat_index(gid, nwg);
    if (px >= p.hw) { return; }
    var s = 0.0;
    for (var c = 0u; c < p.c; c++) { s += a[px * p.c + c] * small[c]; }
    s += small[p.c];
    let inv = 1.0 / softplus(s);
    let l1 = lgamma(inv + 1.0);
    let g = exp(l1);
    let vf = var_factor(inv, l1);
    invkf[px] = inv;
    for (var c = 0u; c < p.c; c++) {
        let lam = a[px * p.c + c] / g;
        lamf[px * p.c + c] = lam;
        zmean[px * p.c + c] = lam * g;
        varz[px * p.c + c] = lam * lam * vf;
    }
}

// Global factor, one thread per (token, channel): r = relu(linear_add_w(token) - fw) as
// (bg, fg), kappa_w = softplus(linear_kw over the class axis), lambda_w, the fg - bg mean
// difference, the class-mean variance (clamped at 1e-8), and the decision bias per token.
@compute @workgroup_size(256, 1, 1)
fn global_w(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.k * p.c) { return; }
    let kk = i / p.c;
    let c = i % p.c;
    let r0 = max(token_params[kk * 2u * p.c + c] - p.fw, 0.0);
    let r1 = max(token_params[kk * 2u * p.c + p.c + c] - p.fw, 0.0);
    let inv = 1.0 / softplus(small[p.c + 1u] * r0 + small[p.c + 2u] * r1 + small[p.c + 3u]);
    let l1 = lgamma(inv + 1.0);
    let g = exp(l1);
    let vf = var_factor(inv, l1);
    let lam0 = r0 / g;
    let lam1 = r1 / g;
    lamw[(kk * 2u) * p.c + c] = lam0;
    lamw[(kk * 2u + 1u) * p.c + c] = lam1;
    invkw[i] = inv;
    wdiff[i] = lam1 * g - lam0 * g;
    varw[i] = max((lam0 * lam0 * vf + lam1 * lam1 * vf) / 2.0, 1e-8);
    if (c == 0u) {
        bias_out[kk] = max(small[p.c + 5u] - p.fw, 0.0) - max(small[p.c + 4u] - p.fw, 0.0);
    }
}

// --- PCG-XSH-RR 64/32 (ruac_core::rng::Pcg32) with 64-bit state as (lo, hi) u32 pairs.
fn mul_wide(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
    return vec2<u32>((p00 & 0xffffu) | (mid << 16u), p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u));
}
fn mul64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = mul_wide(a.x, b.x);
    return vec2<u32>(lo.x, lo.y + a.x * b.y + a.y * b.x);
}
fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}
fn pcg_step(s: vec2<u32>) -> vec2<u32> {
    return add64(mul64(s, vec2<u32>(0x4C957F2Du, 0x5851F42Du)), vec2<u32>(p.inc_lo, p.inc_hi));
}
fn pcg_out(old: vec2<u32>) -> u32 {
    let x = vec2<u32>(old.x ^ ((old.x >> 18u) | (old.y << 14u)), old.y ^ (old.y >> 18u));
    let xs = (x.x >> 27u) | (x.y << 5u);
    let rot = old.y >> 27u;
    return (xs >> rot) | (xs << ((32u - rot) & 31u));
}
// State before the n-th draw: apply step^(2^i) = (A_i, C_i) from the jump table per set bit.
fn pcg_at(n: u32) -> vec2<u32> {
    var s = vec2<u32>(p.st_lo, p.st_hi);
    for (var i = 0u; i < 32u; i++) {
        if (((n >> i) & 1u) == 1u) {
            s = add64(mul64(s, vec2<u32>(jump[i * 4u], jump[i * 4u + 1u])), vec2<u32>(jump[i * 4u + 2u], jump[i * 4u + 3u]));
        }
    }
    return s;
}
fn uniform01(s: vec2<u32>) -> f32 {
    return f32(pcg_out(s) >> 8u) * (1.0 / 16777216.0);
}
// Reparameterised Weibull draw lambda (-ln(1 - u))^(1/kappa).
fn weibull(lam: f32, inv_k: f32, u: f32) -> f32 {
    let e = -log(clamp(1.0 - u, 1e-10, 1.0));
    return lam * exp(log(e) * inv_k);
}

// Token weights of every sample, one thread per (sample, token, channel): the draws of
// sample s sit after its hw*c pixel draws; wd = w_fg - w_bg.
@compute @workgroup_size(256, 1, 1)
fn mc_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.s * p.k * p.c) { return; }
    let c = i % p.c;
    let kk = (i / p.c) % p.k;
    let smp = i / (p.c * p.k);
    let base = smp * (p.hwc + p.kc2) + p.hwc;
    let inv = invkw[kk * p.c + c];
    let u0 = uniform01(pcg_at(base + (kk * 2u) * p.c + c));
    let u1 = uniform01(pcg_at(base + (kk * 2u + 1u) * p.c + c));
    let w0 = weibull(lamw[(kk * 2u) * p.c + c], inv, u0);
    let w1 = weibull(lamw[(kk * 2u + 1u) * p.c + c], inv, u1);
    wd[i] = w1 - w0;
}

// Monte Carlo uncertainty, one thread per pixel: for each sample draw z (c consecutive
// draws of the stream), logits with the sample's token weights, mean sigmoid over samples,
// binary entropy in nats. Output `k, hw`.
@compute @workgroup_size(256, 1, 1)
fn mc_pixel(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let px = flat_index(gid, nwg);
    if (px >= p.hw) { return; }
    var prob: array<f32, 8>;
    for (var kk = 0u; kk < 8u; kk++) { prob[kk] = 0.0; }
    let inv = invkf[px];
    for (var smp = 0u; smp < p.s; smp++) {
        var st = pcg_at(smp * (p.hwc + p.kc2) + px * p.c);
        var acc: array<f32, 8>;
        for (var kk = 0u; kk < 8u; kk++) { acc[kk] = 0.0; }
        for (var c = 0u; c < p.c; c++) {
            let z = weibull(lamf[px * p.c + c], inv, uniform01(st));
            st = pcg_step(st);
            for (var kk = 0u; kk < p.k; kk++) { acc[kk] += z * wd[(smp * p.k + kk) * p.c + c]; }
        }
        for (var kk = 0u; kk < p.k; kk++) { prob[kk] += sigmoid(acc[kk] + bias_out[kk]); }
    }
    for (var kk = 0u; kk < p.k; kk++) {
        out[kk * p.hw + px] = binary_entropy(prob[kk] / f32(p.s));
    }
}

// Analytic uncertainty (pixel_weibull_to_entropy_uncertainty): MacKay's probit correction
// sigmoid(mu / sqrt(1 + pi v / 8)), binary entropy / ln 2. n = k * hw values.
@compute @workgroup_size(256, 1, 1)
fn analytic(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    let kappa = 1.0 / sqrt(vv[i] * 0.39269908169872414 + 1.0);
    out[i] = binary_entropy(sigmoid(kappa * mu[i])) / 0.6931471805599453;
}

// Plain SAM 2.1: entropy of its own sigmoid probability, divided by `div` (1 or ln 2).
@compute @workgroup_size(256, 1, 1)
fn entropy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    out[i] = binary_entropy(sigmoid(mu[i])) / p.div;
}
