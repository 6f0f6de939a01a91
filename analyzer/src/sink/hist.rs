//! A latency histogram that costs memory in proportion to the distinct values recorded, not
//! to their range: the report keeps one per protocol, server and endpoint, the graph one per
//! edge, and a dense histogram (HdrHistogram's counts array: 16 KiB to 170 KiB for latencies
//! from microseconds to seconds) per key is what made a report of 100,000 clients take
//! gigabytes.
//!
//! It quantizes exactly as HdrHistogram does with three significant digits and a lowest
//! discernible value of 1 (2048 sub-buckets, each power of two above them split in 1024), and
//! answers quantiles, minimum and maximum the same way, so that reports read the same as with
//! the `hdrhistogram` crate (checked against it by a property test). The bins recorded are
//! kept sorted in a vector: a histogram of `n` distinct bins costs about `12 n` bytes.

/// Values above this are not recorded (no latency is 146 years long).
const MAX_VALUE: u64 = 1 << 62;
/// Sub-bucket half-count magnitude (three significant digits: 2048 sub-buckets).
const HALF_MAG: u32 = 10;
const HALF: u64 = 1 << HALF_MAG;
/// `64 - unit magnitude (0) - HALF_MAG - 1`.
const LZ_BASE: u32 = 53;
const SUB_MASK: u64 = 2 * HALF - 1;

fn bucket(v: u64) -> u32 {
    LZ_BASE - (v | SUB_MASK).leading_zeros()
}

fn index(v: u64) -> u32 {
    let b = bucket(v);
    let sub = v >> b;
    // (b + 1) * 1024 + sub - 1024: sub >= 1024 for b > 0; for b = 0 the index is sub.
    ((b + 1) << HALF_MAG) + sub as u32 - HALF as u32
}

fn value_for(i: u32) -> u64 {
    let b = i64::from(i >> HALF_MAG) - 1;
    let mut sub = u64::from(i & (HALF as u32 - 1)) + HALF;
    let b = if b < 0 {
        sub -= HALF;
        0
    } else {
        b as u32
    };
    sub << b
}

fn lowest_equivalent(v: u64) -> u64 {
    let b = bucket(v);
    (v >> b) << b
}

fn highest_equivalent(v: u64) -> u64 {
    if v == u64::MAX {
        return u64::MAX;
    }
    lowest_equivalent(v).saturating_add(1 << bucket(v)) - 1
}

/// A latency histogram (nanoseconds), sparse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    /// (bin index, count), by index.
    bins: Vec<(u32, u64)>,
    total: u64,
    max: u64,
    min_nz: u64,
}

