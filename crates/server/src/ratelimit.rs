//! Request rate limits per credential and per client IP (GCRA, in memory, per node).
//! Sending quotas are a different matter and live in the database.

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::http::request::Parts;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::auth::credentials::presented_credential;
use crate::error::ApiError;

#[derive(Clone)]
pub struct RateLimits {
    per_credential: Arc<DefaultKeyedRateLimiter<String>>,
    per_ip: Arc<DefaultKeyedRateLimiter<String>>,
}

fn limiter(per_minute: u32) -> Arc<DefaultKeyedRateLimiter<String>> {
    let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    Arc::new(RateLimiter::keyed(Quota::per_minute(n)))
}

impl RateLimits {
    pub fn new(per_credential: u32, per_ip: u32) -> Self {
        Self {
            per_credential: limiter(per_credential),
            per_ip: limiter(per_ip),
        }
    }

    /// `Err(seconds to wait)` when either limit is spent.
    fn check(&self, credential: Option<String>, ip: Option<String>) -> Result<(), u64> {
        let clock = DefaultClock::default();
        let checks = [(&self.per_credential, credential), (&self.per_ip, ip)];
        for (limiter, key) in checks {
            if let Some(key) = key
                && let Err(not_until) = limiter.check_key(&key)
            {
                let wait = not_until.wait_time_from(clock.now());
                return Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
            }
        }
        Ok(())
    }

    /// Forgets keys that have been idle long enough to be back at full quota.
    pub fn shrink(&self) {
        self.per_credential.retain_recent();
        self.per_ip.retain_recent();
    }

    /// Counts a request against its credential's and its client's limits: a 429 naming
    /// the wait when either is spent. Two credentials are refused by the handler; the
    /// client IP still counts them.
    pub fn check_request(&self, parts: &Parts) -> Result<(), ApiError> {
        let credential = presented_credential(&parts.headers)
            .ok()
            .flatten()
            .map(|c| ee_core::auth::token_digest(&c));
        let ip = crate::extract::client_ip(parts).map(|ip| ip.to_string());
        self.check(credential, ip).map_err(|retry_after| {
            let mut error = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests; retry in {retry_after} s"),
            );
            error.retry_after_secs = Some(retry_after.max(1));
            error
        })
    }
}
