//! Operations on the sending infrastructure shared by the API and the scheduled jobs:
//! IP transitions with their side effects, traffic counters with the warm-up safety
//! rule, daily warm-up advancement and the release of quarantined IPs.
pub mod alerts;
pub mod blacklists;
pub mod compliance;
pub mod dns_records;
pub mod domains;
pub(crate) mod error;
pub mod gauges;
pub mod health;
pub mod ips;
pub mod pools;
pub mod snapshot;
pub mod warmup;

use ee_core::auth::Actor;
use ee_core::ip::{IpState, check_transition};
use ee_core::timefmt::{date_of, epoch_day};
use ee_core::warmup::{self as warmup_rules, Advance, PlanStatus, Safety, Traffic};
use ee_store::Scope;
use ee_store::ips::{self as ip_rows, Ip};
use ee_store::warmup::{self as plans, Plan};
use ee_store::{AnyConnection, Db, StoreError};
use serde::Serialize;

use crate::infra::alerts::AlertSpec;
pub use crate::infra::error::InfraError;

/// Tunables of the warm-up and quarantine rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InfraSettings {
    pub safety: Safety,
    /// Days of traffic (today included) the safety rule looks at.
    pub window_days: i64,
    /// How long an IP stays quarantined before the daily check releases it.
    pub quarantine_cooldown_ms: i64,
    /// How many days of its schedule a released IP goes back.
    pub release_step_back_days: i64,
}

impl Default for InfraSettings {
    fn default() -> Self {
        Self {
            safety: Safety::default(),
            window_days: 3,
            quarantine_cooldown_ms: 3 * 86_400_000,
            release_step_back_days: 7,
        }
    }
}

/// Moves an IP along its state machine and does what the move implies:
/// entering WARMING starts (or resumes) its warm-up plan, reaching ACTIVE ends it,
/// QUARANTINED and BLACKLISTED raise an alert. Run inside the caller's transaction.
pub async fn transition(
    conn: &mut AnyConnection,
    ip: &Ip,
    to: IpState,
    reason: Option<&str>,
    actor: &Actor,
    now: i64,
) -> Result<Ip, InfraError> {
    check_transition(ip.state, to)?;
    let mut moved = ip_rows::record_transition(conn, ip, to, reason, actor, now).await?;
    match to {
        IpState::Warming => {
            let mut plan = ensure_plan(conn, &moved, None, now).await?;
            if plan.status == PlanStatus::Paused {
                plan.status = PlanStatus::Active;
                plan.paused_at = None;
                plans::update(conn, &plan, now).await?;
            }
            moved.warmup_plan_id = Some(plan.id);
        }
        IpState::Active => {
            if let Some(mut plan) = plans::current_for_ip(conn, &moved.id).await? {
                plan.status = PlanStatus::Completed;
                plan.completed_at = Some(now);
                plans::update(conn, &plan, now).await?;
            }
        }
        IpState::Quarantined | IpState::Blacklisted => {
            let why = reason.unwrap_or("no reason given");
            alerts::raise(
                conn,
                AlertSpec {
                    tenant_id: moved.tenant_id.as_deref(),
                    cause: &format!("ip.{}:{}", to.as_str(), moved.id),
                    severity: ee_core::alert::Severity::Critical,
                    title: &format!("IP {} is {}", moved.ip_address, to.as_str()),
                    message: &format!(
                        "IP {} ({}) went from {} to {}: {why}",
                        moved.ip_address,
                        moved.hostname.as_deref().unwrap_or("no hostname"),
                        ip.state,
                        to.as_str()
                    ),
                },
                now,
            )
            .await?;
        }
        IpState::Retiring | IpState::Resting => {}
    }
    Ok(moved)
}

