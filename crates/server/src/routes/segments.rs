use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ee_core::segment::Expr;
use ee_core::timefmt::to_rfc3339;
use ee_store::segments::{self, Segment};
use ee_store::{AnyConnection, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::contacts::{ContactOut, contact_out};
use super::tenant_of;
use crate::audit::Change;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestMeta};
use crate::state::AppState;
use crate::write::Write;

#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentOut {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub expression: Value,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Segment> for SegmentOut {
    fn from(s: Segment) -> Self {
        Self {
            id: s.id,
            tenant_id: s.tenant_id,
            name: s.name,
            expression: serde_json::from_str(&s.expression).unwrap_or_default(),
            created_at: to_rfc3339(s.created_at),
            updated_at: to_rfc3339(s.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentBody {
    pub name: Option<String>,
    /// `{"and"|"or": [...]}`, `{"not": …}`, `{"tag": "TYPE:LAWYER"}`,
    /// `{"field": "country", "op": "eq", "value": "FR"}`; fields language, country, status,
    /// source, validation, created_at, engaged_at, email, category, city.
    #[schema(value_type = Option<Object>)]
    pub expression: Option<Value>,
    pub tenant: Option<String>,
}

fn parse_expr(value: &Value, now: i64) -> ApiResult<Expr> {
    let expr: Expr = serde_json::from_value(value.clone()).map_err(|_| {
        ApiError::invalid_field(
            "expression",
            "is not a segment expression (and, or, not, tag, field)",
        )
    })?;
    ee_core::segment::check(&expr, now)
        .map_err(|e| ApiError::invalid_field("expression", e.to_string()))?;
    Ok(expr)
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(m) if !m.contains("exists") => {
            ApiError::invalid_field("expression", m)
        }
        other => other.into(),
    }
}

async fn visible(conn: &mut AnyConnection, principal: &Principal, id: &str) -> ApiResult<Segment> {
    segments::get(conn, id, principal.scope())
        .await
        .map_err(ApiError::from_store("segment"))
}

#[utoipa::path(post, path = "/api/v2/segments", tag = "segments", request_body = SegmentBody,
    responses((status = 201, body = SegmentOut), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<SegmentBody>,
) -> ApiResult<(StatusCode, Json<SegmentOut>)> {
    let now = state.now();
    let name = body
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::invalid_field("name", "is required"))?
        .to_owned();
    let expression = body
        .expression
        .as_ref()
        .ok_or_else(|| ApiError::invalid_field("expression", "is required"))?;
    parse_expr(expression, now)?;
    let mut w = Write::begin(&state, &principal, &meta, now).await?;
    let tenant_id = tenant_of(&mut w.tx, &principal, body.tenant.as_deref(), "tenant").await?;
    let s = segments::insert(&mut w.tx, &tenant_id, &name, &expression.to_string(), now).await?;
    let out = SegmentOut::from(s);
    let change = Change {
        action: "segment.create",
        resource_type: "segment",
        resource_id: Some(&out.id),
        tenant_id: Some(&tenant_id),
        before: None,
        after: serde_json::to_value(&out).ok(),
    };
    w.commit(change).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/api/v2/segments", tag = "segments",
    responses((status = 200, body = Vec<SegmentOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Vec<SegmentOut>>> {
    let mut conn = state.db.pool().acquire().await?;
    Ok(Json(
        segments::list(&mut conn, principal.scope())
            .await?
            .into_iter()
            .map(SegmentOut::from)
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v2/segments/{id}", tag = "segments", params(("id" = String, Path)),
    responses((status = 200, body = SegmentOut), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<SegmentOut>> {
    let mut conn = state.db.pool().acquire().await?;
    Ok(Json(visible(&mut conn, &principal, &id).await?.into()))
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
    let now = state.now();
    let mut w = Write::begin(&state, &principal, &meta, now).await?;
    let mut s = visible(&mut w.tx, &principal, &id).await?;
    let before = serde_json::to_value(SegmentOut::from(s.clone())).ok();
    if let Some(name) = body.name.as_deref().map(str::trim) {
        if name.is_empty() {
            return Err(ApiError::invalid_field("name", "must not be blank"));
        }
        s.name = name.to_owned();
    }
    if let Some(expression) = &body.expression {
        parse_expr(expression, now)?;
        s.expression = expression.to_string();
    }
    segments::update(&mut w.tx, &s, now).await?;
    let out = SegmentOut::from(s);
    let change = Change {
        action: "segment.update",
        resource_type: "segment",
        resource_id: Some(&out.id),
        tenant_id: Some(&out.tenant_id),
        before,
        after: serde_json::to_value(&out).ok(),
    };
    w.commit(change).await?;
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
    let s = visible(&mut w.tx, &principal, &id).await?;
    segments::delete(&mut w.tx, &id).await?;
    let tenant_id = s.tenant_id.clone();
    let change = Change {
        action: "segment.delete",
        resource_type: "segment",
        resource_id: Some(&id),
        tenant_id: Some(&tenant_id),
        before: serde_json::to_value(SegmentOut::from(s)).ok(),
        after: None,
    };
    w.commit(change).await?;
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
    let mut conn = state.db.pool().acquire().await?;
    let s = visible(&mut conn, &principal, &id).await?;
    let now = state.now();
    let expr = parse_expr(
        &serde_json::from_str(&s.expression).unwrap_or_default(),
        now,
    )?;
    Ok(Json(CountOut {
        count: segments::count(&mut conn, &s.tenant_id, &expr, now)
            .await
            .map_err(store_error)?,
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
    let mut conn = state.db.pool().acquire().await?;
    let tenant_id = tenant_of(&mut conn, &principal, body.tenant.as_deref(), "tenant").await?;
    Ok(Json(CountOut {
        count: segments::count(&mut conn, &tenant_id, &expr, now)
            .await
            .map_err(store_error)?,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PreviewQuery {
    /// 1 to 100; 20 when absent.
    pub limit: Option<i64>,
}

/// The newest contacts of a segment.
#[utoipa::path(get, path = "/api/v2/segments/{id}/preview", tag = "segments", params(("id" = String, Path), PreviewQuery),
    responses((status = 200, body = Vec<ContactOut>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn preview(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PreviewQuery>,
) -> ApiResult<Json<Vec<ContactOut>>> {
    let mut conn = state.db.pool().acquire().await?;
    let s = visible(&mut conn, &principal, &id).await?;
    let now = state.now();
    let expr = parse_expr(
        &serde_json::from_str(&s.expression).unwrap_or_default(),
        now,
    )?;
    let rows = segments::page(
        &mut conn,
        &s.tenant_id,
        Some(&expr),
        None,
        super::limit_param(q.limit, 20, 100)?,
        now,
    )
    .await
    .map_err(store_error)?;
    let mut out = Vec::with_capacity(rows.len());
    for c in rows {
        out.push(contact_out(&mut conn, c).await?);
    }
    Ok(Json(out))
}
