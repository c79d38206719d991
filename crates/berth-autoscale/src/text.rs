//! The words AWS puts in scaling activities.

use crate::policy::{Direction, Proposal};
use crate::scheduled::{ScheduledAction, ScheduledChange};

/// The name Application Auto Scaling gives a target tracking policy's alarms:
/// `TargetTracking-service/default/web-AlarmHigh-<id>` (`AlarmLow` for scale-in).
/// `resource_id` is the scalable target's (`service/<cluster>/<service>`); `id` any unique
/// suffix (AWS uses a UUID).
pub fn tracking_alarm_name(resource_id: &str, direction: Direction, id: &str) -> String {
    let which = match direction {
        Direction::Out => "AlarmHigh",
        Direction::In => "AlarmLow",
    };
    format!("TargetTracking-{resource_id}-{which}-{id}")
}

/// A scaling activity's `(Description, Cause)` for a policy's proposal, as AWS writes them
/// for ECS: `("Setting desired count to 4.", "monitor alarm <alarm> in state ALARM
/// triggered policy cpu60")`.
pub fn cause_text(p: &Proposal, alarm_name: &str) -> (String, String) {
    (
        format!("Setting desired count to {}.", p.desired),
        format!(
            "monitor alarm {alarm_name} in state ALARM triggered policy {}",
            p.policy
        ),
    )
}

/// A scaling activity's `(Description, Cause)` for a scheduled action:
/// `("Setting min capacity to 2 and max capacity to 10", "scheduled action name night was
/// triggered")`.
pub fn scheduled_cause_text(a: &ScheduledAction, change: &ScheduledChange) -> (String, String) {
    (
        format!(
            "Setting min capacity to {} and max capacity to {}",
            change.min, change.max
        ),
        format!("scheduled action name {} was triggered", a.name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::AlarmKind;

    #[test]
    fn words_match_aws() {
        let alarm = tracking_alarm_name("service/default/web", Direction::Out, "abc");
        assert_eq!(alarm, "TargetTracking-service/default/web-AlarmHigh-abc");
        let p = Proposal {
            policy: "cpu60".into(),
            desired: 4,
            direction: Direction::Out,
            alarm: AlarmKind::High,
            metric_value: 80.0,
        };
        let (d, c) = cause_text(&p, &alarm);
        assert_eq!(d, "Setting desired count to 4.");
        assert_eq!(
            c,
            "monitor alarm TargetTracking-service/default/web-AlarmHigh-abc in state ALARM triggered policy cpu60"
        );
        let a = ScheduledAction {
            name: "night".into(),
            min: Some(2),
            max: None,
        };
        let ch = ScheduledChange {
            min: 2,
            max: 10,
            desired: None,
        };
        assert_eq!(
            scheduled_cause_text(&a, &ch),
            (
                "Setting min capacity to 2 and max capacity to 10".to_string(),
                "scheduled action name night was triggered".to_string()
            )
        );
    }
}
