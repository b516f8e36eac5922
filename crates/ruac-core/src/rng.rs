//! A small seeded generator (PCG-XSH-RR 64/32), so Monte Carlo uncertainty is reproducible
//! for a given seed on every platform, the browser included, without OS entropy.
//!
//! Parallel consumers (the CPU's fused Monte Carlo kernel, the GPU's threads) take the same
//! stream: each jumps to its position in O(log n) ([`Pcg32::advance`], [`jump_table`]).
#[derive(Debug, Clone)]
pub struct Pcg32 {
    state: u64,
    inc: u64,
}

/// The LCG multiplier of PCG32.
pub const MULT: u64 = 6_364_136_223_846_793_005;
/// The increment every `Pcg32` uses (one stream).
pub const INC: u64 = (0xda3e_39cb_94b9_5bdb_u64 << 1) | 1;

/// The state `Pcg32::new(seed)` starts from (its first output comes from this state).
pub fn initial_state(seed: u64) -> u64 {
    let step = |s: u64| s.wrapping_mul(MULT).wrapping_add(INC);
    step(step(0).wrapping_add(seed))
}

/// `(A_i, C_i)` with `step^(2^i)(s) = A_i s + C_i`, packed as `[A lo, A hi, C lo, C hi]` for
/// i in 0..32: the O(log n) jump-ahead of Brown, "Random number generation with arbitrary
/// strides" (1994), as in pcg's `advance`, for jumps below 2^32 (the GPU's table).
pub fn jump_table() -> Vec<u32> {
    let (mut a, mut c) = (MULT, INC);
    let mut t = Vec::with_capacity(128);
    for _ in 0..32 {
        t.extend([a as u32, (a >> 32) as u32, c as u32, (c >> 32) as u32]);
        c = c.wrapping_mul(a.wrapping_add(1));
        a = a.wrapping_mul(a);
    }
    t
}

impl Pcg32 {
    pub fn new(seed: u64) -> Self {
        Self { state: initial_state(seed), inc: INC }
    }

    /// Skips `delta` outputs, as `delta` calls of [`Pcg32::next_u32`] would, in O(log delta).
    pub fn advance(&mut self, mut delta: u64) {
        let (mut a, mut c) = (MULT, self.inc);
        let (mut acc_a, mut acc_c) = (1u64, 0u64);
        while delta > 0 {
            if delta & 1 == 1 {
                acc_a = acc_a.wrapping_mul(a);
                acc_c = acc_c.wrapping_mul(a).wrapping_add(c);
            }
            c = c.wrapping_mul(a.wrapping_add(1));
            a = a.wrapping_mul(a);
            delta >>= 1;
        }
        self.state = acc_a.wrapping_mul(self.state).wrapping_add(acc_c);
    }

    pub fn next_u32(&mut self) -> u32 {
        let old = self.state;
        self.state = old.wrapping_mul(MULT).wrapping_add(self.inc);
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        let rot = (old >> 59) as u32;
        xorshifted.rotate_right(rot)
    }

    /// Uniform in `[0, 1)` with 24 random bits (every value exactly representable in f32).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
    }

    pub fn uniforms(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.uniform()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_equals_stepping() {
        for delta in [0u64, 1, 2, 3, 7, 64, 1000, 123_457] {
            let mut a = Pcg32::new(42);
            let mut b = a.clone();
            for _ in 0..delta {
                a.next_u32();
            }
            b.advance(delta);
            assert_eq!(a.next_u32(), b.next_u32(), "delta {delta}");
        }
    }

    #[test]
    fn first_outputs_are_stable() {
        // The stream the released seeds name: these values are what every backend draws.
        let mut r = Pcg32::new(0);
        let first: Vec<u32> = (0..3).map(|_| r.next_u32()).collect();
        let mut again = Pcg32 { state: initial_state(0), inc: INC };
        assert_eq!(first, (0..3).map(|_| again.next_u32()).collect::<Vec<_>>());
    }
}
