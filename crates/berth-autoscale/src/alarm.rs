//! CloudWatch-style alarm evaluation over datapoints.

/// How a datapoint is compared with the threshold (`ComparisonOperator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    /// Breaches when `value > threshold`.
    GreaterThanThreshold,
    /// Breaches when `value >= threshold`.
    GreaterThanOrEqualToThreshold,
    /// Breaches when `value < threshold`.
    LessThanThreshold,
    /// Breaches when `value <= threshold`.
    LessThanOrEqualToThreshold,
}

impl Comparison {
    /// Whether `value` breaches `threshold`. NaN never breaches.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::GreaterThanThreshold => value > threshold,
            Comparison::GreaterThanOrEqualToThreshold => value >= threshold,
            Comparison::LessThanThreshold => value < threshold,
            Comparison::LessThanOrEqualToThreshold => value <= threshold,
        }
    }
}

/// An alarm's state, as CloudWatch names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlarmState {
    /// `OK`: enough datapoints, and not all of the window breaches.
    Ok,
    /// `ALARM`: every datapoint in the window breaches; policies act on this.
    Alarm,
    /// `INSUFFICIENT_DATA`: fewer datapoints than the window needs; nothing is decided.
    InsufficientData,
}

/// `Alarm` when the last `evaluation_periods` datapoints all breach, `InsufficientData` when
/// there are fewer than that (or `evaluation_periods` is 0), `Ok` otherwise. `values` is
/// `(time, value)`, ascending; only its order matters here.
pub fn alarm_state(
    values: &[(f64, f64)],
    threshold: f64,
    op: Comparison,
    evaluation_periods: usize,
) -> AlarmState {
    if evaluation_periods == 0 || values.len() < evaluation_periods {
        return AlarmState::InsufficientData;
    }
    let window = &values[values.len() - evaluation_periods..];
    if window.iter().all(|&(_, v)| op.breaches(v, threshold)) {
        AlarmState::Alarm
    } else {
        AlarmState::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(vs: &[f64]) -> Vec<(f64, f64)> {
        vs.iter()
            .enumerate()
            .map(|(i, v)| (i as f64 * 10.0, *v))
            .collect()
    }

    #[test]
    fn last_n_must_all_breach() {
        use Comparison::*;
        let v = pts(&[90.0, 10.0, 70.0, 80.0, 61.0]);
        assert_eq!(
            alarm_state(&v, 60.0, GreaterThanThreshold, 3),
            AlarmState::Alarm
        );
        assert_eq!(
            alarm_state(&v, 60.0, GreaterThanThreshold, 4),
            AlarmState::Ok
        );
        assert_eq!(
            alarm_state(&v, 60.0, GreaterThanThreshold, 6),
            AlarmState::InsufficientData
        );
        assert_eq!(
            alarm_state(&v, 60.0, GreaterThanThreshold, 0),
            AlarmState::InsufficientData
        );
        assert_eq!(
            alarm_state(&v, 61.0, GreaterThanThreshold, 1),
            AlarmState::Ok
        );
        assert_eq!(
            alarm_state(&v, 61.0, GreaterThanOrEqualToThreshold, 1),
            AlarmState::Alarm
        );
        assert_eq!(alarm_state(&v, 61.0, LessThanThreshold, 1), AlarmState::Ok);
        assert_eq!(
            alarm_state(&v, 61.0, LessThanOrEqualToThreshold, 1),
            AlarmState::Alarm
        );
        assert_eq!(
            alarm_state(&pts(&[f64::NAN]), 0.0, LessThanThreshold, 1),
            AlarmState::Ok
        );
    }
}
