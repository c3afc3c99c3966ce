use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ee_core::segment::Expr;
use ee_core::timefmt::to_rfc3339;
use ee_jobs::contacts::{self as ops, Counts, Destination, ItemResult, RawContact};
use ee_store::contacts::{self as store, Contact};
use ee_store::sources::{self, Source};
use ee_store::{AnyConnection, StoreError, segments, suppressions, tenants};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::audit::{self, Actor, Change};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestMeta};
use crate::state::AppState;

/// At most this many contacts per request.
pub const MAX_BATCH: usize = 10_000;

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactOut {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub language: Option<String>,
    pub country: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub category: Option<String>,
    pub company: Option<String>,
    /// active, unsubscribed, bounced, complained.
    pub status: String,
    pub tags: Vec<String>,
    /// Custom fields.
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// Which source gave each field its value.
    #[schema(value_type = Object)]
    pub field_sources: Value,
    pub validation: ValidationOut,
    pub source_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationOut {
    /// valid, risky, invalid or unknown (not checked yet).
    pub status: String,
    pub confidence: Option<f64>,
    pub reasons: Vec<String>,
    pub validated_at: Option<String>,
}

pub async fn contact_out(conn: &mut AnyConnection, c: Contact) -> ApiResult<ContactOut> {
    let tags = store::tags_of(conn, &c.id).await?;
    Ok(ContactOut {
        tags,
        metadata: serde_json::from_str(&c.metadata).unwrap_or_default(),
        field_sources: serde_json::from_str(&c.field_sources).unwrap_or_default(),
        validation: ValidationOut {
            status: c.validation_status,
            confidence: c.validation_confidence,
            reasons: serde_json::from_str(&c.validation_reasons).unwrap_or_default(),
            validated_at: c.validated_at.map(to_rfc3339),
        },
        created_at: to_rfc3339(c.created_at),
        updated_at: to_rfc3339(c.updated_at),
        id: c.id,
        tenant_id: c.tenant_id,
        email: c.email,
        first_name: c.first_name,
        last_name: c.last_name,
        phone: c.phone,
        language: c.language,
        country: c.country,
        address: c.address,
        city: c.city,
        category: c.category,
        company: c.company,
        status: c.status,
        source_id: c.source_id,
    })
}

/// The seeds' two shapes: one contact `{email, first_name, last_name, source, tenant}`,
/// or a batch `{source_id, batch_id, contacts: [...]}`; snake_case or camelCase.
#[derive(Debug, Deserialize, ToSchema)]
pub struct IngestRequest {
    #[serde(alias = "sourceId")]
    pub source_id: Option<String>,
    #[serde(alias = "batchId")]
    pub batch_id: Option<String>,
    /// For one contact: the source's slug.
    pub source: Option<String>,
    /// An admin names the tenant (slug or id); others ingest into their own.
    pub tenant: Option<String>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub contacts: Option<Vec<Value>>,
    /// The one-contact shape's fields sit at the top level.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub single: Map<String, Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IngestResponse {
    pub batch_id: Option<String>,
    pub source: Option<String>,
    pub counts: Counts,
    pub results: Vec<ItemResult>,
}

/// One contact object of a request to our fields, tags and custom fields.
pub fn raw_contact(value: &Value, index: usize) -> Result<RawContact, ApiError> {
    let object = value.as_object().ok_or_else(|| {
        ApiError::invalid_field(&format!("contacts[{index}]"), "must be an object")
    })?;
    let mut raw = RawContact::default();
    for (key, v) in object {
        let text = match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        if ops::is_email_header(key) {
            raw.email = text.ok_or_else(|| {
                ApiError::invalid_field(&format!("contacts[{index}].email"), "must be a string")
            })?;
        } else if ops::is_tags_header(key) {
            let tags = v.as_array().ok_or_else(|| {
                ApiError::invalid_field(
                    &format!("contacts[{index}].tags"),
                    "must be a list of strings",
                )
            })?;
            for tag in tags {
                raw.tags.push(
                    tag.as_str()
                        .ok_or_else(|| {
                            ApiError::invalid_field(
                                &format!("contacts[{index}].tags"),
                                "must be a list of strings",
                            )
                        })?
                        .to_owned(),
                );
            }
        } else if let Some(field) = ops::field_name(key) {
            if let Some(text) = text {
                raw.fields.insert(field, text);
            }
        } else if !matches!(
            key.as_str(),
            "source" | "tenant" | "source_id" | "sourceId" | "batch_id" | "batchId"
        ) && !v.is_null()
        {
            raw.metadata.insert(key.clone(), v.clone());
        }
    }
    if raw.email.is_empty() {
        return Err(ApiError::invalid_field(
            &format!("contacts[{index}].email"),
            "is required",
        ));
    }
    Ok(raw)
}

/// A tenant by slug or id, as the caller may see it.
pub async fn tenant_of(
    conn: &mut AnyConnection,
    principal: &Principal,
    requested: Option<&str>,
    field: &str,
) -> ApiResult<String> {
    match requested {
        None => principal.owning_tenant(None, field),
        Some(key) => {
            let found = tenants::get_by_slug_or_id(conn, key)
                .await
                .map_err(ApiError::from_store("tenant"))?;
            principal.owning_tenant(Some(&found.id), field)
        }
    }
}

/// A data source by slug or id within a tenant.
pub async fn source_of(conn: &mut AnyConnection, tenant_id: &str, key: &str) -> ApiResult<Source> {
    sources::find(conn, key, Some(tenant_id))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("data source"))
}

