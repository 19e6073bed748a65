// Shared by the integration tests: a tiny deterministic generator (SplitMix64), so
// samples are reproducible without a dependency.
#![allow(dead_code)]

pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A random f32 with a random sign, an exponent uniform in `lo..=hi` and random
    /// mantissa bits (so rounding boundaries of small formats are hit often).
    pub fn f32_in_octaves(&mut self, lo: i32, hi: i32) -> f32 {
        let r = self.next_u64();
        let e = lo + (r % (hi - lo + 1) as u64) as i32;
        let m = (r >> 32) as u32 & 0x7f_ffff;
        let s = (r >> 60) & 1;
        let bits = if e < -126 {
            (0x40_0000u32 >> (-126 - e).min(23)) | (m >> 8)
        } else {
            ((e + 127) as u32) << 23 | m
        };
        let v = f32::from_bits(bits);
        if s == 1 {
            -v
        } else {
            v
        }
    }
}
