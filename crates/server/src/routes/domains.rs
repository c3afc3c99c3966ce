use super::{List, ListParams};
use crate::extract::ApiQuery;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
pub use ee_app::infra::dns_records::DnsRecord;
pub use ee_app::infra::domains::DkimKeyOut;
use ee_app::infra::domains::{
    self, CreateDomain, Domain, DomainOut, RotateDkim, UpdateDomain, domain_out,
};
use ee_core::timefmt::to_rfc3339;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::audit::{self};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

/// Adds a sending domain with a new DKIM key (sealed at rest, never returned).
#[utoipa::path(post, path = "/api/v1/domains", tag = "domains", request_body = CreateDomain,
    responses((status = 201, body = DomainOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CreateDomain>,
) -> ApiResult<(StatusCode, Json<DomainOut>)> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let tenant_id = w.tenant(body.tenant_id.as_deref()).await?;
    let out = domains::create(&mut w, &state.settings.sealer, &tenant_id, body).await?;
    w.finish().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/api/v1/domains", tag = "domains", params(ListParams),
    responses((status = 200, body = List<DomainOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<DomainOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    let rows = domains::list(&mut read).await?;
    // The page is cut first: each domain's keys are read for the page only.
    let page = List::of(rows, &page)?;
    let mut items = Vec::with_capacity(page.items.len());
    for d in page.items {
        items.push(domain_out(&mut read, d).await?);
    }
    Ok(Json(List {
        items,
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/v1/domains/{id}", tag = "domains", params(("id" = String, Path)),
    responses((status = 200, body = DomainOut), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<DomainOut>> {
    let mut read = Read::begin(&state, &principal).await?;
    let d = read.find::<Domain>(&id).await?;
    Ok(Json(domain_out(&mut read, d).await?))
}

#[utoipa::path(patch, path = "/api/v1/domains/{id}", tag = "domains", params(("id" = String, Path)), request_body = UpdateDomain,
    responses((status = 200, body = DomainOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateDomain>,
) -> ApiResult<Json<DomainOut>> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = domains::update(&mut w, &id, body).await?;
    w.finish().await?;
    Ok(Json(out))
}

#[utoipa::path(delete, path = "/api/v1/domains/{id}", tag = "domains", params(("id" = String, Path)),
    responses((status = 204, description = "deleted, with its keys"), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    domains::delete(&mut w, &id).await?;
    w.finish().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new DKIM key under a new selector; the old key stays published until retired.
#[utoipa::path(post, path = "/api/v1/domains/{id}/dkim/rotate", tag = "domains", params(("id" = String, Path)),
    request_body(content = RotateDkim, description = "optional"),
    responses((status = 200, body = DomainOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn rotate_dkim(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<DomainOut>> {
    let body: RotateDkim = crate::extract::parse_optional_json(&body)?;
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = domains::rotate_dkim(&mut w, &state.settings.sealer, &id, body).await?;
    w.finish().await?;
    Ok(Json(out))
}

/// Takes a replaced key out of DNS (the active one cannot be retired).
#[utoipa::path(delete, path = "/api/v1/domains/{id}/dkim/{selector}", tag = "domains", params(("id" = String, Path), ("selector" = String, Path)),
    responses((status = 204, description = "retired"), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn retire_dkim(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path((id, selector)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    domains::retire_dkim(&mut w, &id, &selector).await?;
    w.finish().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Exactly what to publish for the domain: DKIM, SPF naming the tenant's IPs, DMARC,
/// MX, and the A/AAAA and PTR records each sending IP needs.
#[utoipa::path(get, path = "/api/v1/domains/{id}/dns-records", tag = "domains", params(("id" = String, Path), ListParams),
    responses((status = 200, body = List<DnsRecord>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn dns_records(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<DnsRecord>>> {
    let mut read = Read::begin(&state, &principal).await?;
    let d = read.find::<Domain>(&id).await?;
    let dmarc = state.services.feedback.dmarc_address.as_deref();
    let out = ee_app::infra::dns_records::records(&mut read, &d, dmarc).await?;
    Ok(Json(List::of(out, &page)?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DomainCheckOut {
    pub id: String,
    pub checked_at: String,
    pub ok: bool,
    /// SPF per IP, DKIM per selector, DMARC, MX and PTR per IP.
    #[schema(value_type = Object)]
    pub results: Value,
}

/// Checks the domain's DNS now, and keeps the result in its history.
#[utoipa::path(post, path = "/api/v1/domains/{id}/validate", tag = "domains", params(("id" = String, Path)),
    responses((status = 200, body = DomainCheckOut), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn validate(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<Json<DomainCheckOut>> {
    let mut read = Read::begin(&state, &principal).await?;
    let d = read.find::<Domain>(&id).await?;
    drop(read);
    let now = state.now();
    let caller = audit::caller(&principal, &meta);
    let report = ee_app::infra::validate_domain(&state.services, &d, Some(&caller), now).await?;
    let mut read = Read::begin(&state, &principal).await?;
    let latest = domains::checks(&mut read, &d, 1)
        .await?
        .into_iter()
        .next()
        .ok_or_else(ApiError::internal)?;
    Ok(Json(DomainCheckOut {
        id: latest.id,
        checked_at: to_rfc3339(latest.checked_at),
        ok: report.ok,
        results: serde_json::to_value(&report).unwrap_or_default(),
    }))
}

/// The history of the domain's DNS checks, newest first.
#[utoipa::path(get, path = "/api/v1/domains/{id}/checks", tag = "domains", params(("id" = String, Path), ListParams),
    responses((status = 200, body = List<DomainCheckOut>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn checks(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<DomainCheckOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    let d = read.find::<Domain>(&id).await?;
    let rows = domains::checks(&mut read, &d, 100).await?;
    Ok(Json(List::of(
        rows.into_iter()
            .map(|c| DomainCheckOut {
                id: c.id,
                checked_at: to_rfc3339(c.checked_at),
                ok: c.ok == 1,
                results: serde_json::from_str(&c.results).unwrap_or_default(),
            })
            .collect(),
        &page,
    )?))
}
