//! Request rate limits per credential and per client address (GCRA).
//!
//! On PostgreSQL, where several API nodes may serve one database, the counts are kept in
//! the database (`ee_app::access::rate_limits`), so that two nodes give one limit, not two. Each
//! node also keeps the same limits in memory, in front: a flood that one node already
//! knows is over the limit is refused there without a write. A SQLite database is one
//! file served by one node, whose memory is the whole count. Sending quotas are a
//! different matter and live in the database.

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::http::request::Parts;
use ee_app::Db;
use ee_app::access::rate_limits;
use ee_core::clock::Clock;
use ee_core::rate_limit::Gcra;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::auth::credentials::presented_credential;
use crate::error::ApiError;

#[derive(Clone)]
pub struct RateLimits {
    per_credential: Arc<DefaultKeyedRateLimiter<String>>,
    per_ip: Arc<DefaultKeyedRateLimiter<String>>,
    limits: (Gcra, Gcra),
    /// The database the nodes share the counts through (PostgreSQL only), and its clock.
    shared: Option<(Db, Clock)>,
}

fn limiter(per_minute: u32) -> Arc<DefaultKeyedRateLimiter<String>> {
    let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    Arc::new(RateLimiter::keyed(Quota::per_minute(n)))
}

impl RateLimits {
    pub fn new(per_credential: u32, per_ip: u32, db: &Db, clock: &Clock) -> Self {
        Self {
            per_credential: limiter(per_credential),
            per_ip: limiter(per_ip),
            limits: (Gcra::per_minute(per_credential), Gcra::per_minute(per_ip)),
            shared: rate_limits::shared(db).then(|| (db.clone(), clock.clone())),
        }
    }

    /// This node's own count: `Err(seconds to wait)` when either limit is spent.
    fn check_here(&self, credential: Option<&String>, ip: Option<&String>) -> Result<(), u64> {
        let clock = DefaultClock::default();
        let checks = [(&self.per_credential, credential), (&self.per_ip, ip)];
        for (limiter, key) in checks {
            if let Some(key) = key
                && let Err(not_until) = limiter.check_key(key)
            {
                let wait = not_until.wait_time_from(clock.now());
                return Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
            }
        }
        Ok(())
    }

    /// The nodes' shared count: `Err(seconds to wait)` when either limit is spent. Should
    /// the database not answer, the request goes (this node's own count still held).
    async fn check_shared(
        &self,
        credential: Option<&String>,
        ip: Option<&String>,
    ) -> Result<(), u64> {
        let Some((db, clock)) = &self.shared else {
            return Ok(());
        };
        let credential_key = credential.map(|c| format!("credential:{c}"));
        let ip_key = ip.map(|ip| format!("client:{ip}"));
        let keys: Vec<(&str, Gcra)> = [
            (credential_key.as_deref(), self.limits.0),
            (ip_key.as_deref(), self.limits.1),
        ]
        .into_iter()
        .filter_map(|(key, limit)| key.map(|k| (k, limit)))
        .collect();
        match rate_limits::take(db, clock.now_ms(), &keys).await {
            Ok(waits) => match waits.into_iter().flatten().max() {
                Some(ms) => Err(
                    u64::try_from(ms.div_euclid(1_000) + i64::from(ms % 1_000 > 0)).unwrap_or(1),
                ),
                None => Ok(()),
            },
            Err(e) => {
                tracing::warn!(error = %e, "the shared rate limits could not be counted");
                Ok(())
            }
        }
    }

    /// Forgets keys that have been idle long enough to be back at full quota (in memory;
    /// the housekeeping job purges the shared counts).
    pub fn shrink(&self) {
        self.per_credential.retain_recent();
        self.per_ip.retain_recent();
    }

    /// Counts a request against its credential's and its client's limits: a 429 naming
    /// the wait when either is spent. Two credentials are refused by the handler; the
    /// client IP still counts them.
    pub async fn check_request(&self, parts: &Parts) -> Result<(), ApiError> {
        let credential = presented_credential(&parts.headers)
            .ok()
            .flatten()
            .map(|c| ee_core::auth::token_digest(&c));
        let ip = crate::extract::client_ip(parts).map(|ip| ip.to_string());
        let checked = match self.check_here(credential.as_ref(), ip.as_ref()) {
            Ok(()) => self.check_shared(credential.as_ref(), ip.as_ref()).await,
            refused => refused,
        };
        checked.map_err(|retry_after| {
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
