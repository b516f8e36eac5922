//! Single kernels against candle (or ruac-core) on the CPU: shapes that are not multiples
//! of the tiles and span several workgroups.
mod common;
use common::*;

use candle_core::{Device, Module, Tensor, D};
use ruac_gpu::kernels::attention::{attention, attention_biased, rel_pos, AttnShape, Heads, Qkvo, ScoreBias};
use ruac_gpu::kernels::conv::{conv2d, conv_t2x2, Conv2d};
use ruac_gpu::kernels::layernorm::{layernorm, LayerNorm};
use ruac_gpu::kernels::layout::{bilinear, bilinear_taps, Bilinear};
use ruac_gpu::kernels::matmul::{matmul, Act, Bias, Matmul, View};
use ruac_gpu::kernels::{bayes, colormap, preprocess};

const TOL: f32 = 1e-4;

fn read(g: &ruac_gpu::gpu::Gpu, b: &wgpu::Buffer, n: usize) -> Vec<f32> {
    pollster::block_on(g.read(b, 0, n)).expect("read back")
}

#[test]
fn matmul_odd_shapes_batched_transposed_with_bias_and_activation() {
    let mut g = gpu();
    for cpu_variant in [false, true] {
        g.set_cpu_kernels(Some(cpu_variant));
        matmul_case(&g);
    }
}

fn matmul_case(g: &ruac_gpu::gpu::Gpu) {
    let dev = Device::Cpu;
    // 2 batches of (70 x 37) @ (37 x 131): 2x3 tiles of 64, k not a multiple of 16.
    let (bt, m, k, n) = (2, 70, 37, 131);
    let a = values(bt * m * k, 1);
    let bv = values(bt * n * k, 2); // stored as (bt, n, k): B is its transpose
    let bias = values(n, 3);
    let at = Tensor::from_vec(a.clone(), (bt, m, k), &dev).unwrap();
    let btt = Tensor::from_vec(bv.clone(), (bt, n, k), &dev).unwrap();
    let bb = Tensor::from_vec(bias.clone(), n, &dev).unwrap();
    let want = at.matmul(&btt.transpose(1, 2).unwrap().contiguous().unwrap()).unwrap().broadcast_add(&bb).unwrap().gelu_erf().unwrap();
    let (ab, bbuf, biasb) = (g.upload("a", &a), g.upload("b", &bv), g.upload("bias", &bias));
    let c = g.alloc(bt * m * n).unwrap();
    let mut mm = Matmul::new(m, n, k, View::rows(&ab, 0, k).batch_stride(m * k), View::transposed(&bbuf, 0, k).batch_stride(n * k), View::rows(&c, 0, n).batch_stride(m * n));
    mm.batch = bt;
    mm.bias = Bias::Cols(&biasb, 0);
    mm.act = Act::Gelu;
    matmul(g, &mm).unwrap();
    assert_close("matmul", &read(g, &c, bt * m * n), &to_vec(&want), TOL);

    // Accumulate into the output, with a row bias and alpha.
    let c0 = values(m * n, 4);
    let cb = g.upload("c", &c0);
    let rb = values(m, 5);
    let rbb = g.upload("rb", &rb);
    let mut mm = Matmul::new(m, n, k, View::rows(&ab, 0, k), View::transposed(&bbuf, 0, k), View::rows(&cb, 0, n));
    mm.bias = Bias::Rows(&rbb, 0);
    mm.alpha = 0.5;
    mm.accumulate = true;
    matmul(g, &mm).unwrap();
    let a0 = at.get(0).unwrap();
    let b0 = btt.get(0).unwrap().t().unwrap().contiguous().unwrap();
    let want = ((a0.matmul(&b0).unwrap() * 0.5).unwrap().broadcast_add(&Tensor::from_vec(rb, (m, 1), &dev).unwrap()).unwrap() + Tensor::from_vec(c0, (m, n), &dev).unwrap()).unwrap();
    assert_close("matmul accumulate", &read(g, &cb, m * n), &to_vec(&want), TOL);
}

#[test]
fn attention_softmax_matches_candle() {
    let mut g = gpu();
    for cpu_variant in [false, true] {
        g.set_cpu_kernels(Some(cpu_variant));
        attention_case(&g);
    }
}

