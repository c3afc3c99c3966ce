//! Warm-up plans: one IP's schedule of daily quotas and where it stands.

use crate::Scope;
use ee_core::ids::new_id;
use ee_core::warmup::PlanStatus;
use sqlx::AnyConnection;

use crate::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Plan {
    pub id: String,
    pub tenant_id: Option<String>,
    pub ip_id: String,
    /// UTC date the plan started, `YYYY-MM-DD`.
    pub start_date: String,
    /// The current day of the schedule, from 1.
    pub current_phase: i64,
    /// The current day's quota (the schedule's entry, kept for reading without parsing).
    pub daily_quota: i64,
    #[sqlx(try_from = "String")]
    pub status: PlanStatus,
    /// JSON array of daily quotas.
    pub schedule: String,
    pub last_advanced_day: Option<i64>,
    pub paused_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Plan {
    pub fn schedule(&self) -> Vec<i64> {
        serde_json::from_str(&self.schedule).unwrap_or_default()
    }
}

const COLUMNS: &str = "id, tenant_id, ip_id, start_date, current_phase, daily_quota, status, schedule, \
    last_advanced_day, paused_at, completed_at, created_at, updated_at";

pub async fn insert(
    conn: &mut AnyConnection,
    tenant_id: Option<&str>,
    ip_id: &str,
    schedule: &[i64],
    start_day: i64,
    start_date: &str,
    now: i64,
) -> Result<Plan> {
    let plan = Plan {
        id: new_id(),
        tenant_id: tenant_id.map(str::to_owned),
        ip_id: ip_id.to_owned(),
        start_date: start_date.to_owned(),
        current_phase: 1,
        daily_quota: schedule.first().copied().unwrap_or(0),
        status: PlanStatus::Active,
        schedule: serde_json::to_string(schedule).unwrap_or_else(|_| "[]".into()),
        last_advanced_day: Some(start_day),
        paused_at: None,
        completed_at: None,
        created_at: now,
        updated_at: now,
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO warmup_plans ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    )))
    .bind(&plan.id)
    .bind(&plan.tenant_id)
    .bind(&plan.ip_id)
    .bind(&plan.start_date)
    .bind(plan.current_phase)
    .bind(plan.daily_quota)
    .bind(plan.status.as_str())
    .bind(&plan.schedule)
    .bind(plan.last_advanced_day)
    .bind(plan.paused_at)
    .bind(plan.completed_at)
    .bind(now)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(plan)
}

pub async fn get(conn: &mut AnyConnection, id: &str, scope: Scope<'_>) -> Result<Plan> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM warmup_plans WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)"
    )))
    .bind(id)
    .bind(scope.tenant())
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

/// The IP's plan that is still running (active or paused), if any.
pub async fn current_for_ip(conn: &mut AnyConnection, ip_id: &str) -> Result<Option<Plan>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM warmup_plans WHERE ip_id = $1 AND status IN ('active', 'paused') \
         ORDER BY created_at DESC LIMIT 1"
    )))
    .bind(ip_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn list(
    conn: &mut AnyConnection,
    scope: Scope<'_>,
    status: Option<&str>,
) -> Result<Vec<Plan>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM warmup_plans WHERE ($1 IS NULL OR tenant_id = $1) \
         AND ($2 IS NULL OR status = $2) ORDER BY created_at, id"
    )))
    .bind(scope.tenant())
    .bind(status)
    .fetch_all(conn)
    .await?)
}

/// Writes back the progress fields.
pub async fn update(conn: &mut AnyConnection, plan: &Plan, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE warmup_plans SET current_phase = $1, daily_quota = $2, status = $3, \
         last_advanced_day = $4, paused_at = $5, completed_at = $6, updated_at = $7 WHERE id = $8",
    )
    .bind(plan.current_phase)
    .bind(plan.daily_quota)
    .bind(plan.status.as_str())
    .bind(plan.last_advanced_day)
    .bind(plan.paused_at)
    .bind(plan.completed_at)
    .bind(now)
    .bind(&plan.id)
    .execute(conn)
    .await?;
    Ok(())
}
