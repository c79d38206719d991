//! Timestamps: the `YYYYMMDDTHHMMSSZ` form SigV4 signs, the HTTP `Date`
//! header form it falls back to, and `SystemTime`.

use std::time::{SystemTime, UNIX_EPOCH};

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// A UTC instant at second precision, kept within years 0000..=9999 so that
/// it always has a four-digit `YYYYMMDDTHHMMSSZ` form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timestamp(i64);

impl Timestamp {
    /// 0000-01-01T00:00:00Z.
    const MIN: i64 = -62_167_219_200;
    /// 9999-12-31T23:59:59Z.
    const MAX: i64 = 253_402_300_799;

    /// Seconds since the Unix epoch, clamped to the supported range.
    pub(crate) fn from_unix(secs: i64) -> Self {
        Timestamp(secs.clamp(Self::MIN, Self::MAX))
    }

    /// Truncates to whole seconds (towards the past).
    pub(crate) fn from_system_time(t: SystemTime) -> Self {
        let secs = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => {
                let d = e.duration();
                let whole = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                let partial = i64::from(d.subsec_nanos() > 0);
                0i64.saturating_sub(whole).saturating_sub(partial)
            }
        };
        Self::from_unix(secs)
    }

    #[cfg(test)]
    pub(crate) fn unix(self) -> i64 {
        self.0
    }

    /// `self + secs`, clamped.
    pub(crate) fn plus(self, secs: i64) -> Self {
        Self::from_unix(self.0.saturating_add(secs))
    }

    /// Parses the ISO 8601 basic form `YYYYMMDDTHHMMSSZ` (as in `x-amz-date`).
    pub(crate) fn parse_amz(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
            return None;
        }
        let year = num(s.get(0..4)?)?;
        let month = num(s.get(4..6)?)?;
        let day = num(s.get(6..8)?)?;
        let hour = num(s.get(9..11)?)?;
        let minute = num(s.get(11..13)?)?;
        let second = num(s.get(13..15)?)?;
        from_parts(year, month, day, hour, minute, second, 0)
    }

    /// Parses an HTTP `Date` header: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`)
    /// or the RFC 2822 form with a numeric zone botocore sends
    /// (`Fri, 14 Mar 2025 15:09:26 -0000`). The weekday is optional and not checked.
    pub(crate) fn parse_http(s: &str) -> Option<Self> {
        let s = s.trim();
        let s = match s.split_once(',') {
            Some((_weekday, rest)) => rest,
            None => s,
        };
        let mut parts = s.split_whitespace();
        let day = num(parts.next()?)?;
        let month = month_number(parts.next()?)?;
        let year_text = parts.next()?;
        if year_text.len() != 4 {
            return None;
        }
        let year = num(year_text)?;
        let mut hms = parts.next()?.split(':');
        let hour = num(hms.next()?)?;
        let minute = num(hms.next()?)?;
        let second = num(hms.next()?)?;
        if hms.next().is_some() {
            return None;
        }
        let offset = zone_offset_seconds(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        from_parts(year, month, day, hour, minute, second, offset)
    }

    /// The ISO 8601 basic form, `YYYYMMDDTHHMMSSZ`.
    pub(crate) fn to_amz(self) -> String {
        match OffsetDateTime::from_unix_timestamp(self.0) {
            Ok(t) => format!(
                "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            // Unreachable: the value is clamped to years 0000..=9999.
            Err(_) => "19700101T000000Z".to_owned(),
        }
    }
}

/// A short run of ASCII digits as a number.
fn num(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let index = MONTHS.iter().position(|m| name.eq_ignore_ascii_case(m))?;
    u32::try_from(index + 1).ok()
}

/// The zone's offset from UTC in seconds: `GMT`, `UT`, `UTC`, `Z` or `+HHMM`/`-HHMM`.
fn zone_offset_seconds(zone: &str) -> Option<i64> {
    if ["GMT", "UT", "UTC", "Z"]
        .iter()
        .any(|z| zone.eq_ignore_ascii_case(z))
    {
        return Some(0);
    }
    let (sign, digits) = match zone.as_bytes().first()? {
        b'+' => (1, zone.get(1..)?),
        b'-' => (-1, zone.get(1..)?),
        _ => return None,
    };
    if digits.len() != 4 {
        return None;
    }
    let hours = i64::from(num(digits.get(0..2)?)?);
    let minutes = i64::from(num(digits.get(2..4)?)?);
    if minutes >= 60 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60))
}