/// The IP's running plan, or a new one on `schedule` (the default when `None`).
pub async fn ensure_plan(
    conn: &mut AnyConnection,
    ip: &Ip,
    schedule: Option<&[i64]>,
    now: i64,
) -> Result<Plan, InfraError> {
    if let Some(plan) = plans::current_for_ip(conn, &ip.id).await? {
        return Ok(plan);
    }
    let default = warmup_rules::default_schedule();
    let schedule = schedule.unwrap_or(&default);
    let plan = plans::insert(
        conn,
        ip.tenant_id.as_deref(),
        &ip.id,
        schedule,
        epoch_day(now),
        &date_of(now),
        now,
    )
    .await?;
    let mut ip = ip.clone();
    ip.warmup_plan_id = Some(plan.id.clone());
    ip_rows::update_details(conn, &ip, now).await?;
    Ok(plan)
}

/// What an IP may still send today: the figure the delivery pipeline and the quota sync read.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Quota {
    pub ip_id: String,
    pub ip: String,
    pub hostname: Option<String>,
    pub pool: Option<String>,
    pub state: IpState,
    /// The warm-up day, for a warming IP.
    pub warmup_day: Option<i64>,
    /// Today's warm-up quota; null when the IP is not limited by a warm-up.
    pub daily_quota: Option<i64>,
    pub sent_today: i64,
    /// `daily_quota - sent_today`, never below 0; null when unlimited.
    pub remaining: Option<i64>,
}

pub async fn quota(conn: &mut AnyConnection, ip: &Ip, now: i64) -> Result<Quota, InfraError> {
    let today = epoch_day(now);
    let sent_today = ip_rows::traffic(conn, &ip.id, today, today).await?.sent;
    let plan = match ip.state {
        IpState::Warming => plans::current_for_ip(conn, &ip.id).await?,
        _ => None,
    };
    let selectable = ip.state.selectable();
    let daily_quota = match (&plan, selectable) {
        (_, false) => Some(0),
        (Some(plan), true) if plan.status == PlanStatus::Paused => Some(0),
        (Some(plan), true) => Some(warmup_rules::quota_for_day(
            &plan.schedule(),
            plan.current_phase,
        )),
        (None, true) => None,
    };
    Ok(Quota {
        ip_id: ip.id.clone(),
        ip: ip.ip_address.clone(),
        hostname: ip.hostname.clone(),
        pool: ip.pool.clone(),
        state: ip.state,
        warmup_day: plan.as_ref().map(|p| p.current_phase),
        daily_quota,
        sent_today,
        remaining: daily_quota.map(|q| (q - sent_today).max(0)),
    })
}

/// Adds sends, bounces and complaints to today's counters of an IP, then applies the
/// safety rule: over the window, too many bounces or complaints quarantine the IP.
/// Returns the IP as it is afterwards.
pub async fn record_traffic(
    conn: &mut AnyConnection,
    ip: &Ip,
    delta: Traffic,
    settings: &InfraSettings,
    now: i64,
) -> Result<Ip, InfraError> {
    if delta.sent < 0 || delta.bounced < 0 || delta.complained < 0 {
        return Err(InfraError::Invalid("counts must not be negative".into()));
    }
    let today = epoch_day(now);
    ip_rows::add_traffic(conn, &ip.id, today, delta).await?;
    check_safety(conn, ip, settings, now).await
}

/// Quarantines a sending IP whose traffic over the window breaks the thresholds.
pub async fn check_safety(
    conn: &mut AnyConnection,
    ip: &Ip,
    settings: &InfraSettings,
    now: i64,
) -> Result<Ip, InfraError> {
    if !ip.state.sends() {
        return Ok(ip.clone());
    }
    let today = epoch_day(now);
    let window = ip_rows::traffic(conn, &ip.id, today - settings.window_days + 1, today).await?;
    match warmup_rules::safety_breach(window, settings.safety) {
        Some(reason) => {
            let actor = Actor::system("warm-up safety check");
            transition(conn, ip, IpState::Quarantined, Some(&reason), &actor, now).await
        }
        None => Ok(ip.clone()),
    }
}

