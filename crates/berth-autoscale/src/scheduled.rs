//! Scheduled actions.

use thiserror::Error;

use crate::policy::Target;

/// A scheduled action as it fires (`ScalableTargetAction`): a new minimum and/or maximum.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScheduledAction {
    /// `ScheduledActionName`, quoted in the activity's cause text.
    pub name: String,
    /// `MinCapacity`; `None` keeps the target's minimum.
    pub min: Option<u32>,
    /// `MaxCapacity`; `None` keeps the target's maximum.
    pub max: Option<u32>,
}

/// What applying a scheduled action changes: the target's new bounds, and the desired count
/// if the current one falls outside them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledChange {
    /// The target's minimum capacity after the action.
    pub min: u32,
    /// The target's maximum capacity after the action.
    pub max: u32,
    /// The new desired count, when the current one is outside `[min, max]`; `None` leaves
    /// it alone.
    pub desired: Option<u32>,
}

/// A scheduled action that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScheduleError {
    #[error("scheduled action would set minimum capacity {min} above maximum capacity {max}")]
    /// The resulting minimum would exceed the resulting maximum.
    InvalidRange {
        /// The minimum capacity the action would leave.
        min: u32,
        /// The maximum capacity the action would leave.
        max: u32,
    },
}

/// Applies scheduled action `a` to target `t` whose desired count is `current`: bounds the
/// action leaves out stay as they are; the desired count becomes `clamp(current, min, max)`.
/// `Ok(None)` while scheduled scaling is suspended.
pub fn scheduled(
    a: &ScheduledAction,
    current: u32,
    t: &Target,
) -> Result<Option<ScheduledChange>, ScheduleError> {
    if t.scheduled_suspended {
        return Ok(None);
    }
    let min = a.min.unwrap_or(t.min);
    let max = a.max.unwrap_or(t.max);
    if min > max {
        return Err(ScheduleError::InvalidRange { min, max });
    }
    let desired = current.max(min).min(max);
    Ok(Some(ScheduledChange {
        min,
        max,
        desired: (desired != current).then_some(desired),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(min: Option<u32>, max: Option<u32>) -> ScheduledAction {
        ScheduledAction {
            name: "night".into(),
            min,
            max,
        }
    }

    #[test]
    fn clamps_current_into_the_new_bounds() {
        let t = Target {
            min: 1,
            max: 10,
            ..Default::default()
        };
        let ch = |a, c| scheduled(&a, c, &t);
        assert_eq!(
            ch(action(Some(5), Some(20)), 3),
            Ok(Some(ScheduledChange {
                min: 5,
                max: 20,
                desired: Some(5)
            }))
        );
        assert_eq!(
            ch(action(None, Some(2)), 6),
            Ok(Some(ScheduledChange {
                min: 1,
                max: 2,
                desired: Some(2)
            }))
        );
        assert_eq!(
            ch(action(Some(2), None), 6),
            Ok(Some(ScheduledChange {
                min: 2,
                max: 10,
                desired: None
            }))
        );
        assert_eq!(
            ch(action(Some(11), None), 6),
            Err(ScheduleError::InvalidRange { min: 11, max: 10 })
        );
        let suspended = Target {
            scheduled_suspended: true,
            ..t
        };
        assert_eq!(scheduled(&action(Some(5), None), 1, &suspended), Ok(None));
    }
}
