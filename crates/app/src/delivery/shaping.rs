//! Traffic shaping: a rule met by a reply sets a state in the database (every node reads
//! it), an IP suspended at a provider raises an alert, and an operator sees what holds
//! and may lift it early (audited). The rules are `ee_core::shaping`'s; the engine applies
//! the states (`ee_jobs::delivery`).

use ee_core::delivery::Provider;
use ee_core::shaping::{Action, ActionKind, Active, Path, Scope, ShapingRule, Trigger};
use ee_store::shaping::{self as store, Firing, State};
use ee_store::{AnyConnection, StoreError};
use serde::Serialize;

use crate::error::AppError;
use crate::write::Write;

/// The states in force, as the engine applies them.
pub async fn active(conn: &mut AnyConnection, now: i64) -> Result<Vec<Active>, StoreError> {
    Ok(store::active(conn, now)
        .await?
        .iter()
        .filter_map(to_active)
        .collect())
}

fn to_active(state: &State) -> Option<Active> {
    let kind = ActionKind::parse(&state.action)?;
    let number = |v: Option<i64>| v.and_then(|n| u32::try_from(n).ok());
    Some(Active {
        provider: state.provider.clone(),
        scope: Scope::parse(&state.scope)?,
        subject: state.subject.clone(),
        action: Action::stored(kind, number(state.value_count), number(state.value_secs)),
        until: state.until_at,
    })
}

/// A reply met `rule` on `path` at `provider`: counted (a counted rule acts at its
/// count), then each of its actions set or extended. The states it set (none while a
/// counted rule is under its count).
#[allow(clippy::too_many_arguments)]
pub async fn fire(
    conn: &mut AnyConnection,
    rule: &ShapingRule,
    provider: &Provider,
    path: &Path,
    path_label: Option<&str>,
    tenant_id: &str,
    campaign_id: Option<&str>,
    reply: &str,
    now: i64,
) -> Result<Vec<Active>, StoreError> {
    if let Trigger::PerHour(count) = rule.trigger {
        let hits = store::hit(
            &mut *conn,
            &rule.key(),
            provider.as_str(),
            path.scope().as_str(),
            path.subject(),
            now / 3_600_000,
        )
        .await?;
        if hits < i64::from(count) {
            return Ok(Vec::new());
        }
    }
    let mut set = Vec::new();
    for &(action, secs) in &rule.actions {
        let (Some(kind), Some((scope, subject))) =
            (action.kind(), action.target(path, tenant_id, campaign_id))
        else {
            continue;
        };
        let (count, per) = action.values();
        let reply = ee_core::limits::cut_bytes(reply, 500);
        let (state, new) = store::fire(
            &mut *conn,
            &Firing {
                provider: provider.as_str(),
                scope: scope.as_str(),
                subject: &subject,
                subject_label: path_label.filter(|_| scope == path.scope()),
                // The host's own address is no tenant's: administrators see it.
                tenant_id: (scope != Scope::Host).then_some(tenant_id),
                action: kind.as_str(),
                value_count: count.map(i64::from),
                value_secs: per.map(i64::from),
                rule_key: &rule.key(),
                rule_text: &rule.text,
                reply,
                until: now + secs * 1000,
            },
            now,
        )
        .await?;
        if new {
            tracing::warn!(provider = %provider, scope = scope.as_str(), subject = %subject,
                action = kind.as_str(), rule = %rule.text, "traffic shaping: a provider's reply slowed a path");
        }
        if new && scope == Scope::Ip && action == Action::Suspend {
            let ip = path_label.unwrap_or(&subject);
            let message = format!(
                "{provider} answered {ip} with \"{reply}\"; rule {} ({}) suspends the \
                 IP there until {}. Other providers still get its mail. Look at its \
                 reputation before lifting it early (GET /api/v1/shaping).",
                rule.key(),
                rule.text,
                ee_core::timefmt::to_rfc3339(state.until_at),
            );
            crate::infra::alerts::raise(
                &mut *conn,
                crate::infra::alerts::AlertSpec {
                    tenant_id: Some(tenant_id),
                    cause: &format!("shaping:{}:{}", subject, provider),
                    severity: ee_core::alert::Severity::Warning,
                    title: &format!("IP {ip} suspended at {provider}"),
                    message: &message,
                },
                now,
            )
            .await?;
        }
        if let Some(active) = to_active(&state) {
            set.push(active);
        }
    }
    Ok(set)
}

/// What the metrics show of shaping: the states in force, and the deferrals counted by
/// recipient provider and IP (`(provider, ip_id, count)`).
pub async fn metrics(
    conn: &mut AnyConnection,
    now: i64,
) -> Result<(Vec<Active>, Vec<(String, String, i64)>), StoreError> {
    let active = active(&mut *conn, now).await?;
    let deferred = ee_store::report_counters::totals_by_provider(conn, "deferred").await?;
    Ok((active, deferred))
}

