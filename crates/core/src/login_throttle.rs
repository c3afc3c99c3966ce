//! How failed logins slow a guesser down: per account and per client address, a number
//! of free failures, then a lock that doubles with each further failure up to a ceiling.
//! A success clears the account's counter; a quiet day forgets either.

/// The rule for one kind of key (an account, or a client address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Failures in a row that cost nothing.
    pub free_failures: i64,
    /// The lock after the first failure past the free ones.
    pub first_lock_ms: i64,
    /// The longest lock.
    pub max_lock_ms: i64,
    /// Failures older than this (since the last one) are forgotten.
    pub forget_after_ms: i64,
}

/// An account: ten tries, then one minute, doubling up to an hour.
pub const ACCOUNT: Policy = Policy {
    free_failures: 10,
    first_lock_ms: 60_000,
    max_lock_ms: 3_600_000,
    forget_after_ms: 86_400_000,
};

/// A client address, which may try many accounts (or sit behind a shared NAT): twenty
/// tries, then the same growth.
pub const CLIENT: Policy = Policy {
    free_failures: 20,
    first_lock_ms: 60_000,
    max_lock_ms: 3_600_000,
    forget_after_ms: 86_400_000,
};

/// A key's record: failures in a row, when it is locked until, when it last failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct State {
    pub failures: i64,
    pub locked_until: i64,
    pub last_failure: i64,
}

impl Policy {
    /// The state after one more failure at `now`.
    pub fn fail(&self, before: State, now: i64) -> State {
        let failures = if now - before.last_failure > self.forget_after_ms {
            1
        } else {
            before.failures.saturating_add(1)
        };
        let past_free = failures - self.free_failures;
        let locked_until = if past_free > 0 {
            let doublings = u32::try_from(past_free - 1).unwrap_or(u32::MAX).min(32);
            let lock = self
                .first_lock_ms
                .saturating_mul(1_i64 << doublings)
                .min(self.max_lock_ms);
            now + lock
        } else {
            0
        };
        State {
            failures,
            locked_until,
            last_failure: now,
        }
    }
}

impl State {
    /// Milliseconds until the lock ends, if locked at `now`.
    pub fn locked_for(&self, now: i64) -> Option<i64> {
        (self.locked_until > now).then(|| self.locked_until - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_failures_then_a_doubling_lock_up_to_the_ceiling() {
        let mut state = State::default();
        let mut now = 1_000_000;
        for _ in 0..ACCOUNT.free_failures {
            state = ACCOUNT.fail(state, now);
            assert_eq!(state.locked_for(now), None);
            now += 1_000;
        }
        let mut locks = Vec::new();
        for _ in 0..9 {
            state = ACCOUNT.fail(state, now);
            locks.push(state.locked_for(now).unwrap());
            now = state.locked_until;
        }
        assert_eq!(
            locks,
            [
                60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000, 3_600_000,
                3_600_000
            ]
        );
        assert_eq!(state.locked_for(state.locked_until), None);
    }

    #[test]
    fn a_quiet_day_forgets() {
        let mut state = State::default();
        for i in 0..CLIENT.free_failures {
            state = CLIENT.fail(state, i);
        }
        let later = CLIENT.fail(state, CLIENT.free_failures + CLIENT.forget_after_ms + 1);
        assert_eq!((later.failures, later.locked_until), (1, 0));
        let soon = CLIENT.fail(state, CLIENT.free_failures + 10);
        assert!(soon.locked_until > 0);
    }

    #[test]
    fn a_huge_count_does_not_overflow() {
        let state = State {
            failures: i64::MAX - 1,
            locked_until: 0,
            last_failure: 0,
        };
        let next = ACCOUNT.fail(state, 1);
        assert_eq!(next.locked_until, 1 + ACCOUNT.max_lock_ms);
    }
}
