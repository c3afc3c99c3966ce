//! Contact ingestion over the API: one contact or a batch, idempotent by batch id; the
//! signed webhooks share its path.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use ee_app::contacts::{self as ops, Counts, Destination, ItemResult, RawContact};
use ee_app::sources::Source;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::audit::{self, Caller};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;

/// At most this many contacts per request.
pub const MAX_BATCH: usize = 10_000;

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
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
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
        if ee_app::sources::field_names::is_email_header(key) {
            raw.email = text.ok_or_else(|| {
                ApiError::invalid_field(&format!("contacts[{index}].email"), "must be a string")
            })?;
        } else if ee_app::sources::field_names::is_tags_header(key) {
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
        } else if let Some(field) = ee_app::sources::field_names::field_name(key) {
            if let Some(text) = text {
                raw.fields.insert(field, text);
            }
        } else if !matches!(
            key.as_str(),
            "source" | "tenant" | "tenant_id" | "source_id" | "sourceId" | "batch_id" | "batchId"
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

/// The common path of the ingest endpoint and the webhooks.
pub async fn run_ingest(
    state: &AppState,
    caller: &Caller,
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
    let now = state.now();
    if let Some(batch_id) = &body.batch_id {
        if batch_id.is_empty() || batch_id.len() > 200 {
            return Err(ApiError::invalid_field(
                "batch_id",
                "must have 1 to 200 characters",
            ));
        }
        let mut read = Read::unscoped(state).await?;
        if let Some(stored) = ops::batch_answer(&mut read, tenant_id, source, batch_id).await?
            && let Ok(replay) = serde_json::from_str(&stored)
        {
            return Ok((replay, true));
        }
    }
    let source_slug = source.map(|s| s.slug.clone());
    // Kept in the answer's own shape, so that a replay reads it back as one.
    let answer = |results: &[ItemResult], counts: &Counts| {
        let kept = IngestResponse {
            batch_id: body.batch_id.clone(),
            source: source_slug.clone(),
            counts: counts.clone(),
            results: results.to_vec(),
        };
        serde_json::to_string(&kept).unwrap_or_default()
    };
    let record = ops::BatchRecord {
        caller,
        batch_id: body.batch_id.as_deref(),
        answer: &answer,
    };
    let dest = Destination {
        tenant_id,
        source,
        channel: "api",
    };
    let (results, counts) = ops::ingest(&state.db, dest, raws, now, Some(record)).await?;
    let response = IngestResponse {
        batch_id: body.batch_id.clone(),
        source: source_slug.clone(),
        counts,
        results,
    };
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
    let mut read = Read::begin(&state, &principal).await?;
    let tenant_id = read.tenant(body.tenant_id.as_deref()).await?;
    drop(read);
    let caller = audit::caller(&principal, &meta);
    let source_key = body.source_id.clone().or_else(|| body.source.clone());
    let source = match source_key {
        Some(key) => Some(
            ee_app::sources::for_ingest(
                &state.db,
                &state.settings.sealer,
                &caller,
                &tenant_id,
                &key,
                state.now(),
            )
            .await?,
        ),
        None => None,
    };
    let (response, replay) = run_ingest(&state, &caller, &tenant_id, source.as_ref(), body).await?;
    Ok(ingest_reply(response, replay))
}

/// Webhook signature headers: ours (`x-ee-…`) or the seeds' plain names.
pub fn header<'a>(headers: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| headers.get(*n).and_then(|v| v.to_str().ok()))
}
