// Helpers shared by the kernels (prepended to each file by kernels/mod.rs).

// erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): WGSL has no erf.
fn erf_as(x: f32) -> f32 {
    let ax = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * ax);
    let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-ax * ax);
    return select(-y, y, x >= 0.0);
}

// Exact (erf) GELU, PyTorch's nn.GELU() default.
fn gelu(x: f32) -> f32 {
    return 0.5 * x * (1.0 + erf_as(x * 0.7071067811865476));
}

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

// 0: identity, 1: relu, 2: gelu, 3: sigmoid.
fn activate(x: f32, act: u32) -> f32 {
    switch act {
        case 1u: { return max(x, 0.0); }
        case 2u: { return gelu(x); }
        case 3u: { return sigmoid(x); }
        default: { return x; }
    }
}

// Flat thread index of a 1-D dispatch folded into x and y (gpu.rs groups_1d, 256 threads).
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// Binary (Bernoulli) entropy in nats with p clamped to [1e-4, 1 - 1e-4]
// (ruac/core/bndl/uncertainty.py, ruac_core::model::ops::binary_entropy).
fn binary_entropy(p_in: f32) -> f32 {
    let p = clamp(p_in, 1e-4, 1.0 - 1e-4);
    let q = 1.0 - p;
    return -(p * log(p) + q * log(q));
}
