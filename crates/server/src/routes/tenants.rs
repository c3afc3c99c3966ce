use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ee_app::access::tenants::Tenant;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{List, ListParams};
use crate::auth::Principal;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};
pub use ee_app::access::tenants::TenantOut;
pub use ee_app::access::tenants::UpdateTenant;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    pub name: String,
    /// Lower-case letters, digits and inner hyphens, 2–63 characters.
    pub slug: String,
    /// Free-form settings (a JSON object).
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
}

/// Creates a tenant (admin).
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = CreateTenant,
    responses((status = 201, body = TenantOut), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CreateTenant>,
) -> ApiResult<(StatusCode, Json<TenantOut>)> {
    principal.require_admin()?;
    let input = ee_app::access::tenants::NewTenantInput {
        name: body.name,
        slug: body.slug,
        settings: body.settings,
    };
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = ee_app::access::tenants::create(&mut w, input).await?;
    w.finish().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Lists tenants: all for an admin, its own for a tenant's user or key.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", params(ListParams),
    responses((status = 200, body = List<TenantOut>), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<TenantOut>>> {
    let window = page.window()?;
    let mut read = Read::begin(&state, &principal).await?;
    let rows = ee_app::access::tenants::list(&mut read, window.fetch(), window.offset).await?;
    let rows = rows.into_iter().map(TenantOut::from).collect();
    Ok(Json(List::from_window(rows, window)))
}

#[utoipa::path(get, path = "/api/v1/tenants/{id}", tag = "tenants", params(("id" = String, Path)),
    responses((status = 200, body = TenantOut), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<TenantOut>> {
    let mut read = Read::begin(&state, &principal).await?;
    Ok(Json(read.find::<Tenant>(&id).await?.into()))
}

/// Changes a tenant's name, slug, settings or active flag (admin).
#[utoipa::path(patch, path = "/api/v1/tenants/{id}", tag = "tenants", params(("id" = String, Path)), request_body = UpdateTenant,
    responses((status = 200, body = TenantOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateTenant>,
) -> ApiResult<Json<TenantOut>> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let tenant = w.find::<Tenant>(&id).await?;
    principal.require_admin()?;
    let out = ee_app::access::tenants::update(&mut w, tenant, body).await?;
    w.finish().await?;
    Ok(Json(out))
}

/// Deletes a tenant and everything it owns (admin).
#[utoipa::path(delete, path = "/api/v1/tenants/{id}", tag = "tenants", params(("id" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let tenant = w.find::<Tenant>(&id).await?;
    principal.require_admin()?;
    ee_app::access::tenants::delete(&mut w, tenant).await?;
    w.finish().await?;
    Ok(StatusCode::NO_CONTENT)
}
