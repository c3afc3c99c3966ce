use super::{List, ListParams};
use crate::extract::ApiQuery;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ee_app::sources::{self, Source};
use ee_core::source::SourceKind;

use super::ingest::{IngestRequest, IngestResponse, header, run_ingest};
use crate::audit::{Actor, Caller};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiBytes, ApiJson, RequestMeta, parse_json};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

use ee_app::sources::SECRET_PURPOSE;
pub use ee_app::sources::{CreateSource, SourceOut, SourceWithSecret};
/// Webhooks older than this are refused (replays).
const WEBHOOK_TOLERANCE_SECS: i64 = 300;

/// Registers a data source; its webhook secret is in the answer, once.
#[utoipa::path(post, path = "/api/v1/data-sources", tag = "sources", request_body = CreateSource,
    responses((status = 201, body = SourceWithSecret), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CreateSource>,
) -> ApiResult<(StatusCode, Json<SourceWithSecret>)> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let tenant_id = w.tenant(body.tenant_id.as_deref()).await?;
    let out = sources::create(
        &mut w,
        &state.settings.sealer,
        &state.services.outbound,
        &tenant_id,
        body,
    )
    .await?;
    w.finish().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/api/v1/data-sources", tag = "sources", params(ListParams),
    responses((status = 200, body = List<SourceOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<SourceOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    Ok(Json(List::of(
        sources::list(&mut read)
            .await?
            .into_iter()
            .map(SourceOut::from)
            .collect(),
        &page,
    )?))
}

#[utoipa::path(delete, path = "/api/v1/data-sources/{id}", tag = "sources", params(("id" = String, Path)),
    responses((status = 204, description = "deleted; its contacts stay"), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    ee_app::write::delete::<Source>(&mut w, &id).await?;
    w.finish().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new webhook secret; the old one stops working at once.
#[utoipa::path(post, path = "/api/v1/data-sources/{id}/rotate-secret", tag = "sources", params(("id" = String, Path)),
    responses((status = 200, body = SourceWithSecret), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<Json<SourceWithSecret>> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = sources::rotate_secret(&mut w, &state.settings.sealer, &id).await?;
    w.finish().await?;
    Ok(Json(out))
}

pub use ee_app::delivery::routing_rules::{CreateRule, RuleOut};

/// Routing rules send the contacts of a routing source (`config.route`) to the tenant of
/// the first matching rule (admin).
#[utoipa::path(post, path = "/api/v1/routing-rules", tag = "sources", request_body = CreateRule,
    responses((status = 201, body = RuleOut), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create_rule(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CreateRule>,
) -> ApiResult<(StatusCode, Json<RuleOut>)> {
    principal.require_admin()?;
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = ee_app::delivery::routing_rules::create(&mut w, body).await?;
    w.finish().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/api/v1/routing-rules", tag = "sources", params(ListParams),
    responses((status = 200, body = List<RuleOut>), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn rules(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<RuleOut>>> {
    principal.require_admin()?;
    let mut read = Read::begin(&state, &principal).await?;
    Ok(Json(List::of(
        ee_app::delivery::routing_rules::list(&mut read)
            .await?
            .into_iter()
            .map(RuleOut::from)
            .collect(),
        &page,
    )?))
}

#[utoipa::path(delete, path = "/api/v1/routing-rules/{id}", tag = "sources", params(("id" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn delete_rule(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    principal.require_admin()?;
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    ee_app::delivery::routing_rules::delete(&mut w, &id).await?;
    w.finish().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Verifies a webhook: the source (header `x-ee-source`/`x-source-id`, or the body's
/// `source_id`) must be of this kind and have signed `"<timestamp>.<body>"` with its
/// secret within the last 5 minutes. Anything else is 401 before anything is stored.
async fn verified_source(
    state: &AppState,
    kind: SourceKind,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<(Source, IngestRequest)> {
    // The signature is checked before the body is read as a request.
    let named: Option<String> = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("source_id")
                .or_else(|| v.get("sourceId"))
                .or_else(|| v.get("source"))
                .and_then(|s| s.as_str().map(str::to_owned))
        });
    let source = signed_source(state, &[kind], headers, body, named).await?;
    let request: IngestRequest = parse_json(body)?;
    Ok((source, request))
}

/// The data source that signed a request: one of `kinds`, named by the `x-ee-source` (or
/// `x-source-id`) header or by the body (`named`), whose secret signed it. The default
/// scheme signs `"<timestamp>.<body>"` (`x-ee-signature` and `x-ee-timestamp`, within 5
/// minutes); a source whose config says `"signature": "body"` may sign the body alone in
/// a `signature` header (the Scraper-Pro contract: weaker, a captured request can be
/// replayed). Anything else is 401 before anything is stored.
pub(crate) async fn signed_source(
    state: &AppState,
    kinds: &[SourceKind],
    headers: &HeaderMap,
    body: &[u8],
    named: Option<String>,
) -> ApiResult<Source> {
    let unauthorized = |why: &str| ApiError::unauthorized(format!("webhook refused: {why}"));
    let signature = header(headers, &["x-ee-signature", "x-signature", "signature"])
        .ok_or_else(|| unauthorized("no signature header"))?;
    let timestamp: Option<i64> = header(headers, &["x-ee-timestamp", "x-timestamp", "timestamp"])
        .and_then(|t| t.trim().parse().ok());
    let key = header(headers, &["x-ee-source", "x-source-id"])
        .map(str::to_owned)
        .or(named)
        .ok_or_else(|| unauthorized("no source named"))?;
    let mut read = Read::unscoped(state).await?;
    let candidates = sources::signing(&mut read, &key).await?;
    let now_secs = state.now() / 1000;
    let mut stale = false;
    for source in candidates.into_iter().filter(|s| kinds.contains(&s.kind)) {
        let Some(sealed) = &source.secret_sealed else {
            continue;
        };
        let Ok(secret) = state.settings.sealer.open(SECRET_PURPOSE, sealed) else {
            continue;
        };
        let checked = match timestamp {
            Some(ts) => ee_core::signing::verify(
                &secret,
                ts,
                body,
                signature,
                now_secs,
                WEBHOOK_TOLERANCE_SECS,
            ),
            None if sources::signs_body_only(&source.config) => {
                ee_core::signing::verify_body(&secret, body, signature)
            }
            None => continue,
        };
        match checked {
            Ok(()) => return Ok(source),
            Err(ee_core::signing::SignatureError::Stale) => stale = true,
            Err(_) => {}
        }
    }
    if stale {
        return Err(unauthorized("the timestamp is more than 5 minutes away"));
    }
    if timestamp.is_none() {
        return Err(unauthorized(
            "no valid timestamp header (only a source set to sign the body alone may omit it)",
        ));
    }
    Err(unauthorized("the signature does not match"))
}

async fn webhook(
    state: AppState,
    kind: SourceKind,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (source, request) = verified_source(&state, kind, &headers, &body).await?;
    // The webhook's change is made by its source, from the sender's address.
    let caller = Caller {
        actor: Actor {
            kind: ee_core::auth::ActorKind::System,
            id: Some(source.id.clone()),
            label: Some(format!("webhook:{}", source.slug)),
        },
        origin: meta.origin(),
    };
    let (response, replay): (IngestResponse, bool) =
        run_ingest(&state, &caller, &source.tenant_id, Some(&source), request).await?;
    let mut reply = axum::response::IntoResponse::into_response(Json(response));
    if replay {
        reply.headers_mut().insert(
            "x-idempotent-replay",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok(reply)
}

/// Contacts from Scraper-Pro, signed with the source's secret (`x-ee-signature:
/// sha256=HMAC(secret, "<x-ee-timestamp>.<body>")`). The body is an ingest batch.
#[utoipa::path(post, path = "/api/v1/webhooks/scraper-pro", tag = "sources", request_body = IngestRequest,
    responses((status = 200, body = IngestResponse), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn scraper_pro(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Response> {
    webhook(state, SourceKind::ScraperPro, meta, headers, body).await
}

/// Contacts from Backlink-Engine, signed as for Scraper-Pro.
#[utoipa::path(post, path = "/api/v1/webhooks/backlinks-engine", tag = "sources", request_body = IngestRequest,
    responses((status = 200, body = IngestResponse), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn backlinks_engine(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Response> {
    webhook(state, SourceKind::BacklinkEngine, meta, headers, body).await
}
