use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ee_app::infra::{self, Quota};
use ee_core::timefmt::{date_of, epoch_day, to_rfc3339};
use ee_core::warmup::{self, check_schedule};
use ee_store::ips::{self, IpFilter};
use ee_store::warmup::{self as plans, Plan};
use ee_store::{AnyConnection, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ips::visible as visible_ip;
use crate::audit::Change;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestMeta};
use crate::state::AppState;
use crate::write::Write;

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanOut {
    pub id: String,
    pub ip_id: String,
    pub ip: Option<String>,
    pub tenant_id: Option<String>,
    /// active, paused, completed or cancelled.
    pub status: String,
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

async fn plan_out(conn: &mut AnyConnection, plan: Plan, now: i64) -> ApiResult<PlanOut> {
    let today = epoch_day(now);
    let sent_today = ips::traffic(conn, &plan.ip_id, today, today).await?.sent;
    let ip = match ips::get(conn, &plan.ip_id, None).await {
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

/// Starts a warm-up plan for an IP. It counts while the IP is WARMING.
#[utoipa::path(post, path = "/api/v1/warmup/plans", tag = "warm-up", request_body = CreatePlan,
    responses((status = 201, body = PlanOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CreatePlan>,
) -> ApiResult<(StatusCode, Json<PlanOut>)> {
    let schedule = body.schedule.unwrap_or_else(warmup::default_schedule);
    check_schedule(&schedule).map_err(|e| ApiError::invalid_field("schedule", e.to_string()))?;
    let now = state.now();
    let mut w = Write::begin(&state, &principal, &meta, now).await?;
    let ip = visible_ip(&mut w.tx, &principal, &body.ip_id).await?;
    if let Some(mut running) = plans::current_for_ip(&mut w.tx, &ip.id).await? {
        if !body.replace {
            return Err(ApiError::conflict(format!(
                "the IP has a running plan ({}); pass \"replace\": true to start over",
                running.id
            )));
        }
        running.status = "cancelled".into();
        plans::update(&mut w.tx, &running, now).await?;
    }
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
    let mut ip = ip;
    ip.warmup_plan_id = Some(plan.id.clone());
    ips::update_details(&mut w.tx, &ip, now).await?;
    let out = plan_out(&mut w.tx, plan, now).await?;
    let change = Change {
        action: "warmup_plan.create",
        resource_type: "warmup_plan",
        resource_id: Some(&out.id),
        tenant_id: out.tenant_id.as_deref(),
        before: None,
        after: serde_json::to_value(&out).ok(),
    };
    w.commit(change).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PlanQuery {
    /// active, paused, completed or cancelled.
    pub status: Option<String>,
}

/// Plans with their current day, today's quota and use.
#[utoipa::path(get, path = "/api/v1/warmup/plans", tag = "warm-up", params(PlanQuery),
    responses((status = 200, body = Vec<PlanOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<PlanQuery>,
) -> ApiResult<Json<Vec<PlanOut>>> {
    let now = state.now();
    super::one_of(
        q.status.as_deref(),
        "status",
        &["active", "paused", "completed", "cancelled"],
    )?;
    let mut conn = state.db.pool().acquire().await?;
    let rows = plans::list(&mut conn, principal.scope(), q.status.as_deref()).await?;
    let mut out = Vec::with_capacity(rows.len());
    for plan in rows {
        out.push(plan_out(&mut conn, plan, now).await?);
    }
    Ok(Json(out))
}

async fn visible(conn: &mut AnyConnection, principal: &Principal, id: &str) -> ApiResult<Plan> {
    plans::get(conn, id, principal.scope())
        .await
        .map_err(ApiError::from_store("warm-up plan"))
}

#[utoipa::path(get, path = "/api/v1/warmup/plans/{id}", tag = "warm-up", params(("id" = String, Path)),
    responses((status = 200, body = PlanOut), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<PlanOut>> {
    let mut conn = state.db.pool().acquire().await?;
    let plan = visible(&mut conn, &principal, &id).await?;
    Ok(Json(plan_out(&mut conn, plan, state.now()).await?))
}

async fn set_paused(
    state: &AppState,
    principal: &Principal,
    meta: &RequestMeta,
    id: &str,
    pause: bool,
) -> ApiResult<PlanOut> {
    let now = state.now();
    let mut w = Write::begin(state, principal, meta, now).await?;
    let mut plan = visible(&mut w.tx, principal, id).await?;
    let (from, to) = if pause {
        ("active", "paused")
    } else {
        ("paused", "active")
    };
    if plan.status != from {
        return Err(ApiError::conflict(format!(
            "the plan is {}, not {from}",
            plan.status
        )));
    }
    let before = plan_out(&mut w.tx, plan.clone(), now).await?;
    plan.status = to.into();
    plan.paused_at = pause.then_some(now);
    plans::update(&mut w.tx, &plan, now).await?;
    let out = plan_out(&mut w.tx, plan, now).await?;
    let action = if pause {
        "warmup_plan.pause"
    } else {
        "warmup_plan.resume"
    };
    let change = Change {
        action,
        resource_type: "warmup_plan",
        resource_id: Some(&out.id),
        tenant_id: out.tenant_id.as_deref(),
        before: serde_json::to_value(&before).ok(),
        after: serde_json::to_value(&out).ok(),
    };
    w.commit(change).await?;
    Ok(out)
}

/// Pauses a plan: its IP gets no quota and does not advance until resumed.
#[utoipa::path(post, path = "/api/v1/warmup/plans/{id}/pause", tag = "warm-up", params(("id" = String, Path)),
    responses((status = 200, body = PlanOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn pause(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<Json<PlanOut>> {
    Ok(Json(
        set_paused(&state, &principal, &meta, &id, true).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/warmup/plans/{id}/resume", tag = "warm-up", params(("id" = String, Path)),
    responses((status = 200, body = PlanOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn resume(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<Json<PlanOut>> {
    Ok(Json(
        set_paused(&state, &principal, &meta, &id, false).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct QuotaQuery {
    /// Tenant slug or id. Required for an admin; a tenant's credential gets its own.
    pub tenant: Option<String>,
}

/// Remaining sending quota per IP of a tenant: what the delivery pipeline and the
/// PowerMTA/MailWizz quota sync read. IPs that may not send have a quota of 0; ACTIVE
/// IPs have no warm-up limit (null).
#[utoipa::path(get, path = "/api/v1/warmup/quota", tag = "warm-up", params(QuotaQuery),
    responses((status = 200, body = Vec<Quota>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn quota(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<QuotaQuery>,
) -> ApiResult<Json<Vec<Quota>>> {
    let mut conn = state.db.pool().acquire().await?;
    let tenant_id = super::tenant_of(&mut conn, &principal, q.tenant.as_deref(), "tenant").await?;
    let now = state.now();
    let rows = ips::list(
        &mut conn,
        &IpFilter {
            scope: Some(&tenant_id),
            ..Default::default()
        },
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for ip in &rows {
        out.push(infra::quota(&mut conn, ip, now).await?);
    }
    Ok(Json(out))
}
