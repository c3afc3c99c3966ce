//! A tenant's delivery settings: mode (direct, relay, MailWizz), tracking defaults,
//! frequency cap, return path, default sender.

use axum::Json;
use axum::extract::{Path, State};
use ee_core::delivery::TenantDelivery;
use serde_json::Value;

use crate::auth::Principal;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

#[utoipa::path(get, path = "/api/v1/tenants/{id}/delivery", tag = "delivery", params(("id" = String, Path, description = "slug or id")),
    responses((status = 200, body = TenantDelivery), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get_delivery(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<TenantDelivery>> {
    let mut read = Read::begin(&state, &principal).await?;
    Ok(Json(ee_app::delivery::settings::get(&mut read, &id).await?))
}

/// Chooses how a tenant delivers: `direct` or `relay` (naming one of its relays), tracking
/// defaults, a frequency cap, the return path.
#[utoipa::path(put, path = "/api/v1/tenants/{id}/delivery", tag = "delivery", params(("id" = String, Path, description = "slug or id")),
    request_body = TenantDelivery,
    responses((status = 200, body = TenantDelivery), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn put_delivery(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TenantDelivery>,
) -> ApiResult<Json<TenantDelivery>> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = ee_app::delivery::settings::set(&mut w, &id, body).await?;
    w.finish().await?;
    Ok(Json(out))
}

/// Changes some of a tenant's delivery settings: a JSON Merge Patch (RFC 7396) of them,
/// e.g. `{"default_from_email": "news@brand.example"}` keeps the mode and relays as they
/// are; `null` puts a setting back to its default.
#[utoipa::path(patch, path = "/api/v1/tenants/{id}/delivery", tag = "delivery", params(("id" = String, Path, description = "slug or id")),
    request_body = Object,
    responses((status = 200, body = TenantDelivery), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn patch_delivery(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<TenantDelivery>> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = ee_app::delivery::settings::patch(&mut w, &id, &body).await?;
    w.finish().await?;
    Ok(Json(out))
}