fn attention_case(g: &ruac_gpu::gpu::Gpu) {
    let dev = Device::Cpu;
    // 2 batches, 3 heads, 37 queries over 53 keys (several key tiles, one partial), hd 24.
    let (b, h, nq, nk, hd) = (2, 3, 101, 53, 24);
    let q = values(b * nq * h * hd, 7);
    let k = values(b * nk * h * hd, 8);
    let v = values(b * nk * h * hd, 9);
    // Stored token-major (b, n, h, hd), as the model's projections produce them.
    let qt = Tensor::from_vec(q.clone(), (b, nq, h, hd), &dev).unwrap().transpose(1, 2).unwrap();
    let kt = Tensor::from_vec(k.clone(), (b, nk, h, hd), &dev).unwrap().transpose(1, 2).unwrap();
    let vt = Tensor::from_vec(v.clone(), (b, nk, h, hd), &dev).unwrap().transpose(1, 2).unwrap();
    let scores = (qt.contiguous().unwrap().matmul(&kt.t().unwrap().contiguous().unwrap()).unwrap() / (hd as f64).sqrt()).unwrap();
    let want = candle_nn::ops::softmax(&scores, D::Minus1).unwrap().matmul(&vt.contiguous().unwrap()).unwrap().transpose(1, 2).unwrap().contiguous().unwrap();
    let (qb, kb, vb) = (g.upload("q", &q), g.upload("k", &k), g.upload("v", &v));
    let o = g.alloc(b * nq * h * hd).unwrap();
    let view = |buf, n: usize| Heads { buf, off: 0, bs: n * h * hd, hs: hd, ns: h * hd };
    let t = Qkvo { q: view(&qb, nq), k: view(&kb, nk), v: view(&vb, nk), o: view(&o, nq) };
    attention(g, AttnShape { batch: b, heads: h, nq, nk, hd }, t).unwrap();
    assert_close("attention", &read(g, &o, b * nq * h * hd), &to_vec(&want), TOL);
}

/// Long key loops (the decoder's token-to-image attention over a 64x64 embedding, global
/// attention): lavapipe ends a loop after 65535 iterations, so the CPU variant (the one CPU
/// adapters run) takes the keys in chunks and carries the softmax state. The workgroup
/// variant is checked only where it runs, on a hardware adapter.
#[test]
fn attention_over_thousands_of_keys_matches_candle() {
    let mut g = gpu();
    let dev = Device::Cpu;
    let variants: &[bool] = if g.is_cpu() { &[true] } else { &[true, false] };
    for &cpu_variant in variants {
        g.set_cpu_kernels(Some(cpu_variant));
        for (b, h, nq, nk, hd) in [(1usize, 8usize, 7usize, 4096usize, 16usize), (2, 3, 70, 3000, 64), (1, 2, 5, 1000, 128)] {
            let q = values(b * nq * h * hd, 7);
            let k = values(b * nk * h * hd, 8);
            let v = values(b * nk * h * hd, 9);
            let qt = Tensor::from_vec(q.clone(), (b, nq, h, hd), &dev).unwrap().transpose(1, 2).unwrap();
            let kt = Tensor::from_vec(k.clone(), (b, nk, h, hd), &dev).unwrap().transpose(1, 2).unwrap();
            let vt = Tensor::from_vec(v.clone(), (b, nk, h, hd), &dev).unwrap().transpose(1, 2).unwrap();
            let scores = (qt.contiguous().unwrap().matmul(&kt.t().unwrap().contiguous().unwrap()).unwrap() / (hd as f64).sqrt()).unwrap();
            let want = candle_nn::ops::softmax(&scores, D::Minus1).unwrap().matmul(&vt.contiguous().unwrap()).unwrap().transpose(1, 2).unwrap().contiguous().unwrap();
            let (qb, kb, vb) = (g.upload("q", &q), g.upload("k", &k), g.upload("v", &v));
            let o = g.alloc(b * nq * h * hd).unwrap();
            let view = |buf, n: usize| Heads { buf, off: 0, bs: n * h * hd, hs: hd, ns: h * hd };
            let t = Qkvo { q: view(&qb, nq), k: view(&kb, nk), v: view(&vb, nk), o: view(&o, nq) };
            attention(&g, AttnShape { batch: b, heads: h, nq, nk, hd }, t).unwrap();
            assert_close(&format!("attention {nq}x{nk}, hd {hd}, cpu variant {cpu_variant}"), &read(&g, &o, b * nq * h * hd), &to_vec(&want), TOL);
        }
    }
}

