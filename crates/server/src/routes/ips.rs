use super::{List, ListParams};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ee_app::Scope;
use ee_app::infra::ips::{
    self, CreateIp, Ip, IpFilter, IpOut, TrafficOut, TrafficRequest, TransitionRequest, UpdateIp,
};
use ee_core::ip::IpState;
use ee_core::timefmt::to_rfc3339;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

#[derive(Debug, Serialize, ToSchema)]
pub struct TransitionOut {
    pub id: String,
    pub from: ee_core::ip::IpState,
    pub to: ee_core::ip::IpState,
    pub reason: Option<String>,
    pub actor_type: ee_core::auth::ActorKind,
    pub actor_id: Option<String>,
    pub actor_label: Option<String>,
    pub at: String,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct IpQuery {
    pub pool: Option<String>,
    pub state: Option<String>,
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
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    // An administrator may leave a new IP unassigned.
    let tenant_id = match (principal.scope(), body.tenant_id.as_deref()) {
        (Scope::All, None) => None,
        (_, requested) => Some(w.tenant(requested).await?),
    };
    let out = ips::create(&mut w, tenant_id.as_deref(), body).await?;
    w.finish().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// The caller's IPs, by address; filters by pool and state.
#[utoipa::path(get, path = "/api/v1/ips", tag = "ips", params(IpQuery, ListParams),
    responses((status = 200, body = List<IpOut>), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<IpQuery>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<IpOut>>> {
    let state_filter = match q.state.as_deref() {
        None => None,
        Some(text) => Some(
            IpState::parse(text)
                .ok_or_else(|| ApiError::invalid_field("state", "is not an IP state"))?,
        ),
    };
    let mut read = Read::begin(&state, &principal).await?;
    let filter = IpFilter {
        pool: q.pool.as_deref(),
        state: state_filter.map(IpState::as_str),
        ..Default::default()
    };
    let rows = ips::list(&mut read, &filter).await?;
    Ok(Json(List::of(
        rows.into_iter().map(IpOut::from).collect(),
        &page,
    )?))
}

#[utoipa::path(get, path = "/api/v1/ips/{id}", tag = "ips", params(("id" = String, Path)),
    responses((status = 200, body = IpOut), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<IpOut>> {
    let mut read = Read::begin(&state, &principal).await?;
    Ok(Json(read.find::<Ip>(&id).await?.into()))
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
    if body.tenant_id.is_some() {
        principal.require_admin()?;
    }
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = ips::update(&mut w, &id, body).await?;
    w.finish().await?;
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
    ee_app::write::delete::<Ip>(&mut w, &id).await?;
    w.finish().await?;
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
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = ips::transition(&mut w, &id, &body).await?;
    w.finish().await?;
    Ok(Json(out))
}

/// Every state change of the IP, oldest first, with time, actor and reason.
#[utoipa::path(get, path = "/api/v1/ips/{id}/transitions", tag = "ips", params(("id" = String, Path), ListParams),
    responses((status = 200, body = List<TransitionOut>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn transitions(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<TransitionOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    let rows = ips::transitions(&mut read, &id).await?;
    Ok(Json(List::of(
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
        &page,
    )?))
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
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = ips::traffic(&mut w, &state.services.infra, &id, &body).await?;
    w.finish().await?;
    Ok(Json(out))
}