/// What a daily run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct AdvanceReport {
    pub advanced: u32,
    pub completed: u32,
    pub skipped: u32,
}

/// The 00:00 UTC step: every running plan of a WARMING IP moves one day forward (once per
/// UTC day, however often it runs); at the end of its schedule the IP becomes ACTIVE.
pub async fn advance_warmups(db: &Db, now: i64) -> Result<AdvanceReport, InfraError> {
    let today = epoch_day(now);
    let mut report = AdvanceReport::default();
    let mut conn = db.pool().acquire().await?;
    let running = plans::list(&mut conn, Scope::All, Some("active")).await?;
    drop(conn);
    for plan in running {
        let mut tx = db.begin().await?;
        let ip = match ip_rows::get(&mut tx, &plan.ip_id, Scope::All).await {
            Ok(ip) => ip,
            Err(StoreError::NotFound) => continue,
            Err(e) => return Err(e.into()),
        };
        if ip.state != IpState::Warming || plan.last_advanced_day.is_some_and(|d| d >= today) {
            report.skipped += 1;
            continue;
        }
        let mut plan = plan;
        plan.last_advanced_day = Some(today);
        match warmup_rules::advance(plan.schedule().len(), plan.current_phase) {
            Advance::Day(day) => {
                plan.current_phase = day;
                plan.daily_quota = warmup_rules::quota_for_day(&plan.schedule(), day);
                plans::update(&mut tx, &plan, now).await?;
                report.advanced += 1;
            }
            Advance::Completed => {
                plans::update(&mut tx, &plan, now).await?;
                let actor = Actor::system("warm-up schedule");
                transition(
                    &mut tx,
                    &ip,
                    IpState::Active,
                    Some("warm-up schedule completed"),
                    &actor,
                    now,
                )
                .await?;
                report.completed += 1;
            }
        }
        tx.commit().await?;
    }
    Ok(report)
}

