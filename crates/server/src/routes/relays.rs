//! Relays (smarthosts such as PowerMTA's listener) a tenant delivers through; their
//! passwords sealed, never returned.

use super::{List, ListParams};
use crate::extract::ApiQuery;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ee_app::delivery::relays::{self, Relay, RelayIn, RelayOut, RelayRules};

use crate::auth::Principal;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

fn rules(state: &AppState) -> RelayRules<'_> {
    RelayRules {
        outbound: &state.services.outbound,
        sealer: &state.settings.sealer,
    }
}

#[utoipa::path(post, path = "/api/v1/relays", tag = "delivery", request_body = RelayIn,
    responses((status = 201, body = RelayOut), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create_relay(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<RelayIn>,
) -> ApiResult<(StatusCode, Json<RelayOut>)> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let tenant_id = w.tenant(body.tenant_id.as_deref()).await?;
    let out = relays::create(&mut w, &rules(&state), &tenant_id, &body).await?;
    w.finish().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/api/v1/relays", tag = "delivery", params(ListParams),
    responses((status = 200, body = List<RelayOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_relays(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<RelayOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    let rows = relays::list(&mut read).await?;
    Ok(Json(List::of(
        rows.into_iter().map(RelayOut::from).collect(),
        &page,
    )?))
}

#[utoipa::path(put, path = "/api/v1/relays/{id}", tag = "delivery", params(("id" = String, Path)),
    request_body = RelayIn,
    responses((status = 200, body = RelayOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn update_relay(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RelayIn>,
) -> ApiResult<Json<RelayOut>> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = relays::update(&mut w, &rules(&state), &id, &body).await?;
    w.finish().await?;
    Ok(Json(out))
}

#[utoipa::path(delete, path = "/api/v1/relays/{id}", tag = "delivery", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn delete_relay(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    ee_app::write::delete::<Relay>(&mut w, &id).await?;
    w.finish().await?;
    Ok(StatusCode::NO_CONTENT)
}
