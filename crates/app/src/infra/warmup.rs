//! Warm-up plans: started for an IP (replacing a running one only when asked), paused
//! and resumed, each with its audit entry.

use ee_core::ValidationErrors;
use ee_core::timefmt::{date_of, epoch_day, to_rfc3339};
use ee_core::warmup::{self, PlanStatus, check_schedule};
use ee_store::Scope;
use ee_store::StoreError;
use ee_store::ips::{self, Ip};
use ee_store::warmup as plans;
pub use ee_store::warmup::Plan;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::AppError;
use crate::infra::Quota;
use crate::read::{Read, Reader};
use crate::write::Write;

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanOut {
    pub id: String,
    pub ip_id: String,
    pub ip: Option<String>,
    pub tenant_id: Option<String>,
    pub status: PlanStatus,
    pub start_date: String,
    /// The day of the schedule the IP is on, from 1.
    pub current_day: i64,
    pub total_days: usize,
    /// Today's quota.
    pub daily_quota: i64,
    pub sent_today: i64,
    pub remaining_today: i64,
    pub schedule: Vec<i64>,
    pub paused_at: Option<String>,
    pub completed_at: Option<String>,
    pub created_at: String,
}

/// The plan as the API shows it, with today's quota and use.
pub async fn plan_out(r: &mut impl Reader, plan: Plan, now: i64) -> Result<PlanOut, AppError> {
    let conn = r.connection();
    let today = epoch_day(now);
    let sent_today = ips::traffic(conn, &plan.ip_id, today, today).await?.sent;
    let ip = match ips::get(conn, &plan.ip_id, Scope::All).await {
        Ok(ip) => Some(ip.ip_address),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    let schedule = plan.schedule();
    let daily_quota = warmup::quota_for_day(&schedule, plan.current_phase);
    Ok(PlanOut {
        id: plan.id,
        ip_id: plan.ip_id,
        ip,
        tenant_id: plan.tenant_id,
        status: plan.status,
        start_date: plan.start_date,
        current_day: plan.current_phase,
        total_days: schedule.len(),
        daily_quota,
        sent_today,
        remaining_today: (daily_quota - sent_today).max(0),
        schedule,
        paused_at: plan.paused_at.map(to_rfc3339),
        completed_at: plan.completed_at.map(to_rfc3339),
        created_at: to_rfc3339(plan.created_at),
    })
}

/// One calendar day of a plan: the quota its schedule set for it and what the IP sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanDay {
    /// The date (UTC), from the plan's start.
    pub date: String,
    /// The schedule's quota for the plan's n-th day (a paused day shifts the later ones:
    /// the quota applies to days the plan ran).
    pub planned: Option<i64>,
    pub sent: i64,
    pub bounced: i64,
    pub complained: i64,
}

/// A plan's days from its start to today (at most a year): planned against sent.
pub async fn plan_days(read: &mut Read, plan: &Plan, now: i64) -> Result<Vec<PlanDay>, AppError> {
    let today = epoch_day(now);
    let start = ee_core::timefmt::parse_rfc3339(&format!("{}T00:00:00Z", plan.start_date))
        .map_or(today, epoch_day);
    let from = start.max(today - 365);
    let sent: std::collections::BTreeMap<i64, ee_core::warmup::Traffic> =
        ips::traffic_days(read.conn(), &plan.ip_id, from, today)
            .await?
            .into_iter()
            .collect();
    let schedule = plan.schedule();
    Ok((from..=today)
        .map(|day| {
            let traffic = sent.get(&day).copied().unwrap_or_default();
            PlanDay {
                date: date_of(day * 86_400_000),
                planned: usize::try_from(day - start)
                    .ok()
                    .and_then(|i| schedule.get(i).copied()),
                sent: traffic.sent,
                bounced: traffic.bounced,
                complained: traffic.complained,
            }
        })
        .collect())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlan {
    pub ip_id: String,
    /// Daily quotas; seed 002's six weeks (100 … 50 000) when absent.
    pub schedule: Option<Vec<i64>>,
    /// Cancel the IP's running plan and start this one.
    #[serde(default)]
    pub replace: bool,
}

/// Starts a warm-up plan for an IP; it counts while the IP is WARMING.
pub async fn create(w: &mut Write, input: CreatePlan) -> Result<PlanOut, AppError> {
    let schedule = input.schedule.unwrap_or_else(warmup::default_schedule);
    check_schedule(&schedule).map_err(|e| ValidationErrors::single("schedule", e.to_string()))?;
    let mut ip: Ip = w.find(&input.ip_id).await?;
    if let Some(mut running) = plans::current_for_ip(&mut w.tx, &ip.id).await? {
        if !input.replace {
            return Err(AppError::Conflict(format!(
                "the IP has a running plan ({}); pass \"replace\": true to start over",
                running.id
            )));
        }
        running.status = PlanStatus::Cancelled;
        plans::update(&mut w.tx, &running, w.now).await?;
    }
    let now = w.now;
    let plan = plans::insert(
        &mut w.tx,
        ip.tenant_id.as_deref(),
        &ip.id,
        &schedule,
        epoch_day(now),
        &date_of(now),
        now,
    )
    .await?;
    ip.warmup_plan_id = Some(plan.id.clone());
    ips::update_details(&mut w.tx, &ip, now).await?;
    let out = plan_out(w, plan, now).await?;
    w.created("warmup_plan.create", &out).await?;
    Ok(out)
}

/// Pauses an active plan (its IP gets no quota and does not advance) or resumes a
/// paused one.
pub async fn set_paused(w: &mut Write, id: &str, pause: bool) -> Result<PlanOut, AppError> {
    let mut plan: Plan = w.find(id).await?;
    let (from, to, action) = if pause {
        (PlanStatus::Active, PlanStatus::Paused, "warmup_plan.pause")
    } else {
        (PlanStatus::Paused, PlanStatus::Active, "warmup_plan.resume")
    };
    if plan.status != from {
        return Err(AppError::Conflict(format!(
            "the plan is {}, not {from}",
            plan.status
        )));
    }
    let now = w.now;
    let before = plan_out(w, plan.clone(), now).await?;
    plan.status = to;
    plan.paused_at = pause.then_some(now);
    plans::update(&mut w.tx, &plan, now).await?;
    let out = plan_out(w, plan, now).await?;
    w.changed(action, &before, &out).await?;
    Ok(out)
}

crate::write::audited!(PlanOut, "warmup_plan", optional);

/// The plans the caller may see (of a status), in creation order.
pub async fn list(read: &mut Read, status: Option<&str>) -> Result<Vec<Plan>, AppError> {
    let (conn, scope) = read.parts();
    Ok(plans::list(conn, scope, status).await?)
}

/// An IP's sending quota now (`infra::quota`): what its warm-up day allows, and what is
/// left of it today.
pub async fn quota(read: &mut Read, ip: &Ip, now: i64) -> Result<Quota, AppError> {
    Ok(crate::infra::quota(read.conn(), ip, now).await?)
}
