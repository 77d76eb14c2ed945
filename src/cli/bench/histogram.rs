//! A latency histogram for `weir bench`: fixed log-linear buckets (HdrHistogram's layout),
//! so a run of any length keeps a few kilobytes of counters instead of every sample.
//!
//! It owns counting and percentiles only; callers choose the unit (the benches record
//! microseconds) and do the timing.
//!
//! # Buckets
//! Values below 2^[`SUB_BITS`] have a bucket each (exact). Above, each power of two
//! `[2^m, 2^(m+1))` is split into 2^[`SUB_BITS`] equal buckets of width `2^(m - SUB_BITS)`,
//! so a bucket is never wider than 1/128 of the values in it. A percentile is the highest
//! value of the bucket holding the sample of that rank (never below the true sample, at most
//! 1/128 above it), capped at the largest value recorded, so the 100th percentile is the
//! exact maximum.

/// Bits of precision below the leading one: 7 gives 128 buckets per power of two, a
/// relative error under 0.8 % — finer than run-to-run noise of any latency measured here.
const SUB_BITS: u32 = 7;
const SUB_BUCKETS: u64 = 1 << SUB_BITS;
/// One linear range below 2^SUB_BITS, then one range of SUB_BUCKETS per leading-one
/// position from SUB_BITS to 63: 58 × 128 counters (58 KiB) cover every `u64`.
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB_BUCKETS as usize;

/// Counts of values in log-linear buckets, with the exact maximum and sum.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram::new()
    }
}

impl Histogram {
    pub(crate) fn new() -> Histogram {
        Histogram { counts: vec![0; BUCKETS], total: 0, max: 0, sum: 0 }
    }

    /// Records one sample of `value`.
    pub(crate) fn record(&mut self, value: u64) {
        self.record_n(value, 1);
    }

    /// Records `n` samples of `value` (the records of one batch share its latency).
    pub(crate) fn record_n(&mut self, value: u64, n: u64) {
        if n == 0 {
            return;
        }
        self.counts[index(value)] += n;
        self.total += n;
        self.max = self.max.max(value);
        self.sum += u128::from(value) * u128::from(n);
    }

    /// How many samples were recorded.
    pub(crate) fn count(&self) -> u64 {
        self.total
    }

    /// The largest sample, `None` when empty.
    pub(crate) fn max(&self) -> Option<u64> {
        (self.total > 0).then_some(self.max)
    }

    /// The mean of the samples, `None` when empty.
    pub(crate) fn mean(&self) -> Option<f64> {
        (self.total > 0).then(|| self.sum as f64 / self.total as f64)
    }

    /// The sample at `per_million` / 1,000,000 (nearest rank: the smallest sample with at
    /// least that share of samples at or below it), within the bucket precision described in
    /// the module docs; `None` when empty. Integer arithmetic, so 999,000 of 1,000 samples is
    /// rank 999 exactly (a float `0.999 * 1000` rounds up to 1,000 in ceil).
    pub(crate) fn quantile(&self, per_million: u32) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = rank(self.total, per_million);
        let mut seen = 0;
        for (i, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(highest(i).min(self.max));
            }
        }
        unreachable!("the counts add up to the total, and rank <= total")
    }
}

/// The 1-based rank of the sample at `per_million` of `total` samples (at least 1).
pub(crate) fn rank(total: u64, per_million: u32) -> u64 {
    let rank = (u128::from(total) * u128::from(per_million)).div_ceil(1_000_000);
    (rank as u64).clamp(1, total)
}

/// The bucket of `value`.
fn index(value: u64) -> usize {
    if value < SUB_BUCKETS {
        return value as usize;
    }
    let leading = 63 - value.leading_zeros(); // >= SUB_BITS
    let shift = leading - SUB_BITS;
    let sub = (value >> shift) - SUB_BUCKETS; // the SUB_BITS bits after the leading one
    ((u64::from(shift) + 1) * SUB_BUCKETS + sub) as usize
}

/// The smallest value in bucket `i`.
fn lowest(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB_BUCKETS {
        return i;
    }
    let shift = i / SUB_BUCKETS - 1;
    (SUB_BUCKETS + i % SUB_BUCKETS) << shift
}