/// The score biases: TinyViT's dense per-head table and SAM ViT's decomposed relative
/// positions (`rel_pos` + bias), against the scores built on the CPU.
#[test]
fn attention_with_score_biases_matches_candle() {
    let mut g = gpu();
    let dev = Device::Cpu;
    for cpu_variant in [false, true] {
        g.set_cpu_kernels(Some(cpu_variant));
        // 2 windows of 5x5 tokens, 3 heads, hd 8: q, k, v interleaved as one qkv row.
        let (b, h, side, hd) = (2usize, 3usize, 5usize, 8usize);
        let (n, dim) = (side * side, h * hd);
        let qkv = values(b * n * 3 * dim, 11);
        let rel_h = values((2 * side - 1) * hd, 12);
        let rel_w = values((2 * side - 1) * hd, 13);
        let dense = values(h * n * n, 14);
        let t = Tensor::from_vec(qkv.clone(), (b, n, 3, h, hd), &dev).unwrap().permute((2, 0, 3, 1, 4)).unwrap().contiguous().unwrap();
        let (q, k, v) = (t.get(0).unwrap(), t.get(1).unwrap(), t.get(2).unwrap());
        let scores = (q.matmul(&k.t().unwrap().contiguous().unwrap()).unwrap() / (hd as f64).sqrt()).unwrap();
        // Decomposed: + q[y, x] . Rh[y - ky + side - 1] + q[y, x] . Rw[x - kx + side - 1].
        let qv = to_vec(&q);
        let mut rel = vec![0f32; b * h * n * n];
        for bh in 0..b * h {
            for qi in 0..n {
                for kj in 0..n {
                    let (y, x, ky, kx) = (qi / side, qi % side, kj / side, kj % side);
                    let (mut sh, mut sw) = (0f32, 0f32);
                    for d in 0..hd {
                        let qd = qv[(bh * n + qi) * hd + d];
                        sh += qd * rel_h[(y + side - 1 - ky) * hd + d];
                        sw += qd * rel_w[(x + side - 1 - kx) * hd + d];
                    }
                    rel[(bh * n + qi) * n + kj] = sh + sw;
                }
            }
        }
        let rel_t = Tensor::from_vec(rel, (b, h, n, n), &dev).unwrap();
        let dense_t = Tensor::from_vec(dense.clone(), (1, h, n, n), &dev).unwrap();
        let attend = |s: Tensor| candle_nn::ops::softmax(&s, D::Minus1).unwrap().matmul(&v).unwrap().transpose(1, 2).unwrap().contiguous().unwrap();
        let want_rel = attend((&scores + rel_t).unwrap());
        let want_dense = attend(scores.broadcast_add(&dense_t).unwrap());
        let (qkvb, rhb, rwb, db) = (g.upload("qkv", &qkv), g.upload("rh", &rel_h), g.upload("rw", &rel_w), g.upload("bias", &dense));
        let part = |i: usize| Heads { buf: &qkvb, off: i * dim, bs: n * 3 * dim, hs: hd, ns: 3 * dim };
        let shape = AttnShape { batch: b, heads: h, nq: n, nk: n, hd };
        let rb = rel_pos(&g, shape, side, part(0), (&rhb, &rwb)).unwrap();
        let o = g.alloc(b * n * dim).unwrap();
        let ov = Heads { buf: &o, off: 0, bs: n * dim, hs: hd, ns: dim };
        let t = Qkvo { q: part(0), k: part(1), v: part(2), o: ov };
        attention_biased(&g, shape, t, Some(ScoreBias::RelPos { buf: &rb, g: side })).unwrap();
        assert_close(&format!("relative-position attention, cpu variant {cpu_variant}"), &read(&g, &o, b * n * dim), &to_vec(&want_rel), TOL);
        attention_biased(&g, shape, t, Some(ScoreBias::Dense(&db))).unwrap();
        assert_close(&format!("dense-bias attention, cpu variant {cpu_variant}"), &read(&g, &o, b * n * dim), &to_vec(&want_dense), TOL);
    }
}

#[test]
fn layernorm_matches_candle() {
    let mut g = gpu();
    for cpu_variant in [false, true] {
        g.set_cpu_kernels(Some(cpu_variant));
        layernorm_case(&g);
    }
}