/// Builds a timestamp from calendar fields given in a zone `offset` seconds
/// east of UTC. `None` if any field is out of range.
fn from_parts(
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    offset: i64,
) -> Option<Timestamp> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date =
        Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()?;
    let time = Time::from_hms(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
    )
    .ok()?;
    let local = PrimitiveDateTime::new(date, time)
        .assume_utc()
        .unix_timestamp();
    Some(Timestamp::from_unix(local.checked_sub(offset)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn amz_round_trip() {
        let t = Timestamp::parse_amz("20250314T150926Z");
        assert_eq!(t, Some(Timestamp::from_unix(1_741_964_966)));
        assert_eq!(
            Timestamp::from_unix(1_741_964_966).to_amz(),
            "20250314T150926Z"
        );
        assert_eq!(Timestamp::from_unix(0).to_amz(), "19700101T000000Z");
    }

    #[test]
    fn amz_rejects_malformed() {
        for bad in [
            "",
            "20250314",
            "20250314T150926",
            "20250314T150926z",
            "2025-03-14T15:09:26Z",
            "20251314T150926Z",
            "20250230T150926Z",
            "20250314T250926Z",
            "20250314T150960Z",
            "2025031éT15092Z",
            "+0250314T150926Z",
            "20250314T15 926Z",
        ] {
            assert_eq!(Timestamp::parse_amz(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn http_dates() {
        let expected = Some(Timestamp::from_unix(1_741_964_966));
        assert_eq!(
            Timestamp::parse_http("Fri, 14 Mar 2025 15:09:26 GMT"),
            expected
        );
        assert_eq!(
            Timestamp::parse_http("Fri, 14 Mar 2025 15:09:26 -0000"),
            expected
        );
        assert_eq!(Timestamp::parse_http("14 Mar 2025 15:09:26 UTC"), expected);
        assert_eq!(
            Timestamp::parse_http("Fri, 14 Mar 2025 16:09:26 +0100"),
            expected
        );
        assert_eq!(
            Timestamp::parse_http("Fri, 14 Mar 2025 10:09:26 -0500"),
            expected
        );
        for bad in [
            "",
            "Fri, 14 Mar 2025",
            "Fri, 14 Mar 2025 15:09:26",
            "Fri, 14 Foo 2025 15:09:26 GMT",
            "Fri, 32 Mar 2025 15:09:26 GMT",
            "Fri, 14 Mar 25 15:09:26 GMT",
            "Fri, 14 Mar 2025 15:09 GMT",
            "Fri, 14 Mar 2025 15:09:26:00 GMT",
            "Fri, 14 Mar 2025 15:09:26 +01",
            "Fri, 14 Mar 2025 15:09:26 +0160",
            "Fri, 14 Mar 2025 15:09:26 GMT extra",
            "Fri, 14 Mar 2025 15:09:26 PST",
        ] {
            assert_eq!(Timestamp::parse_http(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn system_time_and_clamping() {
        let t = UNIX_EPOCH + Duration::from_millis(1_741_964_966_900);
        assert_eq!(Timestamp::from_system_time(t).unix(), 1_741_964_966);
        let before = UNIX_EPOCH - Duration::from_millis(1_500);
        assert_eq!(Timestamp::from_system_time(before).unix(), -2);
        let far = UNIX_EPOCH + Duration::from_secs(u64::MAX / 4);
        assert_eq!(
            Timestamp::from_system_time(far).to_amz(),
            "99991231T235959Z"
        );
        assert_eq!(
            Timestamp::from_unix(i64::MIN).plus(-5).to_amz(),
            "00000101T000000Z"
        );
        assert_eq!(
            Timestamp::from_unix(i64::MAX).plus(i64::MAX).to_amz(),
            "99991231T235959Z"
        );
    }
}
