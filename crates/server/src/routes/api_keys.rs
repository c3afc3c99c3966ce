use super::{List, ListParams};
use crate::extract::ApiQuery;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::parse_time;
use crate::auth::Principal;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};
pub use ee_app::access::api_keys::ApiKeyOut;

/// A key with its secret: answered once, at creation or rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyWithSecret {
    #[serde(flatten)]
    pub api_key: ApiKeyOut,
    /// The secret. It is not stored and cannot be shown again.
    pub key: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub name: String,
    /// Required for an admin; a tenant's user gets a key of its own tenant.
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    /// RFC 3339; no expiry when absent.
    pub expires_at: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateApiKey {
    /// How long the replaced key keeps working, in seconds (default from the config, 0 = none).
    pub grace_secs: Option<i64>,
}

/// Creates an API key. The secret is in the answer, once.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = CreateApiKey,
    responses((status = 201, body = ApiKeyWithSecret), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<ApiKeyWithSecret>)> {
    let tenant_id = principal.owning_tenant(body.tenant_id.as_deref(), "tenant_id")?;
    let input = ee_app::access::api_keys::NewKeyInput {
        tenant: tenant_id,
        name: body.name,
        expires_at: parse_time(body.expires_at.as_deref(), "expires_at")?,
        created_by: Some(principal.id.clone()),
    };
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let (api_key, key) = ee_app::access::api_keys::create(&mut w, input).await?;
    w.finish().await?;
    Ok((StatusCode::CREATED, Json(ApiKeyWithSecret { api_key, key })))
}

/// Lists the caller's visible keys, without secrets.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", params(ListParams),
    responses((status = 200, body = List<ApiKeyOut>), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<ApiKeyOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    let now = state.now();
    let keys = ee_app::access::api_keys::list(&mut read).await?;
    Ok(Json(List::of(
        keys.into_iter().map(|k| ApiKeyOut::new(k, now)).collect(),
        &page,
    )?))
}

/// Revokes a key at once (its rotation's previous secret too).
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys", params(("id" = String, Path)),
    responses((status = 204, description = "revoked"), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    ee_app::access::api_keys::revoke(&mut w, &id).await?;
    w.finish().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Issues a new secret for a key; the old one keeps working for the grace period.
#[utoipa::path(post, path = "/api/v1/api-keys/{id}/rotate", tag = "api-keys", params(("id" = String, Path)),
    request_body(content = RotateApiKey, description = "optional"),
    responses((status = 200, body = ApiKeyWithSecret), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn rotate(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<ApiKeyWithSecret>> {
    let body: RotateApiKey = crate::extract::parse_optional_json(&body)?;
    let grace_secs = body.grace_secs.unwrap_or(state.settings.api_key_grace_secs);
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let (api_key, key) = ee_app::access::api_keys::rotate(&mut w, &id, grace_secs).await?;
    w.finish().await?;
    Ok(Json(ApiKeyWithSecret { api_key, key }))
}