fn layernorm_case(g: &ruac_gpu::gpu::Gpu) {
    let dev = Device::Cpu;
    let (rows, c) = (67, 300);
    let x: Vec<f32> = values(rows * c, 11).iter().map(|v| v * 3.0 + 0.7).collect();
    let w = values(c, 12);
    let b = values(c, 13);
    let ln = candle_nn::LayerNorm::new(Tensor::from_vec(w.clone(), c, &dev).unwrap(), Tensor::from_vec(b.clone(), c, &dev).unwrap(), 1e-6);
    let want = ln.forward(&Tensor::from_vec(x.clone(), (rows, c), &dev).unwrap()).unwrap().gelu_erf().unwrap();
    let (wb, bb) = (g.upload("w", &w), g.upload("b", &b));
    let y = layernorm(g, &g.upload("x", &x), rows, c, LayerNorm { w: &wb, b: &bb, eps: 1e-6 }, Act::Gelu).unwrap();
    assert_close("layernorm+gelu", &read(g, &y, rows * c), &to_vec(&want), TOL);
}

#[test]
fn convolutions_match_candle() {
    let g = gpu();
    let dev = Device::Cpu;
    // Patch embedding geometry (7x7, stride 4, padding 3) on an odd-sized input.
    let (cin, cout, ih, iw) = (3, 20, 37, 45);
    let x = values(cin * ih * iw, 21);
    let w = values(cout * cin * 49, 22);
    let b = values(cout, 23);
    let xt = Tensor::from_vec(x.clone(), (1, cin, ih, iw), &dev).unwrap();
    let conv = candle_nn::Conv2d::new(
        Tensor::from_vec(w.clone(), (cout, cin, 7, 7), &dev).unwrap(),
        Some(Tensor::from_vec(b.clone(), cout, &dev).unwrap()),
        candle_nn::Conv2dConfig { padding: 3, stride: 4, ..Default::default() },
    );
    let want = conv.forward(&xt).unwrap().permute((0, 2, 3, 1)).unwrap().contiguous().unwrap();
    let x_nhwc = to_vec(&xt.permute((0, 2, 3, 1)).unwrap().contiguous().unwrap());
    let (wb, bb) = (g.upload("w", &w), g.upload("b", &b));
    let c = Conv2d { w: &wb, b: &bb, cin, cout, k: 7, stride: 4, pad: 3 };
    let (y, oh, ow) = conv2d(&g, &g.upload("x", &x_nhwc), ih, iw, &c, Act::None).unwrap();
    assert_eq!((oh, ow), (want.dim(1).unwrap(), want.dim(2).unwrap()));
    assert_close("conv2d 7x7/4", &read(&g, &y, oh * ow * cout), &to_vec(&want), TOL);

    // Transposed 2x2 stride-2 convolution plus a skip, then GELU (the mask decoder's upscaling).
    let (cin, cout, h, w) = (24, 6, 9, 11);
    let x = values(cin * h * w, 31);
    let wt = values(cin * cout * 4, 32);
    let b = values(cout, 33);
    let skip = values(4 * h * w * cout, 34);
    let xt = Tensor::from_vec(x.clone(), (1, cin, h, w), &dev).unwrap();
    let ct = candle_nn::ConvTranspose2d::new(
        Tensor::from_vec(wt.clone(), (cin, cout, 2, 2), &dev).unwrap(),
        Some(Tensor::from_vec(b.clone(), cout, &dev).unwrap()),
        candle_nn::ConvTranspose2dConfig { stride: 2, ..Default::default() },
    );
    let want = (ct.forward(&xt).unwrap().permute((0, 2, 3, 1)).unwrap() + Tensor::from_vec(skip.clone(), (1, 2 * h, 2 * w, cout), &dev).unwrap()).unwrap().gelu_erf().unwrap();
    let x_nhwc = to_vec(&xt.permute((0, 2, 3, 1)).unwrap().contiguous().unwrap());
    let sb = g.upload("skip", &skip);
    let (wb, bb) = (g.upload("w", &wt), g.upload("b", &b));
    let c = Conv2d { w: &wb, b: &bb, cin, cout, k: 2, stride: 2, pad: 0 };
    let y = conv_t2x2(&g, &g.upload("x", &x_nhwc), (h, w), &c, Some(&sb), Act::Gelu).unwrap();
    assert_close("conv_transpose 2x2/2", &read(&g, &y, 4 * h * w * cout), &to_vec(&want), TOL);
}