/// How a message held back by shaping at `provider` starts its reason (the engine's
/// `held`).
pub fn held_reason_prefix(provider: &str) -> String {
    format!("held by traffic shaping at {provider} ")
}

/// A shaping state as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShapingOut {
    pub id: String,
    /// The provider (`gmail`, `orange`, `relay` …).
    pub provider: String,
    /// Whom it holds back: `ip`, `relay`, `host` (the server's own address), `tenant`
    /// or `campaign`, at that provider.
    pub scope: Scope,
    /// The IP's, relay's, tenant's or campaign's id (empty for `host`).
    pub subject: String,
    /// The IP's address, the relay's name.
    pub subject_label: Option<String>,
    pub tenant_id: Option<String>,
    pub action: ActionKind,
    /// Messages per `per_secs` (`rate`), connections (`connections`), messages per
    /// connection (`per_connection`).
    pub value: Option<i64>,
    pub per_secs: Option<i64>,
    /// The rule that set it (`shipped:41`, `operator:3`) and its line.
    pub rule: String,
    pub rule_text: String,
    /// The reply that set it last.
    pub reply: String,
    /// How many replies fired it while it held.
    pub fired: i64,
    pub started_at: String,
    pub until: String,
    pub active: bool,
    pub lifted_at: Option<String>,
    pub lifted_by: Option<String>,
}

impl ShapingOut {
    fn of(state: State, now: i64) -> Self {
        Self {
            active: state.is_active(now),
            scope: Scope::parse(&state.scope).unwrap_or(Scope::Host),
            action: ActionKind::parse(&state.action).unwrap_or(ActionKind::Suspend),
            started_at: ee_core::timefmt::to_rfc3339(state.started_at),
            until: ee_core::timefmt::to_rfc3339(state.until_at),
            lifted_at: state.lifted_at.map(ee_core::timefmt::to_rfc3339),
            id: state.id,
            provider: state.provider,
            subject: state.subject,
            subject_label: state.subject_label,
            tenant_id: state.tenant_id,
            value: state.value_count,
            per_secs: state.value_secs,
            rule: state.rule_key,
            rule_text: state.rule_text,
            reply: state.reply,
            fired: state.fired,
            lifted_by: state.lifted_by,
        }
    }
}

crate::write::audited!(ShapingOut, "shaping_state", optional);

/// What holds now (or, with `all`, also what held in the last week), within the caller's
/// scope.
pub async fn list(
    read: &mut crate::read::Read,
    now: i64,
    all: bool,
) -> Result<Vec<ShapingOut>, AppError> {
    let (conn, scope) = read.parts();
    Ok(store::list(conn, scope, now, all)
        .await?
        .into_iter()
        .map(|s| ShapingOut::of(s, now))
        .collect())
}

/// The most messages each provider was sent in one second over the last minute, across
/// every tenant (a provider sent nothing is absent): an administrator's figures (`None`
/// for anyone else).
pub async fn peaks_last_minute(
    read: &mut crate::read::Read,
    now: i64,
) -> Result<Option<std::collections::BTreeMap<String, i64>>, AppError> {
    let (conn, scope) = read.parts();
    if !matches!(scope, ee_store::Scope::All) {
        return Ok(None);
    }
    let since = ee_core::provider_rates::second_of(now) - 60;
    Ok(Some(
        ee_store::provider_seconds::peaks_since(conn, since).await?,
    ))
}

/// Ends a state before its time: the path is back to its limits at once (each node reads
/// the states again within a second or two). 409 when it no longer holds.
pub async fn lift(w: &mut Write, id: &str) -> Result<ShapingOut, AppError> {
    let before = store::get(&mut w.tx, id, ee_store::Scope::from(w.scope.as_deref()))
        .await
        .map_err(AppError::from_store("shaping state"))?;
    let by = w
        .caller
        .actor
        .label
        .clone()
        .or_else(|| w.caller.actor.id.clone())
        .unwrap_or_else(|| w.caller.actor.kind.as_str().to_owned());
    if !store::lift(&mut w.tx, id, &by, w.now).await? {
        return Err(AppError::Conflict(
            "this shaping state no longer holds (over or lifted)".into(),
        ));
    }
    let after = store::get(&mut w.tx, id, ee_store::Scope::All).await?;
    // What it held waits no more (a message held by another state is held again,
    // uncounted, at its next try).
    store::release_held(
        &mut w.tx,
        after.tenant_id.as_deref(),
        (after.scope == Scope::Campaign.as_str()).then_some(after.subject.as_str()),
        &held_reason_prefix(&after.provider),
        w.now,
    )
    .await?;
    let (before, after) = (ShapingOut::of(before, w.now), ShapingOut::of(after, w.now));
    w.changed("shaping.lift", &before, &after).await?;
    Ok(after)
}
