use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ee_app::contacts::{Contact, view};
use ee_core::segment::Expr;
use ee_core::timefmt::to_rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiQuery, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

use super::parse_cursor;

pub use ee_app::contacts::view::{ContactOut, ValidationOut, contact_out};

#[derive(Debug, Deserialize, IntoParams)]
pub struct ContactQuery {
    pub status: Option<String>,
    /// valid, risky, invalid, unknown.
    pub validation: Option<String>,
    pub country: Option<String>,
    pub language: Option<String>,
    /// A data source's slug.
    pub source: Option<String>,
    /// A tag; its descendants match too.
    pub tag: Option<String>,
    /// A saved segment's id.
    pub segment: Option<String>,
    /// Search: an address (exact, any case), or `@domain` for every address at a domain.
    pub email: Option<String>,
    /// 1 to 500; 50 when absent.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// An admin names the tenant (slug or id).
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
}

/// Contacts, newest first, filtered; cursor pagination.
#[utoipa::path(get, path = "/api/v2/contacts", tag = "contacts", params(ContactQuery),
    responses((status = 200, body = super::List<ContactOut>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ContactQuery>,
) -> ApiResult<Json<super::List<ContactOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    let tenant_id = read.tenant(q.tenant_id.as_deref()).await?;
    super::one_of(
        q.status.as_deref(),
        "status",
        ee_core::contacts::ContactStatus::NAMES,
    )?;
    super::one_of(
        q.validation.as_deref(),
        "validation",
        ee_core::contacts::Verdict::NAMES,
    )?;
    let mut terms: Vec<Value> = Vec::new();
    for (field, value) in [
        ("status", &q.status),
        ("validation", &q.validation),
        ("country", &q.country),
        ("language", &q.language),
        ("source", &q.source),
    ] {
        if let Some(v) = value {
            terms.push(json!({"field": field, "op": "eq", "value": v}));
        }
    }
    if let Some(email) = q.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        let email = email.to_lowercase();
        let op = if email.starts_with('@') {
            "ends_with"
        } else {
            "eq"
        };
        terms.push(json!({"field": "email", "op": op, "value": email}));
    }
    if let Some(tag) = &q.tag {
        ee_core::tags::parse(tag).map_err(|e| ApiError::invalid_field("tag", e.to_string()))?;
        terms.push(json!({"tag": tag}));
    }
    if let Some(segment_id) = &q.segment {
        let segment =
            ee_app::campaigns::segments::of_tenant(&mut read, &tenant_id, segment_id).await?;
        terms.push(serde_json::from_str(&segment.expression).unwrap_or_default());
    }
    let expr: Option<Expr> = if terms.is_empty() {
        None
    } else {
        serde_json::from_value(json!({"and": terms})).ok()
    };
    let limit = super::limit_param(q.limit, 50, 500)?;
    let rows = view::page(
        &mut read,
        &tenant_id,
        expr.as_ref(),
        parse_cursor(q.cursor.as_deref())?,
        limit,
        state.now(),
    )
    .await?;
    let page = super::List::keyset(rows, limit, |c| format!("{}_{}", c.created_at, c.id));
    let mut items = Vec::with_capacity(page.items.len());
    for c in page.items {
        items.push(contact_out(&mut read, c).await?);
    }
    Ok(Json(super::List {
        items,
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/v2/contacts/{id}", tag = "contacts", params(("id" = String, Path)),
    responses((status = 200, body = ContactOut), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ContactOut>> {
    let mut read = Read::begin(&state, &principal).await?;
    let c = read.find::<Contact>(&id).await?;
    Ok(Json(contact_out(&mut read, c).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct EventQuery {
    /// IMPORTED, VALIDATED, SENT, DELIVERED, OPENED, CLICKED, BOUNCED, COMPLAINED, UNSUBSCRIBED…
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ContactEventOut)]
pub struct EventOut {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub campaign_id: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub occurred_at: String,
}

/// The contact's timeline, newest first.
#[utoipa::path(get, path = "/api/v2/contacts/{id}/events", tag = "contacts", params(("id" = String, Path), EventQuery),
    responses((status = 200, body = super::List<EventOut>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn events(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<Json<super::List<EventOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    read.find::<Contact>(&id).await?;
    let limit = super::limit_param(q.limit, 50, 500)?;
    let rows = view::events(
        &mut read,
        &id,
        q.event_type.as_deref(),
        parse_cursor(q.cursor.as_deref())?,
        limit,
    )
    .await?;
    let page = super::List::keyset(rows, limit, |e| format!("{}_{}", e.occurred_at, e.id));
    Ok(Json(page.map(|e| EventOut {
        id: e.id,
        event_type: e.event_type,
        campaign_id: e.campaign_id,
        metadata: serde_json::from_str(&e.metadata).unwrap_or_default(),
        occurred_at: to_rfc3339(e.occurred_at),
    })))
}

/// GDPR: everything we hold about one contact, as JSON.
#[utoipa::path(get, path = "/api/v2/contacts/{id}/export", tag = "contacts", params(("id" = String, Path)),
    responses((status = 200, description = "the contact, its tags, events and suppression entry"), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn export(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let body = ee_app::contacts::privacy::export(&mut w, &id).await?;
    w.finish().await?;
    let mut reply = Json(body).into_response();
    reply.headers_mut().insert(
        "content-disposition",
        HeaderValue::from_static("attachment; filename=\"contact.json\""),
    );
    Ok(reply)
}

/// GDPR erasure: the contact, its tags and events are deleted; only the hash of its
/// address stays, in the suppression list, so it is never imported or mailed again.
#[utoipa::path(delete, path = "/api/v2/contacts/{id}", tag = "contacts", params(("id" = String, Path)),
    responses((status = 204, description = "erased"), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn erase(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    ee_app::contacts::privacy::erase(&mut w, &id).await?;
    w.finish().await?;
    Ok(StatusCode::NO_CONTENT)
}