/// The common path of the ingest endpoint and the webhooks.
pub async fn run_ingest(
    state: &AppState,
    tenant_id: &str,
    source: Option<&Source>,
    body: IngestRequest,
) -> ApiResult<(IngestResponse, bool)> {
    let contacts: Vec<Value> = match body.contacts {
        Some(list) => list,
        None => {
            if body.single.is_empty() {
                return Err(ApiError::invalid_field(
                    "contacts",
                    "send a contact's fields or a list of contacts",
                ));
            }
            vec![Value::Object(body.single)]
        }
    };
    if contacts.is_empty() || contacts.len() > MAX_BATCH {
        return Err(ApiError::invalid_field(
            "contacts",
            format!("must hold 1 to {MAX_BATCH} contacts"),
        ));
    }
    let raws = contacts
        .iter()
        .enumerate()
        .map(|(i, v)| raw_contact(v, i))
        .collect::<Result<Vec<_>, _>>()?;
    let source_key = source.map_or_else(|| "api".to_owned(), |s| s.id.clone());
    let now = state.now();
    if let Some(batch_id) = &body.batch_id {
        if batch_id.is_empty() || batch_id.len() > 200 {
            return Err(ApiError::invalid_field(
                "batch_id",
                "must have 1 to 200 characters",
            ));
        }
        let mut conn = state.db.pool().acquire().await?;
        if let Some(stored) =
            sources::batch_response(&mut conn, tenant_id, &source_key, batch_id).await?
            && let Ok(replay) = serde_json::from_str(&stored)
        {
            return Ok((replay, true));
        }
    }
    let (results, counts) =
        ops::ingest(&state.db, Destination { tenant_id, source }, raws, now).await?;
    let response = IngestResponse {
        batch_id: body.batch_id.clone(),
        source: source.map(|s| s.slug.clone()),
        counts,
        results,
    };
    if let Some(batch_id) = &body.batch_id {
        let mut conn = state.db.pool().acquire().await?;
        sources::record_batch(
            &mut conn,
            tenant_id,
            &source_key,
            batch_id,
            &serde_json::to_string(&response).unwrap_or_default(),
            now,
        )
        .await?;
    }
    Ok((response, false))
}

fn ingest_reply(response: IngestResponse, replay: bool) -> Response {
    let mut reply = Json(response).into_response();
    if replay {
        reply
            .headers_mut()
            .insert("x-idempotent-replay", HeaderValue::from_static("true"));
    }
    reply
}

