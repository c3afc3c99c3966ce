use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ee_app::contacts::suppressions;
pub use ee_app::contacts::suppressions::{AddSuppression, SuppressionOut};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Principal;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

#[derive(Debug, Deserialize, IntoParams)]
pub struct SuppressionQuery {
    pub reason: Option<String>,
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    /// 1 to 1000; 100 when absent.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[serde(alias = "after")]
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v2/suppressions", tag = "contacts", params(SuppressionQuery),
    responses((status = 200, body = super::List<SuppressionOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<SuppressionQuery>,
) -> ApiResult<Json<super::List<SuppressionOut>>> {
    super::one_of(
        q.reason.as_deref(),
        "reason",
        ee_core::contacts::SuppressionReason::NAMES,
    )?;
    let mut read = Read::begin(&state, &principal).await?;
    let tenant_id = read.tenant(q.tenant_id.as_deref()).await?;
    let limit = super::limit_param(q.limit, 100, 1000)?;
    let rows = suppressions::list(
        &mut read,
        &tenant_id,
        q.reason.as_deref(),
        q.cursor.as_deref(),
        limit,
    )
    .await?;
    let page = super::List::keyset(rows, limit, |s| s.id.clone());
    Ok(Json(page.map(SuppressionOut::from)))
}

/// Adds an address; a contact with it is marked accordingly.
#[utoipa::path(post, path = "/api/v2/suppressions", tag = "contacts", request_body = AddSuppression,
    responses((status = 201, body = SuppressionOut), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn add(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<AddSuppression>,
) -> ApiResult<(StatusCode, Json<SuppressionOut>)> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let tenant_id = w.tenant(body.tenant_id.as_deref()).await?;
    let out = suppressions::add(&mut w, &tenant_id, body).await?;
    w.finish().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TenantParam {
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
}

/// Removes an entry (not an erasure's: that one stays).
#[utoipa::path(delete, path = "/api/v2/suppressions/{id}", tag = "contacts", params(("id" = String, Path), TenantParam),
    responses((status = 204, description = "removed"), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<TenantParam>,
) -> ApiResult<StatusCode> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let tenant_id = w.tenant(q.tenant_id.as_deref()).await?;
    suppressions::remove(&mut w, &tenant_id, &id).await?;
    w.finish().await?;
    Ok(StatusCode::NO_CONTENT)
}
