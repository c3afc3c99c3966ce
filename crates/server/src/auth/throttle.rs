//! Failed-login throttling (the rule is `ee_core::login_throttle`): per account and per
//! client address, kept in the database so every API node sees the same counts. A
//! locked caller hears the same thing whichever of the two stopped it.

use ee_core::auth::token_digest;
use ee_core::login_throttle::{self, Policy};
use ee_store::login_throttles;

use crate::audit::{Actor, Change};
use crate::error::{ApiError, ApiResult};
use crate::extract::RequestMeta;
use crate::state::AppState;
use crate::write::{Begin, Write};

/// The counters of one login attempt: its account and, when known, its client.
pub struct Keys {
    account: String,
    client: Option<String>,
}

impl Keys {
    pub fn new(email: &str, meta: &RequestMeta) -> Self {
        Self {
            account: format!("account:{}", token_digest(&email.trim().to_lowercase())),
            client: meta.ip.as_ref().map(|ip| format!("client:{ip}")),
        }
    }

    fn each(&self) -> impl Iterator<Item = (&str, Policy)> {
        std::iter::once((self.account.as_str(), login_throttle::ACCOUNT))
            .chain(self.client.as_deref().map(|c| (c, login_throttle::CLIENT)))
    }
}

fn locked(retry_after_ms: i64) -> ApiError {
    let mut error = ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many failed logins; try again later",
    );
    error.retry_after_secs = Some(
        u64::try_from(retry_after_ms)
            .unwrap_or(0)
            .div_ceil(1000)
            .max(1),
    );
    error
}

/// Refuses the attempt while its account or its client is locked.
pub async fn check(state: &AppState, keys: &Keys) -> ApiResult<()> {
    let now = state.now();
    let mut conn = state.db.pool().acquire().await?;
    let mut wait = None;
    for (key, _) in keys.each() {
        let found = login_throttles::get(&mut conn, key).await?;
        wait = wait.max(found.locked_for(now));
    }
    match wait {
        Some(ms) => Err(locked(ms)),
        None => Ok(()),
    }
}

/// Counts a failure; a lock it starts is audited and raises an alert.
pub async fn failed(
    state: &AppState,
    keys: &Keys,
    email: &str,
    meta: &RequestMeta,
) -> ApiResult<()> {
    let actor = Actor {
        label: Some(email.chars().take(254).collect()),
        ..Actor::anonymous()
    };
    let mut w = Write::begin_for(state, actor, meta, state.now()).await?;
    let now = w.now;
    let change = Change {
        action: "auth.login_failed",
        resource_type: "session",
        resource_id: None,
        tenant_id: None,
        before: None,
        after: None,
    };
    w.record(change).await?;
    for (key, policy) in keys.each() {
        let before = login_throttles::get(&mut w.tx, key).await?;
        let after = policy.fail(before, now);
        login_throttles::put(&mut w.tx, key, after).await?;
        if after.locked_for(now).is_some() && before.locked_for(now).is_none() {
            let scope = if key.starts_with("account:") {
                "account"
            } else {
                "client"
            };
            let detail = serde_json::json!({
                "scope": scope,
                "failures": after.failures,
                "locked_until": after.locked_until,
            });
            let change = Change {
                action: "auth.login_locked",
                resource_type: "session",
                resource_id: None,
                tenant_id: None,
                before: None,
                after: Some(detail),
            };
            w.record(change).await?;
            let message = format!(
                "{} failed logins in a row for one {scope} (the last from {}); further \
                 attempts are refused for {} s. The audit log (auth.login_locked) says which.",
                after.failures,
                meta.ip.as_deref().unwrap_or("an unknown address"),
                (after.locked_until - now) / 1000,
            );
            ee_app::alerts::raise(
                &mut w.tx,
                ee_app::alerts::AlertSpec {
                    tenant_id: None,
                    cause: &format!("login_locked:{key}"),
                    severity: "warning",
                    title: "Logins locked after repeated failures",
                    message: &message,
                },
                now,
            )
            .await?;
        }
    }
    w.finish().await?;
    Ok(())
}

/// A success clears the account's counter. Not the client's: an attacker holding one
/// valid account could otherwise reset it between guesses at others.
pub async fn succeeded(conn: &mut ee_store::AnyConnection, keys: &Keys) -> ApiResult<()> {
    login_throttles::clear(conn, &keys.account).await?;
    Ok(())
}
