//! IP warm-up: a schedule of daily quotas, advanced one day at a time, with safety
//! thresholds that quarantine an IP whose recipients bounce or complain too much.

use serde::{Deserialize, Serialize};

/// Seed 002's six weeks: 100, 500, 1 000, 5 000, 10 000 and 50 000 messages a day.
pub const DEFAULT_WEEKLY: [i64; 6] = [100, 500, 1_000, 5_000, 10_000, 50_000];

/// The default schedule as 42 daily quotas.
pub fn default_schedule() -> Vec<i64> {
    DEFAULT_WEEKLY
        .iter()
        .flat_map(|quota| std::iter::repeat_n(*quota, 7))
        .collect()
}

/// Where a warm-up plan is: running (`active`), held (`paused`, its IP gets no quota and
/// does not advance), finished (`completed`) or stopped (`cancelled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Active,
    Paused,
    Completed,
    Cancelled,
}

crate::names::names!(PlanStatus {
    Active => "active",
    Paused => "paused",
    Completed => "completed",
    Cancelled => "cancelled",
});

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("must list at least one daily quota")]
    Empty,
    #[error("may list at most 365 days")]
    TooLong,
    #[error("day {0}: a daily quota must be at least 1")]
    NotPositive(usize),
}

/// A custom schedule: 1 to 365 positive daily quotas.
pub fn check_schedule(schedule: &[i64]) -> Result<(), ScheduleError> {
    if schedule.is_empty() {
        return Err(ScheduleError::Empty);
    }
    if schedule.len() > 365 {
        return Err(ScheduleError::TooLong);
    }
    match schedule.iter().position(|q| *q < 1) {
        Some(i) => Err(ScheduleError::NotPositive(i + 1)),
        None => Ok(()),
    }
}

/// The quota of a (1-based) day; the last day's quota after the end.
pub fn quota_for_day(schedule: &[i64], day: i64) -> i64 {
    let index = (day.max(1) - 1) as usize;
    schedule
        .get(index)
        .or(schedule.last())
        .copied()
        .unwrap_or(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// Moved to this day.
    Day(i64),
    /// The schedule is done: the IP becomes ACTIVE.
    Completed,
}

/// One day forward.
pub fn advance(schedule_len: usize, current_day: i64) -> Advance {
    if current_day >= schedule_len as i64 {
        Advance::Completed
    } else {
        Advance::Day(current_day + 1)
    }
}

/// The day a released IP restarts at: one week back, never before day 1.
pub fn release_day(current_day: i64, step_back_days: i64) -> i64 {
    (current_day - step_back_days).max(1)
}

/// Safety thresholds over a rolling window of the IP's own traffic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Safety {
    /// Bounces / sent above this → quarantine (seed 002: 5 %).
    pub max_bounce_rate: f64,
    /// Complaints / sent above this → quarantine (seed 002: 0.1 %).
    pub max_complaint_rate: f64,
    /// Fewer messages than this in the window are too few to judge.
    pub min_sample: i64,
}

impl Default for Safety {
    fn default() -> Self {
        Self {
            max_bounce_rate: 0.05,
            max_complaint_rate: 0.001,
            min_sample: 50,
        }
    }
}

/// Traffic of an IP over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    pub sent: i64,
    pub bounced: i64,
    pub complained: i64,
}

impl Traffic {
    pub fn bounce_rate(&self) -> f64 {
        ratio(self.bounced, self.sent)
    }
    pub fn complaint_rate(&self) -> f64 {
        ratio(self.complained, self.sent)
    }
}

fn ratio(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Why an IP must be quarantined, if it must.
pub fn safety_breach(traffic: Traffic, safety: Safety) -> Option<String> {
    if traffic.sent < safety.min_sample {
        return None;
    }
    let bounce = traffic.bounce_rate();
    let complaint = traffic.complaint_rate();
    if bounce > safety.max_bounce_rate {
        Some(format!(
            "bounce rate {:.2} % over {} messages exceeds {:.2} %",
            bounce * 100.0,
            traffic.sent,
            safety.max_bounce_rate * 100.0
        ))
    } else if complaint > safety.max_complaint_rate {
        Some(format!(
            "complaint rate {:.3} % over {} messages exceeds {:.3} %",
            complaint * 100.0,
            traffic.sent,
            safety.max_complaint_rate * 100.0
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_is_seed_002s() {
        let s = default_schedule();
        assert_eq!(s.len(), 42);
        assert_eq!(
            (
                quota_for_day(&s, 1),
                quota_for_day(&s, 7),
                quota_for_day(&s, 8)
            ),
            (100, 100, 500)
        );
        assert_eq!(
            (
                quota_for_day(&s, 15),
                quota_for_day(&s, 22),
                quota_for_day(&s, 29)
            ),
            (1_000, 5_000, 10_000)
        );
        assert_eq!(
            (quota_for_day(&s, 42), quota_for_day(&s, 99)),
            (50_000, 50_000)
        );
        assert_eq!(quota_for_day(&s, 0), 100);
    }

    #[test]
    fn advancing_and_completion() {
        assert_eq!(advance(42, 1), Advance::Day(2));
        assert_eq!(advance(42, 41), Advance::Day(42));
        assert_eq!(advance(42, 42), Advance::Completed);
        assert_eq!(release_day(10, 7), 3);
        assert_eq!(release_day(3, 7), 1);
    }

    #[test]
    fn custom_schedules_are_checked() {
        assert_eq!(check_schedule(&[]), Err(ScheduleError::Empty));
        assert_eq!(
            check_schedule(&[10, 0, 30]),
            Err(ScheduleError::NotPositive(2))
        );
        assert_eq!(check_schedule(&vec![1; 366]), Err(ScheduleError::TooLong));
        assert_eq!(check_schedule(&[10, 20, 30]), Ok(()));
    }

    #[test]
    fn safety_thresholds() {
        let safety = Safety::default();
        let t = |sent, bounced, complained| Traffic {
            sent,
            bounced,
            complained,
        };
        assert_eq!(
            safety_breach(t(40, 40, 0), safety),
            None,
            "too few to judge"
        );
        assert_eq!(
            safety_breach(t(1000, 50, 1), safety),
            None,
            "exactly 5 % and 0.1 % pass"
        );
        let bounce = safety_breach(t(1000, 51, 0), safety).unwrap();
        assert!(bounce.starts_with("bounce rate 5.10 %"), "{bounce}");
        let complaint = safety_breach(t(1000, 0, 2), safety).unwrap();
        assert!(
            complaint.starts_with("complaint rate 0.200 %"),
            "{complaint}"
        );
    }
}
