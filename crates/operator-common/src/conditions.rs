//! Kubernetes conditions, updated so that `lastTransitionTime` moves only when a status flips.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// `True`, `False` or `Unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// It is not known whether the condition holds.
    Unknown,
}

impl ConditionStatus {
    /// The status as Kubernetes writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(holds: bool) -> Self {
        if holds {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

/// The content of a condition, without its transition time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionUpdate<'a> {
    /// The condition type, e.g. `Ready`.
    pub type_: &'a str,
    /// Whether it holds.
    pub status: ConditionStatus,
    /// CamelCase reason.
    pub reason: &'a str,
    /// Human-readable detail: what is wrong and what to do.
    pub message: &'a str,
    /// The generation of the spec this condition was computed from.
    pub observed_generation: Option<i64>,
}

/// Sets `update` in `conditions`. `lastTransitionTime` becomes `now` only for a new condition or
/// when the status flips; otherwise it is kept. Returns whether `conditions` changed.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    update: ConditionUpdate<'_>,
    now: Time,
) -> bool {
    let status = update.status.as_str();
    let existing = conditions.iter_mut().find(|c| c.type_ == update.type_);
    let transition_time = match &existing {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => now,
    };
    let next = Condition {
        type_: update.type_.to_owned(),
        status: status.to_owned(),
        reason: update.reason.to_owned(),
        message: update.message.to_owned(),
        observed_generation: update.observed_generation,
        last_transition_time: transition_time,
    };
    match existing {
        Some(c) if *c == next => false,
        Some(c) => {
            *c = next;
            true
        }
        None => {
            conditions.push(next);
            true
        }
    }
}

/// The condition of type `type_`, if set.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of type `type_` is set and `True`.
pub fn is_condition_true(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    fn ready(status: ConditionStatus, message: &str) -> ConditionUpdate<'_> {
        ConditionUpdate {
            type_: "Ready",
            status,
            reason: "Test",
            message,
            observed_generation: Some(1),
        }
    }

    #[test]
    fn transition_time_moves_only_when_the_status_flips() {
        let mut conditions = Vec::new();
        assert!(set_condition(
            &mut conditions,
            ready(ConditionStatus::False, "starting"),
            at(10)
        ));
        assert_eq!(conditions[0].last_transition_time, at(10));

        // Same content: nothing changes, so nothing needs writing.
        assert!(!set_condition(
            &mut conditions,
            ready(ConditionStatus::False, "starting"),
            at(20)
        ));
        assert_eq!(conditions[0].last_transition_time, at(10));

        // New message, same status: the message changes, the transition time does not.
        assert!(set_condition(
            &mut conditions,
            ready(ConditionStatus::False, "pulling"),
            at(30)
        ));
        assert_eq!(conditions[0].message, "pulling");
        assert_eq!(conditions[0].last_transition_time, at(10));

        // Status flips: the transition time moves.
        assert!(set_condition(
            &mut conditions,
            ready(ConditionStatus::True, "up"),
            at(40)
        ));
        assert_eq!(conditions[0].last_transition_time, at(40));
        assert!(is_condition_true(&conditions, "Ready"));
        assert_eq!(conditions.len(), 1);
    }

    #[test]
    fn conditions_of_other_types_are_kept() {
        let mut conditions = Vec::new();
        set_condition(&mut conditions, ready(ConditionStatus::True, "up"), at(1));
        let registered = ConditionUpdate {
            type_: "Registered",
            ..ready(ConditionStatus::Unknown, "waiting for Synapse")
        };
        set_condition(&mut conditions, registered, at(2));
        assert_eq!(conditions.len(), 2);
        assert!(is_condition_true(&conditions, "Ready"));
        assert!(!is_condition_true(&conditions, "Registered"));
        assert_eq!(
            find_condition(&conditions, "Registered").unwrap().status,
            "Unknown"
        );
        assert!(find_condition(&conditions, "Other").is_none());
    }
}
