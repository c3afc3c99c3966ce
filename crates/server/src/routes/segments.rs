use super::{List, ListParams};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ee_app::campaigns::segments::{self, Segment, SegmentBody, SegmentOut, parse_expr};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::contacts::{ContactOut, contact_out};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

#[utoipa::path(post, path = "/api/v2/segments", tag = "segments", request_body = SegmentBody,
    responses((status = 201, body = SegmentOut), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<SegmentBody>,
) -> ApiResult<(StatusCode, Json<SegmentOut>)> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let tenant_id = w.tenant(body.tenant_id.as_deref()).await?;
    let out = segments::create(&mut w, &tenant_id, &body).await?;
    w.finish().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/api/v2/segments", tag = "segments", params(ListParams),
    responses((status = 200, body = List<SegmentOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<SegmentOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    Ok(Json(List::of(
        segments::list(&mut read)
            .await?
            .into_iter()
            .map(SegmentOut::from)
            .collect(),
        &page,
    )?))
}

#[utoipa::path(get, path = "/api/v2/segments/{id}", tag = "segments", params(("id" = String, Path)),
    responses((status = 200, body = SegmentOut), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<SegmentOut>> {
    let mut read = Read::begin(&state, &principal).await?;
    Ok(Json(read.find::<Segment>(&id).await?.into()))
}

#[utoipa::path(patch, path = "/api/v2/segments/{id}", tag = "segments", params(("id" = String, Path)), request_body = SegmentBody,
    responses((status = 200, body = SegmentOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SegmentBody>,
) -> ApiResult<Json<SegmentOut>> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = segments::update(&mut w, &id, &body).await?;
    w.finish().await?;
    Ok(Json(out))
}

#[utoipa::path(delete, path = "/api/v2/segments/{id}", tag = "segments", params(("id" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    ee_app::write::delete::<Segment>(&mut w, &id).await?;
    w.finish().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CountOut {
    pub count: i64,
}

/// How many contacts a saved segment matches now (counted in the database).
#[utoipa::path(post, path = "/api/v2/segments/{id}/count", tag = "segments", params(("id" = String, Path)),
    responses((status = 200, body = CountOut), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn count(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<CountOut>> {
    let mut read = Read::begin(&state, &principal).await?;
    let s = read.find::<Segment>(&id).await?;
    let now = state.now();
    let expr = parse_expr(
        &serde_json::from_str(&s.expression).unwrap_or_default(),
        now,
    )?;
    Ok(Json(CountOut {
        count: segments::count(&mut read, &s.tenant_id, &expr, now).await?,
    }))
}

/// Counts an expression without saving it.
#[utoipa::path(post, path = "/api/v2/segments/count", tag = "segments", request_body = SegmentBody,
    responses((status = 200, body = CountOut), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn count_expression(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<SegmentBody>,
) -> ApiResult<Json<CountOut>> {
    let now = state.now();
    let expr = parse_expr(
        body.expression
            .as_ref()
            .ok_or_else(|| ApiError::invalid_field("expression", "is required"))?,
        now,
    )?;
    let mut read = Read::begin(&state, &principal).await?;
    let tenant_id = read.tenant(body.tenant_id.as_deref()).await?;
    Ok(Json(CountOut {
        count: segments::count(&mut read, &tenant_id, &expr, now).await?,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PreviewQuery {
    /// 1 to 100; 20 when absent.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The newest contacts of a segment.
#[utoipa::path(get, path = "/api/v2/segments/{id}/preview", tag = "segments", params(("id" = String, Path), PreviewQuery),
    responses((status = 200, body = List<ContactOut>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn preview(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PreviewQuery>,
) -> ApiResult<Json<List<ContactOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    let s = read.find::<Segment>(&id).await?;
    let now = state.now();
    let expr = parse_expr(
        &serde_json::from_str(&s.expression).unwrap_or_default(),
        now,
    )?;
    let limit = super::limit_param(q.limit, 20, 100)?;
    let rows = segments::contacts(
        &mut read,
        &s.tenant_id,
        &expr,
        super::parse_cursor(q.cursor.as_deref())?,
        limit,
        now,
    )
    .await?;
    let page = List::keyset(rows, limit, |c| format!("{}_{}", c.created_at, c.id));
    let mut items = Vec::with_capacity(page.items.len());
    for c in page.items {
        items.push(contact_out(&mut read, c).await?);
    }
    Ok(Json(List {
        items,
        next_cursor: page.next_cursor,
    }))
}
