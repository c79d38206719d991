//! The dates `registeredAt` is compared with, and dotted version numbers for `agentVersion`.

use std::cmp::Ordering;

/// A span of time, epoch seconds, `[start, end)`. A date is its whole day (UTC); a timestamp
/// is its second (or its fraction, if it has one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TimeRange {
    pub start: f64,
    pub end: f64,
}

/// Parses the formats ECS documents for `registeredAt`: `2018-06-18T22:28:28+00:00`,
/// `2018-06-18T22:28:28Z`, `2018-06-18T22:28:28` (UTC) and `2018-06-18`. Also accepts a
/// fraction of a second and offsets written `+0000`.
pub(crate) fn parse_time(s: &str) -> Option<TimeRange> {
    let b = s.as_bytes();
    let year = digits(b, 0, 4)?;
    expect(b, 4, b'-')?;
    let month = digits(b, 5, 2)?;
    expect(b, 7, b'-')?;
    let day = digits(b, 8, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let midnight = days_from_civil(year, month, day) as f64 * 86_400.0;
    if b.len() == 10 {
        return Some(TimeRange {
            start: midnight,
            end: midnight + 86_400.0,
        });
    }
    if !matches!(b.get(10), Some(b'T') | Some(b't')) {
        return None;
    }
    let hour = digits(b, 11, 2)?;
    expect(b, 13, b':')?;
    let minute = digits(b, 14, 2)?;
    expect(b, 16, b':')?;
    let second = digits(b, 17, 2)?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut pos = 19;
    let mut fraction = 0.0;
    let mut width = 1.0;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let begin = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == begin || pos - begin > 9 {
            return None;
        }
        let text = std::str::from_utf8(&b[begin..pos]).ok()?;
        let n: f64 = text.parse().ok()?;
        width = 10f64.powi(-((pos - begin) as i32));
        fraction = n * width;
    }
    let offset = match b.get(pos) {
        None => 0,
        Some(b'Z') | Some(b'z') if pos + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(b, pos + 1, 2)?;
            let om = match b.get(pos + 3) {
                Some(b':') if b.len() == pos + 6 => digits(b, pos + 4, 2)?,
                Some(_) if b.len() == pos + 5 => digits(b, pos + 3, 2)?,
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = oh * 3600 + om * 60;
            if sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return None,
    };
    let start = midnight + (hour * 3600 + minute * 60 + second - offset) as f64 + fraction;
    Some(TimeRange {
        start,
        end: start + width,
    })
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let slice = b.get(at..at + n)?;
    let mut v: i64 = 0;
    for &c in slice {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

fn expect(b: &[u8], at: usize, c: u8) -> Option<()> {
    (b.get(at) == Some(&c)).then_some(())
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Compares dotted versions component by component, numerically where both components are
/// numbers (`1.9.0 < 1.14.5`), missing components counting as 0 (`1.14 == 1.14.0`).
pub(crate) fn version_cmp(a: &str, b: &str) -> Ordering {
    let a = a.trim().trim_start_matches(['v', 'V']);
    let b = b.trim().trim_start_matches(['v', 'V']);
    let mut xs = a.split('.');
    let mut ys = b.split('.');
    loop {
        match (xs.next(), ys.next()) {
            (None, None) => return Ordering::Equal,
            (x, y) => {
                let x = x.unwrap_or("0");
                let y = y.unwrap_or("0");
                let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(p), Ok(q)) => p.cmp(&q),
                    _ => x.cmp(y),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_formats() {
        let t = 1_529_360_908.0; // 2018-06-18T22:28:28Z
        for s in [
            "2018-06-18T22:28:28+00:00",
            "2018-06-18T22:28:28Z",
            "2018-06-18T22:28:28",
        ] {
            assert_eq!(
                parse_time(s),
                Some(TimeRange {
                    start: t,
                    end: t + 1.0
                }),
                "{s}"
            );
        }
        assert_eq!(
            parse_time("2018-06-18"),
            Some(TimeRange {
                start: 1_529_280_000.0,
                end: 1_529_366_400.0
            })
        );
    }

    #[test]
    fn offsets_and_fractions() {
        let t = 1_529_360_908.0;
        assert_eq!(
            parse_time("2018-06-19T00:28:28+02:00").map(|r| r.start),
            Some(t)
        );
        assert_eq!(
            parse_time("2018-06-18T21:28:28-0100").map(|r| r.start),
            Some(t)
        );
        let r = parse_time("2018-06-18T22:28:28.5Z").expect("parses");
        assert_eq!(r.start, t + 0.5);
        assert!((r.end - (t + 0.6)).abs() < 1e-6);
        assert_eq!(parse_time("1970-01-01").map(|r| r.start), Some(0.0));
        assert_eq!(
            parse_time("2000-02-29").map(|r| r.start),
            Some(951_782_400.0)
        );
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "2018",
            "2018-6-18",
            "2018-13-01",
            "2018-02-30",
            "2019-02-29",
            "2018-06-18T25:00:00",
            "2018-06-18T22:28",
            "2018-06-18 22:28:28",
            "2018-06-18T22:28:28+",
            "2018-06-18T22:28:28Zjunk",
            "2018-06-18T22:28:28.",
            "yesterday",
            "２０１８-06-18",
        ] {
            assert_eq!(parse_time(s), None, "{s}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!(version_cmp("1.9.0", "1.14.5"), Ordering::Less);
        assert_eq!(version_cmp("1.14", "1.14.0"), Ordering::Equal);
        assert_eq!(version_cmp("v1.20.1", "1.20.0"), Ordering::Greater);
        assert_eq!(version_cmp("1.2.3-beta", "1.2.3"), Ordering::Greater);
    }
}