/// One recorded bin, as [`Latency::iter_recorded`] yields it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bin {
    /// The highest value of the bin.
    pub value: u64,
    /// Values recorded in it.
    pub count: u64,
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `v`.
    pub fn record(&mut self, v: u64) {
        if v > MAX_VALUE {
            return;
        }
        let i = index(v);
        match self.bins.binary_search_by_key(&i, |&(k, _)| k) {
            Ok(p) => self.bins[p].1 = self.bins[p].1.saturating_add(1),
            Err(p) => self.bins.insert(p, (i, 1)),
        }
        self.total = self.total.saturating_add(1);
        self.max = self.max.max(v);
        if v != 0 && (self.min_nz == 0 || v < self.min_nz) {
            self.min_nz = v;
        }
    }

    /// Records `v` without adding a bin: into its own bin if it has one, else into the
    /// nearest recorded bin (the first value goes into a bin of its own). Returns whether
    /// the value had a bin of its own (false: its precision was reduced).
    pub fn record_existing(&mut self, v: u64) -> bool {
        if v > MAX_VALUE {
            return true;
        }
        let i = index(v);
        let p = match self.bins.binary_search_by_key(&i, |&(k, _)| k) {
            Ok(p) => p,
            Err(_) if self.bins.is_empty() => {
                self.record(v);
                return true;
            }
            Err(p) => {
                // The nearer neighbour by index.
                if p == self.bins.len() || (p > 0 && i - self.bins[p - 1].0 <= self.bins[p].0 - i) {
                    p - 1
                } else {
                    p
                }
            }
        };
        let exact = self.bins[p].0 == i;
        self.bins[p].1 = self.bins[p].1.saturating_add(1);
        self.total = self.total.saturating_add(1);
        if exact {
            self.max = self.max.max(v);
            if v != 0 && (self.min_nz == 0 || v < self.min_nz) {
                self.min_nz = v;
            }
        } else {
            let at = value_for(self.bins[p].0);
            self.max = self.max.max(at);
            if at != 0 && (self.min_nz == 0 || at < self.min_nz) {
                self.min_nz = at;
            }
        }
        exact
    }

    /// Values recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.bins.capacity() * std::mem::size_of::<(u32, u64)>()
    }

    /// The value at quantile `q` (0..=1), as HdrHistogram's `value_at_quantile`: the highest
    /// value equivalent to the first bin whose cumulative count reaches `ceil(q * len)`.
    pub fn value_at_quantile(&self, q: f64) -> u64 {
        let q = if q > 1.0 { 1.0 } else { q };
        let target = ((q * self.total as f64).ceil() as u64).max(1);
        let mut sum = 0u64;
        for &(i, c) in &self.bins {
            sum = sum.saturating_add(c);
            if sum >= target {
                let v = value_for(i);
                return if q == 0.0 {
                    lowest_equivalent(v)
                } else {
                    highest_equivalent(v)
                };
            }
        }
        0
    }

    /// The highest value recorded, to the histogram's precision (0 if empty).
    pub fn max(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            highest_equivalent(self.max)
        }
    }

    /// The lowest value recorded, to the histogram's precision (0 if empty or if 0 was
    /// recorded).
    pub fn min(&self) -> u64 {
        if self.total == 0 || self.bins.first().is_some_and(|&(i, _)| i == 0) {
            0
        } else {
            lowest_equivalent(self.min_nz)
        }
    }

    /// The recorded bins, lowest first.
    pub fn iter_recorded(&self) -> impl Iterator<Item = Bin> + '_ {
        self.bins.iter().map(|&(i, c)| Bin {
            value: highest_equivalent(value_for(i)),
            count: c,
        })
    }

    /// Adds another histogram's values.
    pub fn merge(&mut self, o: &Latency) {
        for &(i, c) in &o.bins {
            match self.bins.binary_search_by_key(&i, |&(k, _)| k) {
                Ok(p) => self.bins[p].1 = self.bins[p].1.saturating_add(c),
                Err(p) => self.bins.insert(p, (i, c)),
            }
        }
        self.total = self.total.saturating_add(o.total);
        self.max = self.max.max(o.max);
        if o.min_nz != 0 && (self.min_nz == 0 || o.min_nz < self.min_nz) {
            self.min_nz = o.min_nz;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::Histogram;
    use proptest::prelude::*;

    fn both(values: &[u64]) -> (Latency, Histogram<u64>) {
        let mut a = Latency::new();
        let mut b = Histogram::<u64>::new(3).unwrap();
        for &v in values {
            a.record(v);
            b.record(v).unwrap();
        }
        (a, b)
    }

    proptest! {
        #[test]
        fn answers_as_hdrhistogram_does(values in prop::collection::vec(
            prop_oneof![0u64..5000, 1u64..10_000_000_000, 1u64..(1 << 40)], 1..200)) {
            let (a, b) = both(&values);
            for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
                prop_assert_eq!(a.value_at_quantile(q), b.value_at_quantile(q), "q {}", q);
            }
            prop_assert_eq!(a.max(), b.max());
            prop_assert_eq!(a.min(), b.min());
            prop_assert_eq!(a.len(), b.len());
            let ours: Vec<(u64, u64)> = a.iter_recorded().map(|x| (x.value, x.count)).collect();
            let theirs: Vec<(u64, u64)> = b
                .iter_recorded()
                .map(|x| (x.value_iterated_to(), x.count_at_value()))
                .collect();
            prop_assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn memory_follows_distinct_bins_not_range() {
        let mut a = Latency::new();
        for _ in 0..10_000 {
            a.record(1_000_000_000);
        }
        a.record(1);
        assert_eq!(a.len(), 10_001);
        assert!(a.heap_bytes() <= 64, "{}", a.heap_bytes());
        assert_eq!(a.value_at_quantile(0.5), highest_equivalent(1_000_000_000));
    }

    #[test]
    fn recording_without_new_bins_keeps_the_memory() {
        let mut a = Latency::new();
        assert!(a.record_existing(1000));
        let before = a.heap_bytes();
        assert!(!a.record_existing(1_000_000));
        assert!(a.record_existing(1000));
        assert_eq!(a.heap_bytes(), before);
        assert_eq!(a.len(), 3);
        assert_eq!(a.iter_recorded().count(), 1);
    }

    #[test]
    fn merge_is_recording_both() {
        let (a1, _) = both(&[5, 500, 5_000_000]);
        let (a2, _) = both(&[7, 5_000_001]);
        let mut m = a1.clone();
        m.merge(&a2);
        let (all, _) = both(&[5, 500, 5_000_000, 7, 5_000_001]);
        assert_eq!(m, all);
    }
}