/// The 04:00 UTC step: quarantined IPs whose cool-down is over go back to WARMING,
/// a week (configurable) earlier in their schedule.
pub async fn release_quarantined(
    db: &Db,
    settings: &InfraSettings,
    now: i64,
) -> Result<u32, InfraError> {
    let mut conn = db.pool().acquire().await?;
    let quarantined = ip_rows::list(
        &mut conn,
        &ip_rows::IpFilter {
            state: Some(IpState::Quarantined.as_str()),
            ..Default::default()
        },
    )
    .await?;
    drop(conn);
    let mut released = 0;
    for ip in quarantined {
        if now - ip.state_changed_at < settings.quarantine_cooldown_ms {
            continue;
        }
        let mut tx = db.begin().await?;
        if let Some(mut plan) = plans::current_for_ip(&mut tx, &ip.id).await? {
            plan.current_phase =
                warmup_rules::release_day(plan.current_phase, settings.release_step_back_days);
            plan.daily_quota = warmup_rules::quota_for_day(&plan.schedule(), plan.current_phase);
            plan.last_advanced_day = Some(epoch_day(now));
            plans::update(&mut tx, &plan, now).await?;
        }
        let actor = Actor::system("quarantine release");
        let reason = "cool-down over: back to warm-up at a lower step";
        match transition(&mut tx, &ip, IpState::Warming, Some(reason), &actor, now).await {
            Ok(_) => {
                tx.commit().await?;
                released += 1;
            }
            // Moved by someone else meanwhile: leave it.
            Err(InfraError::Store(StoreError::Conflict(_))) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(released)
}

/// What a rotation run did, per pool.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct RotationReport {
    pub pools: Vec<PoolRotation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolRotation {
    pub tenant_id: String,
    pub pool: String,
    pub plan: ee_core::rotation::RotationPlan,
}

/// Groups the tenant-owned IPs by (tenant, pool).
async fn pools_with_members(
    conn: &mut AnyConnection,
    now: i64,
) -> Result<
    std::collections::BTreeMap<(String, String), Vec<(Ip, ee_core::rotation::Member)>>,
    InfraError,
> {
    let today = epoch_day(now);
    let mut groups: std::collections::BTreeMap<
        (String, String),
        Vec<(Ip, ee_core::rotation::Member)>,
    > = Default::default();
    for ip in ip_rows::list_all(conn).await? {
        let Some(tenant_id) = ip.tenant_id.clone() else {
            continue;
        };
        let pool = ip
            .pool
            .clone()
            .unwrap_or_else(|| ee_store::pools::DEFAULT_POOL.to_owned());
        let recent_sent = ip_rows::traffic(conn, &ip.id, today - 29, today)
            .await?
            .sent;
        let member = ee_core::rotation::Member {
            id: ip.id.clone(),
            state: ip.state,
            state_changed_at: ip.state_changed_at,
            recent_sent,
        };
        groups
            .entry((tenant_id, pool))
            .or_default()
            .push((ip, member));
    }
    Ok(groups)
}

/// Applies one move to each listed IP, skipping any that moved meanwhile.
async fn apply(
    db: &Db,
    members: &[(Ip, ee_core::rotation::Member)],
    ids: &[String],
    to: IpState,
    reason: &str,
    now: i64,
) -> Result<(), InfraError> {
    let actor = Actor::system("monthly rotation");
    for (ip, _) in members.iter().filter(|(ip, _)| ids.contains(&ip.id)) {
        let mut tx = db.begin().await?;
        let current = ip_rows::get(&mut tx, &ip.id, Scope::All).await?;
        match transition(&mut tx, &current, to, Some(reason), &actor, now).await {
            Ok(_) => tx.commit().await?,
            Err(InfraError::Illegal(_)) | Err(InfraError::Store(StoreError::Conflict(_))) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The monthly rotation of every pool, by its policy.
pub async fn rotate_pools(db: &Db, now: i64) -> Result<RotationReport, InfraError> {
    let mut conn = db.pool().acquire().await?;
    let groups = pools_with_members(&mut conn, now).await?;
    let mut report = RotationReport::default();
    for ((tenant_id, pool), members) in groups {
        let policy = ee_store::pools::policy(&mut conn, &tenant_id, &pool).await?;
        let only_members: Vec<_> = members.iter().map(|(_, m)| m.clone()).collect();
        let plan = ee_core::rotation::plan_rotation(&only_members, &policy, now);
        apply(
            db,
            &members,
            &plan.rest,
            IpState::Resting,
            "drained after retirement",
            now,
        )
        .await?;
        apply(
            db,
            &members,
            &plan.rewarm,
            IpState::Warming,
            "rested: back to warm-up",
            now,
        )
        .await?;
        apply(
            db,
            &members,
            &plan.retire,
            IpState::Retiring,
            "monthly rotation: most used in its pool",
            now,
        )
        .await?;
        report.pools.push(PoolRotation {
            tenant_id,
            pool,
            plan,
        });
    }
    Ok(report)
}

/// Daily: retiring IPs that have drained go to rest (rotation retires them on the 1st).
pub async fn rest_drained(db: &Db, now: i64) -> Result<u32, InfraError> {
    let mut conn = db.pool().acquire().await?;
    let groups = pools_with_members(&mut conn, now).await?;
    let mut rested = 0;
    for ((tenant_id, pool), members) in groups {
        let policy = ee_store::pools::policy(&mut conn, &tenant_id, &pool).await?;
        let only_members: Vec<_> = members.iter().map(|(_, m)| m.clone()).collect();
        let ids = ee_core::rotation::drained(&only_members, &policy, now);
        rested += ids.len() as u32;
        apply(
            db,
            &members,
            &ids,
            IpState::Resting,
            "drained after retirement",
            now,
        )
        .await?;
    }
    Ok(rested)
}

/// The DNS checks of one domain, stored in its history; a failing domain raises an alert.
/// A check someone asked for (`caller`) is audited in the transaction that stores it.
pub async fn validate_domain(
    services: &crate::Services,
    domain: &ee_store::domains::Domain,
    caller: Option<&crate::audit::Caller>,
    now: i64,
) -> Result<ee_dns::checks::DomainReport, InfraError> {
    let mut conn = services.db.pool().acquire().await?;
    let keys = ee_store::domains::published_keys(&mut conn, &domain.id).await?;
    let tenant_ips = ip_rows::list(
        &mut conn,
        &ip_rows::IpFilter {
            scope: Scope::Tenant(&domain.tenant_id),
            ..Default::default()
        },
    )
    .await?;
    drop(conn);
    let expectation = ee_dns::checks::Expectation {
        domain: domain.domain_name.clone(),
        dkim: keys
            .into_iter()
            .map(|k| (k.selector, k.public_key))
            .collect(),
        ips: tenant_ips
            .iter()
            .filter(|ip| ip.state != IpState::Resting)
            .filter_map(|ip| Some((ip.ip_address.parse().ok()?, ip.hostname.clone())))
            .collect(),
    };
    let report = ee_dns::checks::check_domain(&services.resolver, &expectation).await;
    let results = serde_json::to_string(&report).unwrap_or_default();
    let mut tx = services.db.begin().await?;
    ee_store::domains::add_check(&mut tx, domain, report.ok, &results, now).await?;
    if !report.ok {
        alerts::raise(
            &mut tx,
            AlertSpec {
                tenant_id: Some(&domain.tenant_id),
                cause: &format!("domain.dns:{}", domain.id),
                severity: ee_core::alert::Severity::Warning,
                title: &format!("DNS of {} is incomplete", domain.domain_name),
                message: &dns_problems(&report),
            },
            now,
        )
        .await?;
    }
    if let Some(caller) = caller {
        let change = crate::audit::Change {
            action: "domain.validate",
            resource_type: "domain",
            resource_id: Some(&domain.id),
            tenant_id: Some(&domain.tenant_id),
            before: None,
            after: Some(serde_json::json!({"ok": report.ok})),
        };
        crate::write::Write::within(tx, caller.clone(), None, now)
            .commit(change)
            .await?;
    } else {
        tx.commit().await?;
    }
    Ok(report)
}

/// One line naming every failing check.
fn dns_problems(report: &ee_dns::checks::DomainReport) -> String {
    let mut problems = Vec::new();
    for s in report.spf.iter().filter(|s| !s.ok) {
        problems.push(format!("SPF {} for {}", s.result.as_str(), s.ip));
    }
    for d in report.dkim.iter().filter(|d| !d.ok) {
        problems.push(format!(
            "DKIM {}: {}",
            d.selector,
            d.error.clone().unwrap_or_default()
        ));
    }
    if report.dkim.is_empty() {
        problems.push("no DKIM key".into());
    }
    if let Some(e) = &report.dmarc.error {
        problems.push(format!("DMARC: {e}"));
    }
    if let Some(e) = &report.mx.error {
        problems.push(format!("MX: {e}"));
    }
    for p in report.ptr.iter().filter(|p| !p.ok) {
        problems.push(format!(
            "PTR {}: {}",
            p.ip,
            p.error.clone().unwrap_or_default()
        ));
    }
    format!("{}: {}", report.domain, problems.join("; "))
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct DnsRunReport {
    pub checked: u32,
    pub failing: Vec<String>,
}

/// The 06:00 UTC run over every domain.
pub async fn validate_all_domains(
    services: &crate::Services,
    now: i64,
) -> Result<DnsRunReport, InfraError> {
    let mut conn = services.db.pool().acquire().await?;
    let domains = ee_store::domains::list(&mut conn, Scope::All).await?;
    drop(conn);
    let mut report = DnsRunReport::default();
    for domain in domains {
        let result = validate_domain(services, &domain, None, now).await?;
        report.checked += 1;
        if !result.ok {
            report.failing.push(domain.domain_name);
        }
    }
    Ok(report)
}
