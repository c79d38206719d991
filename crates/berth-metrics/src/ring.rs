//! One fixed-size ring of aggregated buckets.

/// Times outside `[0, MAX_TIME)` are not recorded: it keeps bucket indexes far from `i64`
/// limits (and from [`EMPTY_IDX`]) whatever a caller passes. 2^40 s is about 34,000 years.
pub(crate) const MAX_TIME: f64 = 1_099_511_627_776.0;

/// Index of a slot that never held a bucket.
const EMPTY_IDX: i64 = i64::MIN;

/// One bucket: the aggregate of the samples whose time falls in `[idx·w, (idx+1)·w)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    pub idx: i64,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

const EMPTY: Bucket = Bucket {
    idx: EMPTY_IDX,
    count: 0,
    sum: 0.0,
    min: f64::INFINITY,
    max: f64::NEG_INFINITY,
};

/// `len` buckets of `width` seconds, covering the `len` bucket indexes ending at `head`
/// (the newest bucket seen). Slot `idx mod len` holds bucket `idx`; a slot whose stored
/// index differs from the one asked for is stale.
#[derive(Debug, Clone)]
pub(crate) struct Ring {
    width: f64,
    head: i64,
    slots: Box<[Bucket]>,
}

impl Ring {
    pub fn new(width: f64, len: usize) -> Self {
        Ring {
            width,
            head: EMPTY_IDX,
            slots: vec![EMPTY; len].into_boxed_slice(),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The bucket index of time `at`, or `None` if `at` is not a recordable time.
    pub fn index_of(&self, at: f64) -> Option<i64> {
        if !(0.0..MAX_TIME).contains(&at) {
            return None;
        }
        Some((at / self.width).floor() as i64)
    }

    pub fn start_of(&self, idx: i64) -> f64 {
        idx as f64 * self.width
    }

    fn oldest(&self) -> i64 {
        self.head - self.slots.len() as i64 + 1
    }

    fn slot(&self, idx: i64) -> usize {
        idx.rem_euclid(self.slots.len() as i64) as usize
    }

    /// Adds an aggregate to bucket `idx`. Returns false (and changes nothing) when the bucket
    /// is older than the ring. `idx` must come from [`Ring::index_of`] (or be validated the
    /// same way).
    pub fn merge(&mut self, idx: i64, count: u64, sum: f64, min: f64, max: f64) -> bool {
        if self.head == EMPTY_IDX || idx > self.head {
            self.head = idx;
        } else if idx < self.oldest() {
            return false;
        }
        let slot = self.slot(idx);
        let b = &mut self.slots[slot];
        if b.idx != idx {
            *b = Bucket { idx, ..EMPTY };
        }
        b.count = b.count.saturating_add(count);
        b.sum += sum;
        b.min = b.min.min(min);
        b.max = b.max.max(max);
        true
    }

    /// Non-empty buckets of the window, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Bucket> + '_ {
        // An empty ring yields nothing: `head` is EMPTY_IDX, and the range is skipped.
        let (first, last) = if self.head == EMPTY_IDX {
            (1, 0)
        } else {
            (self.oldest(), self.head)
        };
        let range = first..=last;
        range.filter_map(move |idx| {
            let b = &self.slots[self.slot(idx)];
            (b.idx == idx && b.count > 0).then_some(b)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraparound_resets_stale_slots() {
        let mut r = Ring::new(10.0, 3);
        assert!(r.merge(0, 1, 1.0, 1.0, 1.0));
        assert!(r.merge(1, 1, 2.0, 2.0, 2.0));
        assert!(r.merge(2, 1, 3.0, 3.0, 3.0));
        // Bucket 3 reuses bucket 0's slot.
        assert!(r.merge(3, 1, 4.0, 4.0, 4.0));
        let got: Vec<_> = r.iter().map(|b| (b.idx, b.sum)).collect();
        assert_eq!(got, vec![(1, 2.0), (2, 3.0), (3, 4.0)]);
        // Older than the window: dropped.
        assert!(!r.merge(0, 1, 9.0, 9.0, 9.0));
        // A jump far ahead leaves only the new bucket visible.
        assert!(r.merge(100, 1, 5.0, 5.0, 5.0));
        let got: Vec<_> = r.iter().map(|b| b.idx).collect();
        assert_eq!(got, vec![100]);
        // Bucket 99 sits in a stale slot (it held 3): reset, not added to.
        assert!(r.merge(99, 1, 6.0, 6.0, 6.0));
        let got: Vec<_> = r.iter().map(|b| (b.idx, b.count, b.sum)).collect();
        assert_eq!(got, vec![(99, 1, 6.0), (100, 1, 5.0)]);
    }

    #[test]
    fn index_rejects_bad_times() {
        let r = Ring::new(60.0, 60);
        assert_eq!(r.index_of(f64::NAN), None);
        assert_eq!(r.index_of(-1.0), None);
        assert_eq!(r.index_of(f64::INFINITY), None);
        assert_eq!(r.index_of(119.9), Some(1));
        assert_eq!(r.start_of(1), 60.0);
    }
}