/// The largest value in bucket `i`.
fn highest(i: usize) -> u64 {
    let shift = (i as u64 / SUB_BUCKETS).saturating_sub(1);
    lowest(i) + ((1u64 << shift) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nearest-rank sample of a sorted vector: the reference the histogram approximates.
    fn reference(sorted: &[u64], per_million: u32) -> u64 {
        sorted[rank(sorted.len() as u64, per_million) as usize - 1]
    }

    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    const QUANTILES: [u32; 9] = [1, 10_000, 250_000, 500_000, 900_000, 950_000, 990_000, 999_000, 1_000_000];

    fn check_against_sorted_reference(samples: &mut [u64]) {
        let mut h = Histogram::new();
        for &s in samples.iter() {
            h.record(s);
        }
        samples.sort_unstable();
        for q in QUANTILES {
            let want = reference(samples, q);
            let got = h.quantile(q).expect("not empty");
            assert!(got >= want, "q {q}: {got} below the sample {want}");
            assert!(got - want <= want / SUB_BUCKETS, "q {q}: {got} more than 1/128 above {want}");
        }
        assert_eq!(h.quantile(1_000_000), samples.last().copied(), "the maximum is exact");
        assert_eq!(h.max(), samples.last().copied());
        assert_eq!(h.count(), samples.len() as u64);
    }

    #[test]
    fn every_value_falls_in_a_bucket_whose_bounds_hold_it() {
        let mut state = 0x9e37_79b9_7f4a_7c15;
        let edges = [0, 1, 127, 128, 129, 255, 256, 257, 1 << 20, (1 << 20) - 1, u64::MAX, u64::MAX - 1];
        let random = (0..10_000).map(|_| xorshift(&mut state) >> (xorshift(&mut state) % 64));
        for v in edges.into_iter().chain(random) {
            let i = index(v);
            assert!(i < BUCKETS, "{v} in bucket {i}");
            assert!(lowest(i) <= v && v <= highest(i), "{v} outside bucket {i}: {}..={}", lowest(i), highest(i));
            assert!(highest(i) - lowest(i) <= lowest(i) / SUB_BUCKETS, "bucket {i} is too wide");
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn small_values_are_exact() {
        let mut samples: Vec<u64> = (0..128).rev().collect();
        check_against_sorted_reference(&mut samples);
        let mut h = Histogram::new();
        samples.iter().for_each(|&s| h.record(s));
        assert_eq!(h.quantile(500_000), Some(63));
    }

    #[test]
    fn percentiles_of_uniform_samples_match_a_sorted_vector() {
        let mut state = 42;
        let mut samples: Vec<u64> = (0..100_000).map(|_| xorshift(&mut state) % 1_000_000).collect();
        check_against_sorted_reference(&mut samples);
    }

    #[test]
    fn percentiles_of_long_tailed_samples_match_a_sorted_vector() {
        // Latency-like: most samples around a millisecond, a few spikes up to seconds.
        let mut state = 7;
        let mut samples: Vec<u64> = (0..50_000)
            .map(|_| {
                let r = xorshift(&mut state);
                match r % 1000 {
                    0 => 1_000_000 + r % 3_000_000,
                    1..=20 => 10_000 + r % 90_000,
                    _ => 500 + r % 1_500,
                }
            })
            .collect();
        check_against_sorted_reference(&mut samples);
    }

    #[test]
    fn a_few_samples_use_nearest_rank() {
        let mut samples = vec![5_000, 1_000, 3_000];
        check_against_sorted_reference(&mut samples);
        let mut h = Histogram::new();
        h.record(1_000);
        h.record(3_000);
        h.record(5_000);
        // p50 of three is the 2nd, p999 the 3rd; the 1st percentile is the minimum's bucket.
        let p50 = h.quantile(500_000).expect("not empty");
        assert!((3_000..=3_000 + 3_000 / 128).contains(&p50), "{p50}");
        assert_eq!(h.quantile(999_000), Some(5_000));
        assert!(h.quantile(1).expect("not empty") >= 1_000);
    }

    #[test]
    fn weighted_samples_count_as_many() {
        let mut h = Histogram::new();
        h.record_n(100, 999);
        h.record_n(1_000_000, 1);
        h.record_n(7, 0);
        assert_eq!(h.count(), 1_000);
        assert_eq!(h.quantile(999_000), Some(100), "rank 999 of 1000, computed without floats");
        assert_eq!(h.quantile(999_001), Some(1_000_000));
        assert_eq!(h.mean(), Some((100.0 * 999.0 + 1_000_000.0) / 1_000.0));
    }

    #[test]
    fn an_empty_histogram_has_no_percentiles() {
        let h = Histogram::new();
        assert_eq!((h.quantile(500_000), h.max(), h.mean(), h.count()), (None, None, None, 0));
    }
}