/// Ingests one contact or a batch (up to 10 000): each is created, updated (gaps filled,
/// tags added), a duplicate, or rejected with the reason. A batch_id already seen answers
/// the first answer again.
#[utoipa::path(post, path = "/api/v2/contacts/ingest", tag = "contacts", request_body = IngestRequest,
    responses((status = 200, body = IngestResponse), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn ingest(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<IngestRequest>,
) -> ApiResult<Response> {
    let mut conn = state.db.pool().acquire().await?;
    let tenant_id = tenant_of(&mut conn, &principal, body.tenant.as_deref(), "tenant").await?;
    drop(conn);
    let source_key = body.source_id.clone().or_else(|| body.source.clone());
    let source = match source_key {
        Some(key) => Some(
            super::sources::source_for_ingest(&state, &principal, &meta, &tenant_id, &key).await?,
        ),
        None => None,
    };
    let (response, replay) = run_ingest(&state, &tenant_id, source.as_ref(), body).await?;
    if !replay {
        let mut conn = state.db.pool().acquire().await?;
        let change = Change {
            action: "contacts.ingest",
            resource_type: "contact_batch",
            resource_id: response.batch_id.as_deref(),
            tenant_id: Some(&tenant_id),
            before: None,
            after: Some(json!({"source": response.source, "counts": response.counts})),
        };
        audit::record(
            &mut conn,
            &Actor::from(&principal),
            &meta,
            change,
            state.now(),
        )
        .await?;
    }
    Ok(ingest_reply(response, replay))
}

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
    /// 1 to 500; 50 when absent.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// An admin names the tenant (slug or id).
    pub tenant: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactPage {
    pub items: Vec<ContactOut>,
    pub next_cursor: Option<String>,
}

pub fn parse_cursor(cursor: Option<&str>) -> ApiResult<Option<(i64, String)>> {
    cursor
        .map(|c| {
            c.split_once('_')
                .and_then(|(t, id)| Some((t.parse().ok()?, id.to_owned())))
                .ok_or_else(|| {
                    ApiError::invalid_field("cursor", "is not a cursor this API returned")
                })
        })
        .transpose()
}

/// Contacts, newest first, filtered; cursor pagination.
#[utoipa::path(get, path = "/api/v2/contacts", tag = "contacts", params(ContactQuery),
    responses((status = 200, body = ContactPage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ContactQuery>,
) -> ApiResult<Json<ContactPage>> {
    let mut conn = state.db.pool().acquire().await?;
    let tenant_id = tenant_of(&mut conn, &principal, q.tenant.as_deref(), "tenant").await?;
    super::one_of(
        q.status.as_deref(),
        "status",
        &ee_core::contacts::CONTACT_STATUSES,
    )?;
    super::one_of(
        q.validation.as_deref(),
        "validation",
        &["valid", "risky", "invalid", "unknown"],
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
    if let Some(tag) = &q.tag {
        ee_core::tags::parse(tag).map_err(|e| ApiError::invalid_field("tag", e.to_string()))?;
        terms.push(json!({"tag": tag}));
    }
    if let Some(segment_id) = &q.segment {
        let segment = segments::get(&mut conn, segment_id, Some(&tenant_id))
            .await
            .map_err(ApiError::from_store("segment"))?;
        terms.push(serde_json::from_str(&segment.expression).unwrap_or_default());
    }
    let expr: Option<Expr> = if terms.is_empty() {
        None
    } else {
        serde_json::from_value(json!({"and": terms})).ok()
    };
    let limit = super::limit_param(q.limit, 50, 500)?;
    let rows = segments::page(
        &mut conn,
        &tenant_id,
        expr.as_ref(),
        parse_cursor(q.cursor.as_deref())?,
        limit,
        state.now(),
    )
    .await
    .map_err(|e| match e {
        StoreError::Conflict(m) => ApiError::invalid_field("filter", m),
        other => other.into(),
    })?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|c| format!("{}_{}", c.created_at, c.id)))
        .flatten();
    let mut items = Vec::with_capacity(rows.len());
    for c in rows {
        items.push(contact_out(&mut conn, c).await?);
    }
    Ok(Json(ContactPage { items, next_cursor }))
}

pub async fn visible(
    conn: &mut AnyConnection,
    principal: &Principal,
    id: &str,
) -> ApiResult<Contact> {
    store::get(conn, id, principal.scope())
        .await
        .map_err(ApiError::from_store("contact"))
}

#[utoipa::path(get, path = "/api/v2/contacts/{id}", tag = "contacts", params(("id" = String, Path)),
    responses((status = 200, body = ContactOut), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ContactOut>> {
    let mut conn = state.db.pool().acquire().await?;
    let c = visible(&mut conn, &principal, &id).await?;
    Ok(Json(contact_out(&mut conn, c).await?))
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
pub struct EventOut {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub campaign_id: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub occurred_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<EventOut>,
    pub next_cursor: Option<String>,
}

/// The contact's timeline, newest first.
#[utoipa::path(get, path = "/api/v2/contacts/{id}/events", tag = "contacts", params(("id" = String, Path), EventQuery),
    responses((status = 200, body = EventPage), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn events(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<Json<EventPage>> {
    let mut conn = state.db.pool().acquire().await?;
    visible(&mut conn, &principal, &id).await?;
    let limit = super::limit_param(q.limit, 50, 500)?;
    let rows = store::events(
        &mut conn,
        &id,
        q.event_type.as_deref(),
        parse_cursor(q.cursor.as_deref())?,
        limit,
    )
    .await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|e| format!("{}_{}", e.occurred_at, e.id)))
        .flatten();
    Ok(Json(EventPage {
        items: rows
            .into_iter()
            .map(|e| EventOut {
                id: e.id,
                event_type: e.event_type,
                campaign_id: e.campaign_id,
                metadata: serde_json::from_str(&e.metadata).unwrap_or_default(),
                occurred_at: to_rfc3339(e.occurred_at),
            })
            .collect(),
        next_cursor,
    }))
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
    let mut conn = state.db.pool().acquire().await?;
    let c = visible(&mut conn, &principal, &id).await?;
    let tenant_id = c.tenant_id.clone();
    let hash = c.email_hash.clone();
    let all_events = store::events(&mut conn, &id, None, None, i64::MAX).await?;
    let suppression = suppressions::find(&mut conn, &tenant_id, &hash).await?;
    let contact = contact_out(&mut conn, c).await?;
    let body = json!({
        "exported_at": to_rfc3339(state.now()),
        "contact": contact,
        "events": all_events.into_iter().map(|e| json!({"type": e.event_type, "campaign_id": e.campaign_id, "metadata": serde_json::from_str::<Value>(&e.metadata).unwrap_or_default(), "occurred_at": to_rfc3339(e.occurred_at)})).collect::<Vec<_>>(),
        "suppression": suppression.map(|s| json!({"reason": s.reason, "since": to_rfc3339(s.created_at)})),
    });
    let change = Change {
        action: "contact.export",
        resource_type: "contact",
        resource_id: Some(&id),
        tenant_id: Some(&tenant_id),
        before: None,
        after: None,
    };
    audit::record(
        &mut conn,
        &Actor::from(&principal),
        &meta,
        change,
        state.now(),
    )
    .await?;
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
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let c = visible(&mut tx, &principal, &id).await?;
    // Its MailWizz subscribers go too (by uid: the job's payload holds no address).
    ee_jobs::mailwizz::enqueue_erasure(&mut tx, &c.id, now).await?;
    store::erase(&mut tx, &c.id).await?;
    if !suppressions::add(
        &mut tx,
        &c.tenant_id,
        &c.email_hash,
        None,
        "erased",
        Some("gdpr"),
        now,
    )
    .await?
    {
        suppressions::forget_address(&mut tx, &c.tenant_id, &c.email_hash).await?;
    }
    // The audit entry keeps the hash, not the address.
    let change = Change {
        action: "contact.erase",
        resource_type: "contact",
        resource_id: Some(&c.id),
        tenant_id: Some(&c.tenant_id),
        before: Some(json!({"email_hash": c.email_hash})),
        after: None,
    };
    audit::record(&mut tx, &Actor::from(&principal), &meta, change, now).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkTags {
    /// A segment expression choosing the contacts.
    #[schema(value_type = Object)]
    pub filter: Value,
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
    /// An admin names the tenant.
    pub tenant: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkTagsOut {
    pub matched: u64,
    pub tagged: u64,
    pub untagged: u64,
}

/// Adds and removes tags on every contact a filter matches (removing a tag removes its descendants).
#[utoipa::path(post, path = "/api/v2/contacts/tags", tag = "contacts", request_body = BulkTags,
    responses((status = 200, body = BulkTagsOut), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn bulk_tags(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<BulkTags>,
) -> ApiResult<Json<BulkTagsOut>> {
    let now = state.now();
    let expr: Expr = serde_json::from_value(body.filter.clone())
        .map_err(|e| ApiError::invalid_field("filter", e.to_string()))?;
    ee_core::segment::check(&expr, now)
        .map_err(|e| ApiError::invalid_field("filter", e.to_string()))?;
    let add = body
        .add
        .iter()
        .map(|t| ee_core::tags::parse(t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::invalid_field("add", e.to_string()))?;
    let remove = body
        .remove
        .iter()
        .map(|t| ee_core::tags::parse(t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::invalid_field("remove", e.to_string()))?;
    let mut conn = state.db.pool().acquire().await?;
    let tenant_id = tenant_of(&mut conn, &principal, body.tenant.as_deref(), "tenant").await?;
    drop(conn);
    let mut tx = state.db.begin_bulk().await?;
    let mut add_ids = Vec::new();
    for tag in &add {
        add_ids.push(store::ensure_tag(&mut tx, &tenant_id, tag, now).await?);
    }
    let (mut matched, mut tagged, mut untagged) = (0u64, 0u64, 0u64);
    let mut after: Option<String> = None;
    loop {
        let ids = segments::ids(&mut tx, &tenant_id, &expr, after.as_deref(), 1000, now).await?;
        let Some(last) = ids.last().cloned() else {
            break;
        };
        matched += ids.len() as u64;
        let pairs: Vec<(String, String)> = ids
            .iter()
            .flat_map(|id| add_ids.iter().map(move |tag| (id.clone(), tag.clone())))
            .collect();
        tagged += store::tag_many(&mut tx, &pairs, now).await?;
        for tag in &remove {
            untagged += store::untag_many(&mut tx, &tenant_id, &ids, &tag.slug()).await?;
        }
        after = Some(last);
    }
    let change = Change {
        action: "contacts.bulk_tags",
        resource_type: "contact",
        resource_id: None,
        tenant_id: Some(&tenant_id),
        before: None,
        after: Some(
            json!({"filter": body.filter, "add": body.add, "remove": body.remove, "matched": matched}),
        ),
    };
    audit::record(&mut tx, &Actor::from(&principal), &meta, change, now).await?;
    tx.commit().await?;
    Ok(Json(BulkTagsOut {
        matched,
        tagged,
        untagged,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagOut {
    pub id: String,
    pub slug: String,
    pub name: String,
    /// TYPE, SECTOR, QUALITY, GEOGRAPHY, another word, or FREE.
    pub category: String,
    pub parent_id: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TenantQuery {
    /// An admin names the tenant (slug or id).
    pub tenant: Option<String>,
}

/// The tenant's tags with their hierarchy.
#[utoipa::path(get, path = "/api/v2/tags", tag = "contacts", params(TenantQuery),
    responses((status = 200, body = Vec<TagOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn tags(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<TenantQuery>,
) -> ApiResult<Json<Vec<TagOut>>> {
    let mut conn = state.db.pool().acquire().await?;
    let tenant_id = tenant_of(&mut conn, &principal, q.tenant.as_deref(), "tenant").await?;
    let rows = store::list_tags(&mut conn, &tenant_id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|t| TagOut {
                id: t.id,
                slug: t.slug,
                name: t.name,
                category: t.category,
                parent_id: t.parent_id,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    pub emails: Vec<String>,
    /// Also probe the mail server with RCPT (slow; off by default).
    #[serde(default)]
    pub smtp_probe: bool,
    pub tenant: Option<String>,
}

/// Checks addresses now: syntax, MX (cached), disposable, role, free (and an SMTP probe
/// when asked). Nothing is stored but the MX cache.
#[utoipa::path(post, path = "/api/v1/validation/emails", tag = "contacts", request_body = ValidateRequest,
    responses((status = 200, body = Vec<ee_jobs::contacts::Validation>), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn validate(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<ValidateRequest>,
) -> ApiResult<Json<Vec<ee_jobs::contacts::Validation>>> {
    if body.emails.is_empty() || body.emails.len() > 1000 {
        return Err(ApiError::invalid_field(
            "emails",
            "must hold 1 to 1000 addresses",
        ));
    }
    let mut conn = state.db.pool().acquire().await?;
    let lists = match tenant_of(&mut conn, &principal, body.tenant.as_deref(), "tenant").await {
        Ok(tenant_id) => sources::extra_lists(&mut conn, &tenant_id).await?,
        Err(_) if principal.is_admin() && body.tenant.is_none() => Default::default(),
        Err(e) => return Err(e),
    };
    drop(conn);
    let now = state.now();
    let mut out = Vec::with_capacity(body.emails.len());
    for email in &body.emails {
        out.push(
            ops::validate_address(
                &state.services,
                email,
                &lists,
                Default::default(),
                body.smtp_probe,
                now,
            )
            .await?,
        );
    }
    Ok(Json(out))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListEntries {
    /// Domains (disposable, free) or local parts (role) added to the shipped list.
    pub values: Vec<String>,
    pub tenant: Option<String>,
}

/// Replaces the tenant's additions to a shipped list (disposable, free or role).
#[utoipa::path(put, path = "/api/v1/validation/lists/{list}", tag = "contacts", params(("list" = String, Path)), request_body = ListEntries,
    responses((status = 200, body = ListEntries), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn put_list(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(list): Path<String>,
    ApiJson(body): ApiJson<ListEntries>,
) -> ApiResult<Json<ListEntries>> {
    if !["disposable", "free", "role"].contains(&list.as_str()) {
        return Err(ApiError::not_found("list"));
    }
    if body.values.len() > 10_000 {
        return Err(ApiError::invalid_field("values", "at most 10 000 values"));
    }
    let values: Vec<String> = body
        .values
        .iter()
        .map(|v| v.trim().to_lowercase())
        .filter(|v| !v.is_empty())
        .collect();
    let mut tx = state.db.begin().await?;
    let tenant_id = tenant_of(&mut tx, &principal, body.tenant.as_deref(), "tenant").await?;
    sources::set_list_entries(&mut tx, &tenant_id, &list, &values).await?;
    let change = Change {
        action: "validation_list.update",
        resource_type: "validation_list",
        resource_id: Some(&list),
        tenant_id: Some(&tenant_id),
        before: None,
        after: Some(json!({"values": values})),
    };
    audit::record(
        &mut tx,
        &Actor::from(&principal),
        &meta,
        change,
        state.now(),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(ListEntries {
        values,
        tenant: Some(tenant_id),
    }))
}

/// Webhook signature headers: ours (`x-ee-…`) or the seeds' plain names.
pub fn header<'a>(headers: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| headers.get(*n).and_then(|v| v.to_str().ok()))
}
