//! Request rate limits as a generic cell rate algorithm (GCRA): a key's state is one
//! number, its theoretical arrival time (TAT), so nodes can share it through one row of
//! the database and update it in one statement (`ee_store::rate_limits`, whose SQL is
//! this rule; a test holds the two to the same answers).

/// A limit of `per_minute` requests, all of which may come at once (the burst).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Milliseconds a request costs: a minute over the limit.
    pub interval_ms: i64,
    /// How far ahead of now the TAT may run: the burst less one request.
    pub tolerance_ms: i64,
}

impl Gcra {
    pub fn per_minute(limit: u32) -> Self {
        let limit = i64::from(limit.max(1));
        let interval_ms = (60_000 / limit).max(1);
        Self {
            interval_ms,
            tolerance_ms: interval_ms * (limit - 1),
        }
    }

    /// One request per `interval_ms`, none ahead (a pace rather than a budget).
    pub fn every(interval_ms: i64) -> Self {
        Self {
            interval_ms: interval_ms.max(1),
            tolerance_ms: 0,
        }
    }

    /// A request at `now` against the stored TAT (`None`: a key never seen, or forgotten):
    /// `Ok(new TAT)` when it may go, `Err(ms to wait)` when it may not (the TAT stays).
    pub fn decide(self, tat: Option<i64>, now: i64) -> Result<i64, i64> {
        let tat = tat.unwrap_or(now).max(now);
        if tat - now > self.tolerance_ms {
            Err(tat - now - self.tolerance_ms)
        } else {
            Ok(tat + self.interval_ms)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_the_limit_goes_then_one_request_per_interval() {
        let limit = Gcra::per_minute(60);
        let mut tat = None;
        for _ in 0..60 {
            tat = Some(limit.decide(tat, 0).unwrap());
        }
        assert_eq!(limit.decide(tat, 0), Err(1_000));
        assert_eq!(limit.decide(tat, 999), Err(1));
        let after = limit.decide(tat, 1_000).unwrap();
        assert_eq!(limit.decide(Some(after), 1_000), Err(1_000));
    }

    #[test]
    fn an_idle_key_is_back_at_its_full_burst() {
        let limit = Gcra::per_minute(3);
        let mut tat = None;
        for _ in 0..3 {
            tat = Some(limit.decide(tat, 0).unwrap());
        }
        assert!(limit.decide(tat, 0).is_err());
        for _ in 0..3 {
            tat = Some(limit.decide(tat, 60_000).unwrap());
        }
        assert!(limit.decide(tat, 60_000).is_err());
    }

    #[test]
    fn a_limit_of_zero_is_one() {
        assert_eq!(Gcra::per_minute(0), Gcra::per_minute(1));
        assert_eq!(Gcra::per_minute(1).tolerance_ms, 0);
    }
}
