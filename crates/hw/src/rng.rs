//! A deterministic random stream for stimulus (tests, random sweeps of the RTL): Marsaglia's
//! xorshift64, so the same seed gives the same stimulus on every machine, without a
//! dependency.

/// xorshift64 state; the seed must be non-zero (zero stays zero).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XorShift(pub u64);

impl XorShift {
    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `0..n` (`n > 0`; modulo bias is irrelevant for stimulus).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}
