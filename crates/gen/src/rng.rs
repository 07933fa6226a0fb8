//! The generator's only source of randomness: xoshiro256** seeded through SplitMix64.
//!
//! Written here rather than taken from `rand` so that a seed means the same stream forever,
//! on every machine and whatever a dependency does in its next release. Everything is integer
//! arithmetic; probabilities are given in per-mille.

/// SplitMix64's output function. It is a bijection on `u64` (an addition, xor-shifts and
/// multiplications by odd constants are all invertible), which is what lets message ids be
/// scrambled counters that never collide.
#[inline]
pub(crate) fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256**: fast, small state, good statistical quality for simulation.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// Expands a 64-bit seed with SplitMix64, as xoshiro's authors recommend, so that close
    /// seeds (0, 1, 2, ...) still give unrelated streams and the state is never all zeros.
    pub(crate) fn new(seed: u64) -> Rng {
        let mut s = [0u64; 4];
        for (i, word) in s.iter_mut().enumerate() {
            *word = mix64(seed.wrapping_add((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        }
        Rng { s }
    }

    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A number in `0..n` (`n > 0`) by Lemire's multiply-shift: no division, no loop. The bias
    /// is at most `n / 2^64`, far below anything a test or a benchmark could see.
    #[inline]
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `lo..=hi`.
    #[inline]
    pub(crate) fn range(&mut self, lo: u32, hi: u32) -> u32 {
        debug_assert!(lo <= hi);
        lo + self.below(u64::from(hi - lo) + 1) as u32
    }

    /// True with probability `permille / 1000`.
    #[inline]
    pub(crate) fn chance(&mut self, permille: u32) -> bool {
        self.below(1000) < u64::from(permille)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_numbers_and_seeds_differ() {
        let a: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..8).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..8).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = Rng::new(8);
            (0..8).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn output_is_pinned() {
        // The stream's bytes depend on these numbers: a change here changes every seed's
        // output, which must be a deliberate, noted decision.
        let mut r = Rng::new(0);
        let first = r.next_u64();
        let mut again = Rng::new(0);
        assert_eq!(first, again.next_u64());
        assert_eq!(mix64(0), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn bounded_draws_stay_in_range_and_cover_it() {
        let mut r = Rng::new(1);
        let mut seen = [false; 10];
        for _ in 0..10_000 {
            let x = r.range(3, 12);
            assert!((3..=12).contains(&x));
            seen[(x - 3) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        let hits = (0..100_000).filter(|_| r.chance(50)).count();
        assert!((4_000..6_000).contains(&hits), "{hits}");
    }
}
