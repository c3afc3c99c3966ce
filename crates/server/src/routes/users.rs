use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ee_core::ValidationErrors;
use ee_core::address::check_syntax;
use ee_core::auth::validate_password;
use ee_store::users::{self, User};
use ee_store::{AnyConnection, sessions};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{List, ListParams};
use crate::audit::{self, Change};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestMeta};
use crate::state::AppState;
use crate::write::{Begin, Write};
pub use ee_app::users::UserOut;
use ee_app::users::{check_role_and_tenant, hash_password};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub email: String,
    /// At least 10 characters.
    pub password: String,
    /// `admin` (all tenants, no tenant_id) or `user` (needs tenant_id).
    pub role: String,
    pub tenant_id: Option<String>,
    pub username: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub email: Option<String>,
    pub password: Option<String>,
    pub role: Option<String>,
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
    let input = ee_app::users::NewUserInput {
        email: body.email,
        password: body.password,
        role: body.role,
        tenant: body.tenant_id,
        username: body.username,
    };
    let caller = audit::caller(&principal, &meta);
    let out = ee_app::users::create(&state.db, &caller, input, state.now()).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct UserFilter {
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
    let mut conn = state.db.pool().acquire().await?;
    let rows = users::list(
        &mut conn,
        filter.tenant_id.as_deref(),
        window.fetch(),
        window.offset,
    )
    .await?;
    let rows = rows.into_iter().map(UserOut::from).collect();
    Ok(Json(List::from_window(rows, window)))
}

async fn find(conn: &mut AnyConnection, id: &str) -> ApiResult<User> {
    users::get(conn, id)
        .await
        .map_err(ApiError::from_store("user"))
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
    let mut conn = state.db.pool().acquire().await?;
    Ok(Json(find(&mut conn, &id).await?.into()))
}

/// Counts active admins other than `except`.
async fn other_active_admins(conn: &mut AnyConnection, except: &str) -> ApiResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND is_active = 1 AND id <> $1",
    )
    .bind(except)
    .fetch_one(conn)
    .await?)
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
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let mut user = find(&mut w.tx, &id).await?;
    let before = serde_json::to_value(UserOut::from(user.clone())).ok();
    let mut errors = ValidationErrors::new();
    if let Some(email) = &body.email {
        let email = email.trim().to_lowercase();
        match check_syntax(&email) {
            Ok(()) => user.email = email,
            Err(e) => errors.add("email", e.to_string()),
        }
    }
    if let Some(password) = &body.password {
        validate_password(password, "password", &mut errors);
    }
    if let Some(role) = &body.role {
        user.role = role.clone();
        if role == "admin" {
            user.tenant_id = None;
        }
    }
    if body.tenant_id.is_some() {
        user.tenant_id = body.tenant_id.clone();
    }
    let tenant_id = check_role_and_tenant(
        &mut w.tx,
        &user.role,
        user.tenant_id.as_deref(),
        &mut errors,
    )
    .await?;
    errors.into_result()?;
    user.tenant_id = tenant_id;
    if let Some(username) = body.username {
        user.username = Some(username);
    }
    let was_active_admin = before
        .as_ref()
        .is_some_and(|b| b["role"] == "admin" && b["is_active"] == true);
    if let Some(active) = body.is_active {
        user.is_active = i64::from(active);
    }
    let still_active_admin = user.role == "admin" && user.is_active == 1;
    if was_active_admin
        && !still_active_admin
        && other_active_admins(&mut w.tx, &user.id).await? == 0
    {
        return Err(ApiError::conflict(
            "this is the last active admin; make another admin first",
        ));
    }
    let now = w.now;
    let password_changed = body.password.is_some();
    if let Some(password) = body.password {
        user.password_hash = hash_password(password).await?;
    }
    user.updated_at = now;
    users::update(&mut w.tx, &user).await?;
    if password_changed || user.is_active != 1 {
        sessions::revoke_all_for_user(&mut w.tx, &user.id, now).await?;
    }
    let out = UserOut::from(user);
    let mut after = serde_json::to_value(&out).ok();
    if let (Some(after), true) = (after.as_mut(), password_changed) {
        after["password"] = serde_json::Value::String("changed".into());
    }
    let change = Change {
        action: "user.update",
        resource_type: "user",
        resource_id: Some(&out.id),
        tenant_id: out.tenant_id.as_deref(),
        before,
        after,
    };
    w.commit(change).await?;
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
    if principal.id == id {
        return Err(ApiError::conflict("you cannot delete your own account"));
    }
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let user = find(&mut w.tx, &id).await?;
    if user.role == "admin" && other_active_admins(&mut w.tx, &user.id).await? == 0 {
        return Err(ApiError::conflict(
            "this is the last active admin; make another admin first",
        ));
    }
    users::delete(&mut w.tx, &id).await?;
    let _now = w.now;
    let tenant_id = user.tenant_id.clone();
    let change = Change {
        action: "user.delete",
        resource_type: "user",
        resource_id: Some(&id),
        tenant_id: tenant_id.as_deref(),
        before: serde_json::to_value(UserOut::from(user)).ok(),
        after: None,
    };
    w.commit(change).await?;
    Ok(StatusCode::NO_CONTENT)
}
