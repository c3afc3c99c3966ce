use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ee_app::infra::{self, Quota};
use ee_core::ValidationErrors;
use ee_core::address::is_host_name;
use ee_core::ip::{IpState, normalize_ip};
use ee_core::timefmt::to_rfc3339;
use ee_core::warmup::Traffic;
use ee_store::ips::{self, Ip, IpFilter, NewIp};
use ee_store::{AnyConnection, tenants};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::audit::{Actor, Change};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestMeta};
use crate::state::AppState;
use crate::write::Write;

#[derive(Debug, Serialize, ToSchema)]
pub struct IpOut {
    pub id: String,
    pub ip: String,
    pub hostname: Option<String>,
    pub tenant_id: Option<String>,
    pub pool: Option<String>,
    /// active, retiring, resting, warming, quarantined or blacklisted.
    pub state: String,
    pub previous_state: Option<String>,
    pub state_reason: Option<String>,
    pub state_changed_at: String,
    /// `clean` or `listed`.
    pub blacklist_status: String,
    pub warmup_plan_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Ip> for IpOut {
    fn from(ip: Ip) -> Self {
        Self {
            id: ip.id,
            ip: ip.ip_address,
            hostname: ip.hostname,
            tenant_id: ip.tenant_id,
            pool: ip.pool,
            state: ip.state,
            previous_state: ip.previous_state,
            state_reason: ip.state_reason,
            state_changed_at: to_rfc3339(ip.state_changed_at),
            blacklist_status: ip.blacklist_status,
            warmup_plan_id: ip.warmup_plan_id,
            created_at: to_rfc3339(ip.created_at),
            updated_at: to_rfc3339(ip.updated_at),
        }
    }
}

/// Also accepts the seeds' shape: `{"ip", "domain", "status"}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIp {
    /// IPv4 or IPv6.
    pub ip: String,
    /// The host name its PTR names and EHLO uses (`domain` is accepted too).
    #[serde(alias = "domain")]
    pub hostname: Option<String>,
    /// Admins may name a tenant, or leave the IP unassigned; users get their own.
    pub tenant_id: Option<String>,
    pub pool: Option<String>,
    /// warming (default), active or resting (`status` is accepted too).
    #[serde(alias = "status")]
    pub state: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIp {
    #[serde(alias = "domain")]
    pub hostname: Option<String>,
    pub pool: Option<String>,
    /// Admin only: move the IP to another tenant.
    pub tenant_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    pub to: String,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransitionOut {
    pub id: String,
    pub from: String,
    pub to: String,
    pub reason: Option<String>,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub actor_label: Option<String>,
    pub at: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrafficRequest {
    #[serde(default)]
    pub sent: i64,
    #[serde(default)]
    pub bounced: i64,
    #[serde(default)]
    pub complained: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrafficOut {
    pub ip: IpOut,
    pub quota: Quota,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct IpQuery {
    pub pool: Option<String>,
    pub state: Option<String>,
}

fn check_pool(pool: Option<&str>, errors: &mut ValidationErrors) {
    if let Some(pool) = pool {
        let mut inner = ValidationErrors::new();
        ee_core::tenant::validate_slug(pool, "pool", &mut inner);
        errors.0.extend(inner.0);
    }
}

fn check_hostname(hostname: Option<&str>, errors: &mut ValidationErrors) {
    if hostname.is_some_and(|h| !is_host_name(h)) {
        errors.add("hostname", "must be a fully qualified host name");
    }
}

/// An IP visible to the caller, else 404.
pub async fn visible(conn: &mut AnyConnection, principal: &Principal, id: &str) -> ApiResult<Ip> {
    ips::get(conn, id, principal.scope())
        .await
        .map_err(ApiError::from_store("IP"))
}

/// Registers a sending IP; a warming IP gets the default warm-up plan.
#[utoipa::path(post, path = "/api/v1/ips", tag = "ips", request_body = CreateIp,
    responses((status = 201, body = IpOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CreateIp>,
) -> ApiResult<(StatusCode, Json<IpOut>)> {
    let tenant_id = match (principal.scope(), body.tenant_id.as_deref()) {
        (None, None) => None,
        (_, requested) => Some(principal.owning_tenant(requested, "tenant_id")?),
    };
    let mut errors = ValidationErrors::new();
    let address = normalize_ip(&body.ip);
    if address.is_none() {
        errors.add("ip", "must be an IPv4 or IPv6 address");
    }
    let hostname = body
        .hostname
        .as_deref()
        .map(|h| h.trim().trim_end_matches('.').to_lowercase());
    check_hostname(hostname.as_deref(), &mut errors);
    check_pool(body.pool.as_deref(), &mut errors);
    let initial = match body.state.as_deref() {
        None => IpState::Warming,
        Some(text) => match IpState::parse(text) {
            Some(s) if IpState::INITIAL.contains(&s) => s,
            _ => {
                errors.add("state", "must be warming, active or resting for a new IP");
                IpState::Warming
            }
        },
    };
    errors.into_result()?;
    let now = state.now();
    let mut w = Write::begin(&state, &principal, &meta, now).await?;
    if let Some(tenant_id) = &tenant_id {
        tenants::get(&mut w.tx, tenant_id)
            .await
            .map_err(ApiError::from_store("tenant"))?;
    }
    let address = address.unwrap_or_default();
    let ip = ips::insert(
        &mut w.tx,
        NewIp {
            tenant_id: tenant_id.as_deref(),
            ip_address: &address,
            hostname: hostname.as_deref(),
            pool: body.pool.as_deref(),
            state: initial,
        },
        now,
    )
    .await?;
    let ip = if initial == IpState::Warming {
        let plan = infra::ensure_plan(&mut w.tx, &ip, None, now).await?;
        Ip {
            warmup_plan_id: Some(plan.id),
            ..ip
        }
    } else {
        ip
    };
    let out = IpOut::from(ip);
    let change = Change {
        action: "ip.create",
        resource_type: "ip",
        resource_id: Some(&out.id),
        tenant_id: out.tenant_id.as_deref(),
        before: None,
        after: serde_json::to_value(&out).ok(),
    };
    w.commit(change).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// The caller's IPs, by address; filters by pool and state.
#[utoipa::path(get, path = "/api/v1/ips", tag = "ips", params(IpQuery),
    responses((status = 200, body = Vec<IpOut>), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<IpQuery>,
) -> ApiResult<Json<Vec<IpOut>>> {
    let state_filter = match q.state.as_deref() {
        None => None,
        Some(text) => Some(
            IpState::parse(text)
                .ok_or_else(|| ApiError::invalid_field("state", "is not an IP state"))?,
        ),
    };
    let mut conn = state.db.pool().acquire().await?;
    let filter = IpFilter {
        scope: principal.scope(),
        pool: q.pool.as_deref(),
        state: state_filter.map(IpState::as_str),
    };
    let rows = ips::list(&mut conn, &filter).await?;
    Ok(Json(rows.into_iter().map(IpOut::from).collect()))
}

#[utoipa::path(get, path = "/api/v1/ips/{id}", tag = "ips", params(("id" = String, Path)),
    responses((status = 200, body = IpOut), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<IpOut>> {
    let mut conn = state.db.pool().acquire().await?;
    Ok(Json(visible(&mut conn, &principal, &id).await?.into()))
}

/// Changes hostname, pool, or (admin) tenant. The state changes only by transitions.
#[utoipa::path(patch, path = "/api/v1/ips/{id}", tag = "ips", params(("id" = String, Path)), request_body = UpdateIp,
    responses((status = 200, body = IpOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateIp>,
) -> ApiResult<Json<IpOut>> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let mut ip = visible(&mut w.tx, &principal, &id).await?;
    let before = serde_json::to_value(IpOut::from(ip.clone())).ok();
    let mut errors = ValidationErrors::new();
    let hostname = body
        .hostname
        .as_deref()
        .map(|h| h.trim().trim_end_matches('.').to_lowercase());
    check_hostname(hostname.as_deref(), &mut errors);
    check_pool(body.pool.as_deref(), &mut errors);
    errors.into_result()?;
    if let Some(tenant_id) = &body.tenant_id {
        principal.require_admin()?;
        tenants::get(&mut w.tx, tenant_id)
            .await
            .map_err(ApiError::from_store("tenant"))?;
        ip.tenant_id = Some(tenant_id.clone());
    }
    if hostname.is_some() {
        ip.hostname = hostname;
    }
    if body.pool.is_some() {
        ip.pool = body.pool;
    }
    let now = w.now;
    ips::update_details(&mut w.tx, &ip, now).await?;
    ip.updated_at = now;
    let out = IpOut::from(ip);
    let change = Change {
        action: "ip.update",
        resource_type: "ip",
        resource_id: Some(&out.id),
        tenant_id: out.tenant_id.as_deref(),
        before,
        after: serde_json::to_value(&out).ok(),
    };
    w.commit(change).await?;
    Ok(Json(out))
}

#[utoipa::path(delete, path = "/api/v1/ips/{id}", tag = "ips", params(("id" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let ip = visible(&mut w.tx, &principal, &id).await?;
    ips::delete(&mut w.tx, &id).await?;
    let _now = w.now;
    let tenant_id = ip.tenant_id.clone();
    let change = Change {
        action: "ip.delete",
        resource_type: "ip",
        resource_id: Some(&id),
        tenant_id: tenant_id.as_deref(),
        before: serde_json::to_value(IpOut::from(ip)).ok(),
        after: None,
    };
    w.commit(change).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Moves the IP along its state machine; an illegal move answers 409 with the allowed ones.
#[utoipa::path(post, path = "/api/v1/ips/{id}/transition", tag = "ips", params(("id" = String, Path)), request_body = TransitionRequest,
    responses((status = 200, body = IpOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn transition(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TransitionRequest>,
) -> ApiResult<Json<IpOut>> {
    let to = IpState::parse(&body.to).ok_or_else(|| {
        ApiError::invalid_field(
            "to",
            "must be one of active, retiring, resting, warming, quarantined, blacklisted",
        )
    })?;
    let reason = body
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > 500) {
        return Err(ApiError::invalid_field(
            "reason",
            "must be at most 500 characters",
        ));
    }
    let now = state.now();
    let mut w = Write::begin(&state, &principal, &meta, now).await?;
    let ip = visible(&mut w.tx, &principal, &id).await?;
    let before = serde_json::to_value(IpOut::from(ip.clone())).ok();
    let moved = infra::transition(&mut w.tx, &ip, to, reason, &w.caller.actor, now).await?;
    let out = IpOut::from(moved);
    let change = Change {
        action: "ip.transition",
        resource_type: "ip",
        resource_id: Some(&out.id),
        tenant_id: out.tenant_id.as_deref(),
        before,
        after: serde_json::to_value(&out).ok(),
    };
    w.commit(change).await?;
    Ok(Json(out))
}

/// Every state change of the IP, oldest first, with time, actor and reason.
#[utoipa::path(get, path = "/api/v1/ips/{id}/transitions", tag = "ips", params(("id" = String, Path)),
    responses((status = 200, body = Vec<TransitionOut>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn transitions(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<TransitionOut>>> {
    let mut conn = state.db.pool().acquire().await?;
    visible(&mut conn, &principal, &id).await?;
    let rows = ips::transitions(&mut conn, &id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|t| TransitionOut {
                id: t.id,
                from: t.from_state,
                to: t.to_state,
                reason: t.reason,
                actor_type: t.actor_type,
                actor_id: t.actor_id,
                actor_label: t.actor_label,
                at: to_rfc3339(t.created_at),
            })
            .collect(),
    ))
}

/// Records messages sent, bounced and complained about through this IP today (the
/// delivery pipeline and feedback loops call this); too many bounces or complaints
/// over the window quarantine the IP at once.
#[utoipa::path(post, path = "/api/v1/ips/{id}/traffic", tag = "ips", params(("id" = String, Path)), request_body = TrafficRequest,
    responses((status = 200, body = TrafficOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn traffic(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TrafficRequest>,
) -> ApiResult<Json<TrafficOut>> {
    let now = state.now();
    let mut w = Write::begin(&state, &principal, &meta, now).await?;
    let ip = visible(&mut w.tx, &principal, &id).await?;
    let delta = Traffic {
        sent: body.sent,
        bounced: body.bounced,
        complained: body.complained,
    };
    let after = infra::record_traffic(&mut w.tx, &ip, delta, &state.services.infra, now).await?;
    let change = Change {
        action: "ip.traffic",
        resource_type: "ip",
        resource_id: Some(&ip.id),
        tenant_id: ip.tenant_id.as_deref(),
        before: None,
        after: serde_json::to_value(delta).ok(),
    };
    w.record(change).await?;
    if after.state != ip.state {
        let change = Change {
            action: "ip.transition",
            resource_type: "ip",
            resource_id: Some(&ip.id),
            tenant_id: ip.tenant_id.as_deref(),
            before: serde_json::to_value(IpOut::from(ip.clone())).ok(),
            after: serde_json::to_value(IpOut::from(after.clone())).ok(),
        };
        // The safety rule's own change, by the system, in the same transaction.
        w.record_by(Actor::system("warm-up safety check"), change)
            .await?;
    }
    let quota = infra::quota(&mut w.tx, &after, now).await?;
    w.finish().await?;
    Ok(Json(TrafficOut {
        ip: after.into(),
        quota,
    }))
}
