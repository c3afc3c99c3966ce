//! Job queue rules: states and retry back-off.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its run-at time or a free worker (also after a failed attempt).
    Queued,
    /// Claimed by a worker that holds a lease.
    Running,
    Done,
    /// Out of attempts: kept for inspection and manual retry.
    Dead,
}

impl TryFrom<String> for JobState {
    type Error = crate::names::UnknownName;

    fn try_from(s: String) -> Result<Self, crate::names::UnknownName> {
        Self::parse(&s).ok_or(crate::names::UnknownName {
            of: "job state",
            name: s,
        })
    }
}

impl JobState {
    pub const ALL: [JobState; 4] = [
        JobState::Queued,
        JobState::Running,
        JobState::Done,
        JobState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

/// Retry delays grow as `base · 2^(attempt-1)`, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base_ms: i64,
    pub max_ms: i64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base_ms: 5_000,
            max_ms: 3_600_000,
        }
    }
}

impl Backoff {
    /// Delay before the next try after `attempts` tries have failed (`attempts` ≥ 1).
    pub fn delay_ms(&self, attempts: i64) -> i64 {
        let exponent = (attempts.max(1) - 1).min(40) as u32;
        self.base_ms
            .saturating_mul(1_i64 << exponent)
            .min(self.max_ms)
    }
}

/// What becomes of a job whose attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    RetryAt(i64),
    DeadLetter,
}

pub fn after_failure(
    attempts: i64,
    max_attempts: i64,
    now_ms: i64,
    backoff: Backoff,
) -> AfterFailure {
    if attempts >= max_attempts {
        AfterFailure::DeadLetter
    } else {
        AfterFailure::RetryAt(now_ms + backoff.delay_ms(attempts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let b = Backoff {
            base_ms: 1000,
            max_ms: 10_000,
        };
        let delays: Vec<i64> = (1..=6).map(|a| b.delay_ms(a)).collect();
        assert_eq!(delays, [1000, 2000, 4000, 8000, 10_000, 10_000]);
        assert_eq!(b.delay_ms(1000), 10_000);
    }

    #[test]
    fn failures_retry_until_the_last_attempt() {
        let b = Backoff {
            base_ms: 1000,
            max_ms: 60_000,
        };
        assert_eq!(after_failure(1, 3, 50, b), AfterFailure::RetryAt(1050));
        assert_eq!(after_failure(2, 3, 50, b), AfterFailure::RetryAt(2050));
        assert_eq!(after_failure(3, 3, 50, b), AfterFailure::DeadLetter);
    }

    #[test]
    fn states_round_trip() {
        for state in JobState::ALL {
            assert_eq!(JobState::parse(state.as_str()), Some(state));
        }
        assert_eq!(JobState::parse("lost"), None);
    }
}
