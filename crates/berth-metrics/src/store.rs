//! The store: series by key, two rings each.

use std::collections::HashMap;
use std::mem::size_of;

use crate::codec::{self, DecodeError};
use crate::key::SeriesKey;
use crate::ring::{Bucket, Ring};

/// 10-second buckets kept per series: 15 minutes.
pub(crate) const TEN_SECOND_BUCKETS: usize = 90;
/// 1-minute buckets kept per series: one hour.
pub(crate) const MINUTE_BUCKETS: usize = 60;

/// How a bucket's samples are summarised, as CloudWatch statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stat {
    /// Mean of the samples: sum / count.
    Average,
    /// Total of the samples.
    Sum,
    /// Smallest sample.
    Minimum,
    /// Largest sample.
    Maximum,
    /// Number of samples.
    SampleCount,
}

impl Stat {
    pub(crate) fn of(self, b: &Bucket) -> f64 {
        match self {
            Stat::Average => b.sum / b.count as f64,
            Stat::Sum => b.sum,
            Stat::Minimum => b.min,
            Stat::Maximum => b.max,
            Stat::SampleCount => b.count as f64,
        }
    }
}

/// Which ring to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    /// 10-second buckets, the last 15 minutes.
    TenSeconds,
    /// 1-minute buckets, the last hour.
    OneMinute,
}

impl Resolution {
    /// Bucket width in seconds.
    pub fn seconds(self) -> f64 {
        match self {
            Resolution::TenSeconds => 10.0,
            Resolution::OneMinute => 60.0,
        }
    }
}

#[derive(Debug, Clone)]
struct Series {
    ten: Ring,
    minute: Ring,
    /// Time of the newest sample (or restored bucket start) the series accepted.
    last_at: f64,
}

impl Series {
    fn new() -> Self {
        Series {
            ten: Ring::new(Resolution::TenSeconds.seconds(), TEN_SECOND_BUCKETS),
            minute: Ring::new(Resolution::OneMinute.seconds(), MINUTE_BUCKETS),
            last_at: f64::NEG_INFINITY,
        }
    }

    fn ring(&self, res: Resolution) -> &Ring {
        match res {
            Resolution::TenSeconds => &self.ten,
            Resolution::OneMinute => &self.minute,
        }
    }
}

/// Recent metrics, by series. See the crate docs.
#[derive(Debug, Clone, Default)]
pub struct MetricStore {
    series: HashMap<SeriesKey, Series>,
}

impl MetricStore {
    /// An empty store; a series gets its rings when it first appears.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one sample taken at `at` (unix seconds). Samples out of order are fine as long
    /// as their bucket is still inside the ring; older ones are dropped (per ring: a sample
    /// too old for the 10-second ring may still land in the 1-minute ring). Non-finite
    /// values and times outside `[0, 2^40)` are ignored.
    pub fn record(&mut self, key: &SeriesKey, at: f64, value: f64) {
        if !value.is_finite() || !(0.0..crate::ring::MAX_TIME).contains(&at) {
            return;
        }
        let series = match self.series.get_mut(key) {
            Some(s) => s,
            None => self.series.entry(key.clone()).or_insert_with(Series::new),
        };
        let mut kept = false;
        for ring in [&mut series.ten, &mut series.minute] {
            if let Some(idx) = ring.index_of(at) {
                kept |= ring.merge(idx, 1, value, value, value);
            }
        }
        if kept {
            series.last_at = series.last_at.max(at);
        }
    }

    /// Datapoints `(bucket start, stat)` for the non-empty buckets whose start lies in
    /// `[from, to)`, oldest first. Empty for an unknown series.
    pub fn points(
        &self,
        key: &SeriesKey,
        res: Resolution,
        from: f64,
        to: f64,
        stat: Stat,
    ) -> Vec<(f64, f64)> {
        let Some(series) = self.series.get(key) else {
            return Vec::new();
        };
        let ring = series.ring(res);
        ring.iter()
            .map(|b| (ring.start_of(b.idx), b))
            .filter(|(start, _)| *start >= from && *start < to)
            .map(|(start, b)| (start, stat.of(b)))
            .collect()
    }

    /// The newest non-empty bucket, as `(bucket start, stat)`. It may still be filling.
    pub fn latest(&self, key: &SeriesKey, res: Resolution, stat: Stat) -> Option<(f64, f64)> {
        let ring = self.series.get(key)?.ring(res);
        ring.iter()
            .next_back()
            .map(|b| (ring.start_of(b.idx), stat.of(b)))
    }

