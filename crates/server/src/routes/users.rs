use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{List, ListParams};
use crate::auth::Principal;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};
pub use ee_app::access::users::UserOut;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub email: String,
    /// At least 10 characters.
    pub password: String,
    /// `admin` (all tenants, no tenant_id) or `user` (needs tenant_id).
    pub role: String,
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    pub username: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub email: Option<String>,
    pub password: Option<String>,
    pub role: Option<String>,
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    pub username: Option<String>,
    pub is_active: Option<bool>,
}

/// Creates an account (admin).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = UserOut), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<UserOut>)> {
    principal.require_admin()?;
    let input = ee_app::access::users::NewUserInput {
        email: body.email,
        password: body.password,
        role: body.role,
        tenant: body.tenant_id,
        username: body.username,
    };
    // Hashed before the write (and SQLite's lock) opens.
    let user = input.check().await?;
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = ee_app::access::users::create(&mut w, user).await?;
    w.finish().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct UserFilter {
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
}

/// Lists accounts (admin), optionally of one tenant.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserFilter, ListParams),
    responses((status = 200, body = List<UserOut>), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(filter): ApiQuery<UserFilter>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<UserOut>>> {
    principal.require_admin()?;
    let window = page.window()?;
    let mut read = Read::begin(&state, &principal).await?;
    let rows = ee_app::access::users::list(
        &mut read,
        filter.tenant_id.as_deref(),
        window.fetch(),
        window.offset,
    )
    .await?;
    let rows = rows.into_iter().map(UserOut::from).collect();
    Ok(Json(List::from_window(rows, window)))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<UserOut>> {
    principal.require_admin()?;
    let mut read = Read::begin(&state, &principal).await?;
    Ok(Json(
        ee_app::access::users::find(&mut read, &id).await?.into(),
    ))
}

/// Changes an account (admin). A new password or deactivation ends its sessions.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)), request_body = UpdateUser,
    responses((status = 200, body = UserOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> ApiResult<Json<UserOut>> {
    principal.require_admin()?;
    let password = match body.password {
        Some(p) => Some(ee_app::access::users::NewPassword::of(p, "password").await?),
        None => None,
    };
    let changes = ee_app::access::users::UserChanges {
        email: body.email,
        password,
        role: body.role,
        tenant: body.tenant_id,
        username: body.username,
        is_active: body.is_active,
    };
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = ee_app::access::users::update(&mut w, &id, changes).await?;
    w.finish().await?;
    Ok(Json(out))
}

/// Deletes an account (admin). The last admin, and yourself, cannot be deleted.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    principal.require_admin()?;
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    ee_app::access::users::delete(&mut w, &id, &principal.id).await?;
    w.finish().await?;
    Ok(StatusCode::NO_CONTENT)
}
