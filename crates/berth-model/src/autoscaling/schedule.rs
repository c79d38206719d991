//! Scheduled actions and their schedule expressions (`at(...)`, `rate(...)`, six-field
//! `cron(...)`), parsed and checked here so the API edge and the autoscaler read them alike.
//! Split from the records because the expression parsing is a small language of its own.

use serde::{Deserialize, Serialize};

use super::validation;
use crate::ApiError;

/// The capacity bounds a scheduled action sets on its target when it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalableTargetAction {
    /// The new minimum capacity (unchanged when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_capacity: Option<u32>,
    /// The new maximum capacity (unchanged when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_capacity: Option<u32>,
}

/// A scheduled action (PutScheduledAction), in Application Auto Scaling's wire form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduledAction {
    /// The action's name (unique per target).
    pub scheduled_action_name: String,
    /// The action's ARN.
    #[serde(rename = "ScheduledActionARN")]
    pub scheduled_action_arn: String,
    /// Always [`ECS_NAMESPACE`](super::ECS_NAMESPACE).
    pub service_namespace: String,
    /// The schedule expression: `at(...)`, `rate(...)` or `cron(...)` (see [`Schedule`]).
    pub schedule: String,
    /// The IANA time zone the expression is read in (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The target's resource id (`service/CLUSTER/SERVICE`).
    pub resource_id: String,
    /// Always [`ECS_DESIRED_COUNT`](super::ECS_DESIRED_COUNT).
    pub scalable_dimension: String,
    /// The action does not run before this time (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<f64>,
    /// The action does not run after this time (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    /// The capacity bounds to set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalable_target_action: Option<ScalableTargetAction>,
    /// When the action was created, in epoch seconds.
    pub creation_time: f64,
}

/// The unit of a `rate(...)` expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    /// `minute` / `minutes`.
    Minutes,
    /// `hour` / `hours`.
    Hours,
    /// `day` / `days`.
    Days,
}

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// `at(yyyy-mm-ddThh:mm:ss)`: once, at this many seconds after the epoch, read as UTC
    /// (the action's `Timezone` shifts it).
    At(i64),
    /// `rate(N unit)`: every N units.
    Rate {
        /// How many units between runs (at least 1).
        value: u32,
        /// The unit of `value`.
        unit: RateUnit,
    },
    /// `cron(min hour day-of-month month day-of-week year)`: the six fields as given.
    Cron(Vec<String>),
}

impl Schedule {
    /// Parses and checks a schedule expression, with Application Auto Scaling's error for a bad
    /// one.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let bad = |why: &str| validation(format!("Invalid schedule expression {s:?}: {why}"));
        let inner = |p: &str| {
            s.strip_prefix(p)
                .and_then(|r| r.strip_suffix(')'))
                .map(str::trim)
        };
        if let Some(t) = inner("at(") {
            return parse_at(t)
                .map(Schedule::At)
                .ok_or_else(|| bad("expected at(yyyy-mm-ddThh:mm:ss)."));
        }
        if let Some(r) = inner("rate(") {
            let mut parts = r.split_whitespace();
            let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad("expected rate(N minutes|hours|days)."));
            };
            let value: u32 = n
                .parse()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| bad("the rate must be a positive whole number."))?;
            let unit = match (unit, value) {
                ("minute", 1) | ("minutes", 2..) => RateUnit::Minutes,
                ("hour", 1) | ("hours", 2..) => RateUnit::Hours,
                ("day", 1) | ("days", 2..) => RateUnit::Days,
                _ => {
                    return Err(bad(
                        "the unit must be minute(s), hour(s) or day(s), singular only for 1.",
                    ))
                }
            };
            return Ok(Schedule::Rate { value, unit });
        }
        if let Some(c) = inner("cron(") {
            let fields: Vec<String> = c.split_whitespace().map(str::to_owned).collect();
            if fields.len() != 6 {
                return Err(bad(
                    "cron needs six fields: minutes hours day-of-month month day-of-week year.",
                ));
            }
            let ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (1, 7), (1970, 2199)];
            for (i, (f, (lo, hi))) in fields.iter().zip(ranges).enumerate() {
                if !cron_field_ok(f, lo, hi, i) {
                    return Err(bad(&format!("cron field {} ({f:?}) is not valid.", i + 1)));
                }
            }
            if (fields[2] == "?") == (fields[4] == "?") {
                return Err(bad(
                    "exactly one of day-of-month and day-of-week must be '?'.",
                ));
            }
            return Ok(Schedule::Cron(fields));
        }
        Err(bad("expected at(...), rate(...) or cron(...)."))
    }

    /// The period of a `rate(...)` schedule in seconds.
    pub fn rate_secs(&self) -> Option<u64> {
        match self {
            Schedule::Rate { value, unit } => Some(
                u64::from(*value)
                    * match unit {
                        RateUnit::Minutes => 60,
                        RateUnit::Hours => 3600,
                        RateUnit::Days => 86_400,
                    },
            ),
            _ => None,
        }
    }
}