    /// Every series held, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &SeriesKey> {
        self.series.keys()
    }

    /// Drops the series whose newest sample is `idle_secs` or more before `now` (a stopped
    /// task's series, say), freeing their rings.
    pub fn remove_idle(&mut self, now: f64, idle_secs: f64) {
        self.series.retain(|_, s| now - s.last_at < idle_secs);
    }

    /// The 1-minute buckets starting at or after `since`, for every series, in a compact
    /// versioned binary format (see [`MetricStore::restore_minutes`]). Series are written in
    /// key order, so equal stores give equal bytes.
    pub fn encode_minutes(&self, since: f64) -> Vec<u8> {
        let mut keys: Vec<&SeriesKey> = self.series.keys().collect();
        keys.sort_unstable();
        let series = keys.into_iter().filter_map(|k| {
            let ring = &self.series.get(k)?.minute;
            let buckets: Vec<Bucket> = ring
                .iter()
                .filter(|b| ring.start_of(b.idx) >= since)
                .copied()
                .collect();
            (!buckets.is_empty()).then_some((k, buckets))
        });
        codec::encode(series)
    }

    /// Merges 1-minute buckets written by [`MetricStore::encode_minutes`] into this store
    /// (meant for a fresh store at start-up: restoring the same bytes twice counts the
    /// samples twice). The input is validated entirely first: on error nothing changed.
    pub fn restore_minutes(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        for (key, buckets) in codec::decode(bytes, MINUTE_BUCKETS)? {
            let series = self.series.entry(key).or_insert_with(Series::new);
            for b in buckets {
                if series.minute.merge(b.idx, b.count, b.sum, b.min, b.max) {
                    series.last_at = series.last_at.max(series.minute.start_of(b.idx));
                }
            }
        }
        Ok(())
    }

    /// Roughly the heap and inline memory held, in bytes: the map's table plus, per series,
    /// its key text and its two rings.
    pub fn approx_bytes(&self) -> usize {
        let table = self.series.capacity() * (size_of::<(SeriesKey, Series)>() + 1);
        let per_series: usize = self
            .series
            .iter()
            .map(|(k, s)| k.0.capacity() + (s.ten.len() + s.minute.len()) * size_of::<Bucket>())
            .sum();
        size_of::<Self>() + table + per_series
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(s: &str) -> SeriesKey {
        SeriesKey::new("ECS", "CPUUtilization", &[("service", s)])
    }

    #[test]
    fn each_stat_aggregates_a_bucket() {
        let mut m = MetricStore::new();
        let k = key("web");
        for (at, v) in [(100.0, 10.0), (101.0, 30.0), (109.9, 20.0), (110.0, 99.0)] {
            m.record(&k, at, v);
        }
        let get = |stat| m.points(&k, Resolution::TenSeconds, 0.0, 1e9, stat);
        assert_eq!(get(Stat::Average), vec![(100.0, 20.0), (110.0, 99.0)]);
        assert_eq!(get(Stat::Sum), vec![(100.0, 60.0), (110.0, 99.0)]);
        assert_eq!(get(Stat::Minimum), vec![(100.0, 10.0), (110.0, 99.0)]);
        assert_eq!(get(Stat::Maximum), vec![(100.0, 30.0), (110.0, 99.0)]);
        assert_eq!(get(Stat::SampleCount), vec![(100.0, 3.0), (110.0, 1.0)]);
        // All four samples share the minute starting at 60.
        assert_eq!(
            m.points(&k, Resolution::OneMinute, 0.0, 1e9, Stat::Average),
            vec![(60.0, 39.75)]
        );
        assert_eq!(
            m.latest(&k, Resolution::TenSeconds, Stat::Maximum),
            Some((110.0, 99.0))
        );
        assert_eq!(
            m.latest(&key("other"), Resolution::TenSeconds, Stat::Sum),
            None
        );
    }

    #[test]
    fn points_filter_on_bucket_start() {
        let mut m = MetricStore::new();
        let k = key("web");
        for i in 0..10 {
            m.record(&k, 1000.0 + 10.0 * i as f64 + 5.0, i as f64);
        }
        let got = m.points(&k, Resolution::TenSeconds, 1020.0, 1050.0, Stat::Sum);
        assert_eq!(got, vec![(1020.0, 2.0), (1030.0, 3.0), (1040.0, 4.0)]);
    }

    #[test]
    fn ring_wraps_and_keeps_fifteen_minutes() {
        let mut m = MetricStore::new();
        let k = key("web");
        // Two hours of one sample every 10 s.
        for i in 0..720 {
            m.record(&k, 10.0 * i as f64, i as f64);
        }
        let ten = m.points(&k, Resolution::TenSeconds, 0.0, 1e9, Stat::Average);
        assert_eq!(ten.len(), 90);
        assert_eq!(ten.first(), Some(&(6300.0, 630.0)));
        assert_eq!(ten.last(), Some(&(7190.0, 719.0)));
        let min = m.points(&k, Resolution::OneMinute, 0.0, 1e9, Stat::SampleCount);
        assert_eq!(min.len(), 60);
        assert_eq!(min.first(), Some(&(3600.0, 6.0)));
        assert!(min.iter().all(|(_, n)| *n == 6.0));
    }

    #[test]
    fn out_of_range_samples_are_dropped() {
        let mut m = MetricStore::new();
        let k = key("web");
        m.record(&k, 10_000.0, 1.0);
        // 16 minutes old: too old for the 10 s ring, fine for the minute ring.
        m.record(&k, 10_000.0 - 960.0, 2.0);
        // Two hours old: dropped everywhere.
        m.record(&k, 10_000.0 - 7200.0, 3.0);
        // Out of order but inside the window: kept.
        m.record(&k, 9_990.0, 4.0);
        m.record(&k, f64::NAN, 5.0);
        m.record(&k, 10_000.0, f64::INFINITY);
        m.record(&k, -5.0, 6.0);
        let ten = m.points(&k, Resolution::TenSeconds, 0.0, 1e9, Stat::Sum);
        assert_eq!(ten, vec![(9990.0, 4.0), (10_000.0, 1.0)]);
        let min = m.points(&k, Resolution::OneMinute, 0.0, 1e9, Stat::Sum);
        assert_eq!(min, vec![(9000.0, 2.0), (9960.0, 5.0)]);
    }

    #[test]
    fn remove_idle_drops_quiet_series() {
        let mut m = MetricStore::new();
        m.record(&key("a"), 100.0, 1.0);
        m.record(&key("b"), 500.0, 1.0);
        m.remove_idle(700.0, 300.0);
        let keys: Vec<_> = m.keys().cloned().collect();
        assert_eq!(keys, vec![key("b")]);
        m.remove_idle(800.0, 300.0);
        assert_eq!(m.keys().count(), 0);
        assert_eq!(
            m.approx_bytes(),
            size_of::<MetricStore>() + m.series.capacity() * (size_of::<(SeriesKey, Series)>() + 1)
        );
    }

    #[test]
    fn encode_restore_round_trip() {
        let mut m = MetricStore::new();
        for s in ["web", "api", "db"] {
            for i in 0..400 {
                m.record(&key(s), 1_700_000_000.0 + 10.0 * i as f64, (i % 17) as f64);
            }
        }
        let bytes = m.encode_minutes(0.0);
        let mut r = MetricStore::new();
        r.restore_minutes(&bytes).expect("restore");
        for s in ["web", "api", "db"] {
            for stat in [
                Stat::Average,
                Stat::Sum,
                Stat::Minimum,
                Stat::Maximum,
                Stat::SampleCount,
            ] {
                assert_eq!(
                    r.points(&key(s), Resolution::OneMinute, 0.0, 1e12, stat),
                    m.points(&key(s), Resolution::OneMinute, 0.0, 1e12, stat)
                );
            }
            assert!(r
                .points(&key(s), Resolution::TenSeconds, 0.0, 1e12, Stat::Sum)
                .is_empty());
        }
        assert_eq!(r.encode_minutes(0.0), bytes);
        // `since` trims: only the last 10 minutes.
        let since = 1_700_000_000.0 + 10.0 * 400.0 - 600.0;
        let mut r = MetricStore::new();
        r.restore_minutes(&m.encode_minutes(since))
            .expect("restore");
        let pts = r.points(&key("web"), Resolution::OneMinute, 0.0, 1e12, Stat::Sum);
        assert!(pts.iter().all(|(t, _)| *t >= since));
        assert_eq!(pts.len(), 10);
        // An empty store encodes to a header that restores to nothing.
        let mut e = MetricStore::new();
        e.restore_minutes(&MetricStore::new().encode_minutes(0.0))
            .expect("restore");
        assert_eq!(e.keys().count(), 0);
    }

    #[test]
    fn restore_errors_leave_the_store_unchanged() {
        let mut m = MetricStore::new();
        m.record(&key("web"), 1000.0, 1.0);
        let good = m.encode_minutes(0.0);
        let mut r = MetricStore::new();
        assert!(r.restore_minutes(&good[..good.len() - 1]).is_err());
        assert!(r.restore_minutes(b"").is_err());
        let mut v2 = good.clone();
        v2[4] = 99;
        assert!(matches!(
            r.restore_minutes(&v2),
            Err(DecodeError::UnsupportedVersion(99))
        ));
        let mut extra = good.clone();
        extra.push(0);
        assert!(matches!(
            r.restore_minutes(&extra),
            Err(DecodeError::TrailingBytes(1))
        ));
        assert_eq!(r.keys().count(), 0);
    }

    /// A naive model: every accepted sample kept in a list; a ring's window is the `len`
    /// buckets ending at the newest bucket seen when the sample arrived.
    #[derive(Default)]
    struct Model {
        head: Option<i64>,
        kept: Vec<(i64, f64)>,
    }

    impl Model {
        fn record(&mut self, idx: i64, len: i64, v: f64) {
            match self.head {
                Some(h) if idx <= h - len => return,
                Some(h) if idx <= h => {}
                _ => self.head = Some(idx),
            }
            self.kept.push((idx, v));
        }

        fn points(&self, width: f64, len: i64, from: f64, to: f64, stat: Stat) -> Vec<(f64, f64)> {
            let Some(h) = self.head else {
                return Vec::new();
            };
            let mut out = Vec::new();
            for idx in h - len + 1..=h {
                let vs: Vec<f64> = self
                    .kept
                    .iter()
                    .filter(|(i, _)| *i == idx)
                    .map(|(_, v)| *v)
                    .collect();
                let start = idx as f64 * width;
                if vs.is_empty() || start < from || start >= to {
                    continue;
                }
                let sum: f64 = vs.iter().sum();
                let v = match stat {
                    Stat::Average => sum / vs.len() as f64,
                    Stat::Sum => sum,
                    Stat::Minimum => vs.iter().copied().fold(f64::INFINITY, f64::min),
                    Stat::Maximum => vs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    Stat::SampleCount => vs.len() as f64,
                };
                out.push((start, v));
            }
            out
        }
    }

    fn stat() -> impl Strategy<Value = Stat> {
        prop_oneof![
            Just(Stat::Average),
            Just(Stat::Sum),
            Just(Stat::Minimum),
            Just(Stat::Maximum),
            Just(Stat::SampleCount),
        ]
    }

    proptest! {
        #[test]
        fn points_match_a_naive_model(
            // Times wander forwards and backwards over ~3 hours, so both rings wrap and drop.
            steps in prop::collection::vec((-600.0f64..900.0, -1000.0f64..1000.0), 1..400),
            from in 0.0f64..20_000.0,
            span in 0.0f64..20_000.0,
            stat in stat(),
        ) {
            let k = key("web");
            let mut m = MetricStore::new();
            let mut ten = Model::default();
            let mut min = Model::default();
            let mut at = 5000.0f64;
            for (dt, v) in steps {
                at = (at + dt).max(0.0);
                m.record(&k, at, v);
                ten.record((at / 10.0).floor() as i64, 90, v);
                min.record((at / 60.0).floor() as i64, 60, v);
            }
            for (res, model, len) in [(Resolution::TenSeconds, &ten, 90), (Resolution::OneMinute, &min, 60)] {
                let got = m.points(&k, res, from, from + span, stat);
                let want = model.points(res.seconds(), len, from, from + span, stat);
                prop_assert_eq!(got.len(), want.len());
                for ((gt, gv), (wt, wv)) in got.iter().zip(&want) {
                    prop_assert_eq!(gt, wt);
                    prop_assert!((gv - wv).abs() <= 1e-9 * (1.0 + wv.abs()), "{} vs {}", gv, wv);
                }
            }
        }

        #[test]
        fn restore_of_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let mut m = MetricStore::new();
            // Random bytes essentially never carry the magic; the result must be Err.
            prop_assert!(m.restore_minutes(&bytes).is_err());
            prop_assert_eq!(m.keys().count(), 0);
        }

        #[test]
        fn restore_of_mutated_encodings_never_panics(
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut m = MetricStore::new();
            for i in 0..200 {
                m.record(&key(if i % 2 == 0 { "a" } else { "b" }), 1000.0 + 30.0 * i as f64, i as f64);
            }
            let mut bytes = m.encode_minutes(0.0);
            for (at, byte) in flips {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            let mut r = MetricStore::new();
            // Either outcome is fine; it must not panic, and success must yield valid data.
            if r.restore_minutes(&bytes).is_ok() {
                for k in r.keys() {
                    for (_, v) in r.points(k, Resolution::OneMinute, 0.0, 1e13, Stat::Average) {
                        prop_assert!(v.is_finite());
                    }
                }
            }
        }
    }
}
