use super::{List, ListParams};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ee_app::Scope;
use ee_app::infra::Quota;
use ee_app::infra::ips::{self, IpFilter};
use ee_app::infra::warmup::{self as warmup_plans, CreatePlan, Plan, PlanOut, plan_out};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Principal;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

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
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = warmup_plans::create(&mut w, body).await?;
    w.finish().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PlanQuery {
    /// active, paused, completed or cancelled.
    pub status: Option<String>,
}

/// Plans with their current day, today's quota and use.
#[utoipa::path(get, path = "/api/v1/warmup/plans", tag = "warm-up", params(PlanQuery, ListParams),
    responses((status = 200, body = List<PlanOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<PlanQuery>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<PlanOut>>> {
    let now = state.now();
    super::one_of(
        q.status.as_deref(),
        "status",
        ee_core::warmup::PlanStatus::NAMES,
    )?;
    let mut read = Read::begin(&state, &principal).await?;
    let rows = warmup_plans::list(&mut read, q.status.as_deref()).await?;
    // The page is cut first: today's use is read for the page's plans only.
    let page = List::of(rows, &page)?;
    let mut items = Vec::with_capacity(page.items.len());
    for plan in page.items {
        items.push(plan_out(&mut read, plan, now).await?);
    }
    Ok(Json(List {
        items,
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/v1/warmup/plans/{id}", tag = "warm-up", params(("id" = String, Path)),
    responses((status = 200, body = PlanOut), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<PlanOut>> {
    let mut read = Read::begin(&state, &principal).await?;
    let plan = read.find::<Plan>(&id).await?;
    Ok(Json(plan_out(&mut read, plan, state.now()).await?))
}

/// A plan day by day from its start: the schedule's quota against what the IP sent.
#[utoipa::path(get, path = "/api/v1/warmup/plans/{id}/days", tag = "warm-up", params(("id" = String, Path)),
    responses((status = 200, body = super::List<ee_app::infra::warmup::PlanDay>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn days(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<super::List<ee_app::infra::warmup::PlanDay>>> {
    let mut read = Read::begin(&state, &principal).await?;
    let plan = read.find::<Plan>(&id).await?;
    let items = warmup_plans::plan_days(&mut read, &plan, state.now()).await?;
    Ok(Json(super::List {
        items,
        next_cursor: None,
    }))
}

async fn set_paused(
    state: &AppState,
    principal: &Principal,
    meta: &RequestMeta,
    id: &str,
    pause: bool,
) -> ApiResult<PlanOut> {
    let mut w = Write::begin(state, principal, meta, state.now()).await?;
    let out = warmup_plans::set_paused(&mut w, id, pause).await?;
    w.finish().await?;
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
    /// Tenant slug or id; an admin who names none gets every tenant's IPs, a tenant's
    /// credential its own.
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
}

/// Remaining sending quota per IP of a tenant: what the delivery pipeline and the
/// PowerMTA/MailWizz quota sync read. IPs that may not send have a quota of 0; ACTIVE
/// IPs have no warm-up limit (null).
#[utoipa::path(get, path = "/api/v1/warmup/quota", tag = "warm-up", params(QuotaQuery, ListParams),
    responses((status = 200, body = List<Quota>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn quota(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<QuotaQuery>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<Quota>>> {
    let mut read = Read::begin(&state, &principal).await?;
    let tenant_id = read.tenant_view(q.tenant_id.as_deref()).await?;
    let now = state.now();
    let rows = ips::list(
        &mut read,
        &IpFilter {
            scope: Scope::from(tenant_id.as_deref()),
            ..Default::default()
        },
    )
    .await?;
    let page = List::of(rows, &page)?;
    let mut items = Vec::with_capacity(page.items.len());
    for ip in &page.items {
        items.push(warmup_plans::quota(&mut read, ip, now).await?);
    }
    Ok(Json(List {
        items,
        next_cursor: page.next_cursor,
    }))
}