#[test]
fn bilinear_upsampling_matches_candle() {
    let g = gpu();
    let dev = Device::Cpu;
    let (ih, iw, oh, ow) = (32, 32, 75, 121);
    let x = values(2 * ih * iw, 41);
    let xt = Tensor::from_vec(x.clone(), (1, 2, ih, iw), &dev).unwrap();
    let want = xt.upsample_bilinear2d(oh, ow, false).unwrap().get(0).unwrap().get(1).unwrap();
    let mut tab = bilinear_taps(ih, oh);
    tab.extend(bilinear_taps(iw, ow));
    let (xb, tb) = (g.upload("x", &x), g.upload("tab", &tab));
    // Second plane, in two row tiles.
    let r = Bilinear { x: &xb, in_off: ih * iw, ih, iw, taps: &tb, oh, ow };
    let top = bilinear(&g, &r, 0..40).unwrap();
    let bottom = bilinear(&g, &r, 40..oh).unwrap();
    let mut got = read(&g, &top, 40 * ow);
    got.extend(read(&g, &bottom, (oh - 40) * ow));
    assert_close("bilinear", &got, &to_vec(&want), 1e-5);
}

#[test]
fn preprocessing_matches_ruac_core() {
    let g = gpu();
    for (w, h, s) in [(97, 61, 64), (30, 50, 128)] {
        let data: Vec<u8> = (0..w * h * 3).map(|i| ((i * 7919) % 251) as u8).collect();
        let img = ruac_core::image_io::RgbImage::new(w, h, data).unwrap();
        let want = ruac_core::image_io::preprocess(&img, s); // planar 3 x s x s
        let y = preprocess::preprocess(&g, &img, s).unwrap(); // s x s x 3
        let got = read(&g, &y, s * s * 3);
        let planar: Vec<f32> = (0..3).flat_map(|c| (0..s * s).map(move |p| (c, p))).map(|(c, p)| got[p * 3 + c]).collect();
        assert_close(&format!("preprocess {w}x{h} -> {s}"), &planar, &want, 1e-5);
    }
}

#[test]
fn pcg_jump_ahead_reproduces_the_cpu_stream() {
    // The GPU addresses the CPU's Pcg32 stream by position; check the host-side pieces
    // (initial state, jump table) against ruac_core::rng::Pcg32 itself.
    let seed = 12345u64;
    let mut rng = ruac_core::rng::Pcg32::new(seed);
    let want: Vec<u32> = (0..1000).map(|_| rng.next_u32()).collect();
    let out = |old: u64| -> u32 { ((((old >> 18) ^ old) >> 27) as u32).rotate_right((old >> 59) as u32) };
    let table = bayes::pcg_jump_table();
    let at = |n: u32| -> u64 {
        let mut s = bayes::pcg_initial_state(seed);
        for i in 0..32 {
            if (n >> i) & 1 == 1 {
                let a = table[i * 4] as u64 | (table[i * 4 + 1] as u64) << 32;
                let c = table[i * 4 + 2] as u64 | (table[i * 4 + 3] as u64) << 32;
                s = s.wrapping_mul(a).wrapping_add(c);
            }
        }
        s
    };
    for n in [0u32, 1, 2, 3, 17, 255, 256, 999] {
        assert_eq!(out(at(n)), want[n as usize], "draw {n}");
    }
}

#[test]
fn colormap_matches_viz() {
    let g = gpu();
    let vals: Vec<f32> = (0..1000).map(|i| i as f32 / 999.0 * 0.8 - 0.05).chain([f32::NAN, f32::INFINITY, 2.0]).collect();
    let vmax = std::f32::consts::LN_2;
    let want = ruac_core::viz::colorize(&vals, vmax);
    let lut = g.upload("lut", &colormap::lut());
    let y = colormap::colormap(&g, &g.upload("v", &vals), vals.len(), vmax, &lut).unwrap();
    let got = pollster::block_on(g.read_bytes(&y, 0, vals.len() * 4)).unwrap();
    let rgb: Vec<u8> = got.chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    assert_eq!(rgb, want);
    assert!(got.chunks(4).all(|p| p[3] == 255));
}