fn cron_field_ok(f: &str, lo: u32, hi: u32, index: usize) -> bool {
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    if f == "?" {
        return index == 2 || index == 4;
    }
    if f == "L" && (index == 2 || index == 4) {
        return true;
    }
    let value_ok = |v: &str| -> bool {
        let v = v.to_ascii_uppercase();
        if index == 3 && MONTHS.contains(&v.as_str()) {
            return true;
        }
        if index == 4 && DAYS.contains(&v.as_str()) {
            return true;
        }
        // `5L` (last friday), `3#2` (second tuesday), `15W` (nearest weekday).
        let v = match index {
            4 => v
                .split('#')
                .next()
                .unwrap_or("")
                .trim_end_matches('L')
                .to_owned(),
            2 => v.trim_end_matches('W').to_owned(),
            _ => v,
        };
        v.parse::<u32>().is_ok_and(|n| (lo..=hi).contains(&n))
    };
    f.split(',').all(|part| {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        if step.is_some_and(|s| s.parse::<u32>().map_or(true, |n| n == 0)) {
            return false;
        }
        if range == "*" {
            return true;
        }
        match range.split_once('-') {
            Some((a, b)) => value_ok(a) && value_ok(b),
            None => value_ok(range),
        }
    })
}

/// `yyyy-mm-ddThh:mm:ss` as seconds after the epoch (UTC).
pub fn parse_at(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let p = s.get(r)?;
        p.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| p.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo)
        || d < 1
        || d > days_in[(mo - 1) as usize]
        || h > 23
        || mi > 59
        || sec > 59
    {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse() {
        assert_eq!(
            Schedule::parse("at(1970-01-02T00:00:01)"),
            Ok(Schedule::At(86_401))
        );
        assert_eq!(
            Schedule::parse("at(2024-02-29T12:30:00)"),
            Ok(Schedule::At(1_709_209_800))
        );
        assert!(Schedule::parse("at(2023-02-29T12:30:00)").is_err());
        assert!(Schedule::parse("at(2023-02-28 12:30:00)").is_err());
        assert_eq!(
            Schedule::parse("rate(5 minutes)").unwrap().rate_secs(),
            Some(300)
        );
        assert_eq!(
            Schedule::parse("rate(1 day)").unwrap().rate_secs(),
            Some(86_400)
        );
        assert!(Schedule::parse("rate(1 days)").is_err());
        assert!(Schedule::parse("rate(0 minutes)").is_err());
        assert!(Schedule::parse("rate(5 weeks)").is_err());
        assert!(Schedule::parse("cron(0 18 ? * MON-FRI *)").is_ok());
        assert!(Schedule::parse("cron(0/15 * * * ? *)").is_ok());
        assert!(Schedule::parse("cron(0 10 ? * 6L 2030)").is_ok());
        assert!(Schedule::parse("cron(0 18 * * MON-FRI *)").is_err());
        assert!(Schedule::parse("cron(0 18 ? * MON-FRI)").is_err());
        assert!(Schedule::parse("cron(61 18 ? * MON *)").is_err());
        assert!(Schedule::parse("cron(0 18 ? 13 MON *)").is_err());
        assert!(Schedule::parse("every day").is_err());
    }
}
