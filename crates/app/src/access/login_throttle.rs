//! Failed-login throttling (the rule is `ee_core::login_throttle`): per account and per
//! client address, kept in the database so every API node sees the same counts.

use ee_core::auth::token_digest;
use ee_core::login_throttle::{self, Policy};
use ee_store::login_throttles;

use crate::AppError;
use crate::audit::{Actor, Change};
use crate::read::Read;
use crate::write::Write;

/// The counters of one login attempt: its account and, when known, its client.
pub struct Keys {
    account: String,
    client: Option<String>,
}

impl Keys {
    pub fn new(email: &str, client_ip: Option<&str>) -> Self {
        Self {
            account: format!("account:{}", token_digest(&email.trim().to_lowercase())),
            client: client_ip.map(|ip| format!("client:{ip}")),
        }
    }

    fn each(&self) -> impl Iterator<Item = (&str, Policy)> {
        std::iter::once((self.account.as_str(), login_throttle::ACCOUNT))
            .chain(self.client.as_deref().map(|c| (c, login_throttle::CLIENT)))
    }
}

/// How long (ms) the attempt must wait when its account or its client is locked.
pub async fn locked_for(read: &mut Read, keys: &Keys, now: i64) -> Result<Option<i64>, AppError> {
    let mut wait = None;
    for (key, _) in keys.each() {
        let found = login_throttles::get(read.conn(), key).await?;
        wait = wait.max(found.locked_for(now));
    }
    Ok(wait)
}

/// Counts a failure, audited with the address tried; a lock it starts is audited too and
/// raises an alert. The scope's actor names the address.
pub async fn failed(
    w: &mut Write,
    keys: &Keys,
    email: &str,
    client_ip: Option<&str>,
) -> Result<(), AppError> {
    w.act_as(Actor {
        label: Some(email.chars().take(254).collect()),
        ..Actor::anonymous()
    });
    let now = w.now;
    w.record(Change {
        action: "auth.login_failed",
        resource_type: "session",
        resource_id: None,
        tenant_id: None,
        before: None,
        after: None,
    })
    .await?;
    for (key, policy) in keys.each() {
        let before = login_throttles::get_for_update(&mut w.tx, key).await?;
        let after = policy.fail(before, now);
        login_throttles::put(&mut w.tx, key, after).await?;
        if after.locked_for(now).is_none() || before.locked_for(now).is_some() {
            continue;
        }
        let scope = if key.starts_with("account:") {
            "account"
        } else {
            "client"
        };
        w.record(Change {
            action: "auth.login_locked",
            resource_type: "session",
            resource_id: None,
            tenant_id: None,
            before: None,
            after: Some(serde_json::json!({
                "scope": scope,
                "failures": after.failures,
                "locked_until": after.locked_until,
            })),
        })
        .await?;
        let message = format!(
            "{} failed logins in a row for one {scope} (the last from {}); further \
             attempts are refused for {} s. The audit log (auth.login_locked) says which.",
            after.failures,
            client_ip.unwrap_or("an unknown address"),
            (after.locked_until - now) / 1000,
        );
        crate::infra::alerts::raise(
            &mut w.tx,
            crate::infra::alerts::AlertSpec {
                tenant_id: None,
                cause: &format!("login_locked:{key}"),
                severity: ee_core::alert::Severity::Warning,
                title: "Logins locked after repeated failures",
                message: &message,
            },
            now,
        )
        .await?;
    }
    Ok(())
}

/// A success clears the account's counter. Not the client's: an attacker holding one
/// valid account could otherwise reset it between guesses at others.
pub async fn succeeded(w: &mut Write, keys: &Keys) -> Result<(), AppError> {
    login_throttles::clear(&mut w.tx, &keys.account).await?;
    Ok(())
}
