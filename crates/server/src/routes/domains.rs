use super::{List, ListParams};
use crate::extract::ApiQuery;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
pub use ee_app::infra::domains::DkimKeyOut;
use ee_app::infra::domains::{self, CreateDomain, DomainOut, RotateDkim, UpdateDomain, domain_out};
use ee_core::ip::reverse_name;
use ee_core::timefmt::to_rfc3339;
use ee_mail::dkim::{self, Algorithm};
use ee_store::Scope;
use ee_store::ips::{self, IpFilter};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::audit::{self};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, RequestMeta};
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
    let mut conn = state.db.pool().acquire().await?;
    let rows = ee_store::domains::list(&mut conn, principal.scope()).await?;
    // The page is cut first: each domain's keys are read for the page only.
    let page = List::of(rows, &page)?;
    let mut items = Vec::with_capacity(page.items.len());
    for d in page.items {
        items.push(domain_out(&mut conn, d).await?);
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
    let mut conn = state.db.pool().acquire().await?;
    let d = super::visible::<ee_store::domains::Domain>(&mut conn, &principal, &id).await?;
    Ok(Json(domain_out(&mut conn, d).await?))
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

#[derive(Debug, Serialize, ToSchema)]
pub struct DnsRecord {
    /// TXT, MX, A, AAAA or PTR.
    #[serde(rename = "type")]
    pub record_type: String,
    pub name: String,
    pub value: String,
    /// TXT values over 255 bytes are published as these strings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strings: Option<Vec<String>>,
    pub purpose: String,
}

fn txt(name: String, value: String, purpose: &str) -> DnsRecord {
    let strings = (value.len() > 255).then(|| dkim::txt_strings(&value));
    DnsRecord {
        record_type: "TXT".into(),
        name,
        value,
        strings,
        purpose: purpose.into(),
    }
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
    let mut conn = state.db.pool().acquire().await?;
    let d = super::visible::<ee_store::domains::Domain>(&mut conn, &principal, &id).await?;
    let keys = ee_store::domains::published_keys(&mut conn, &d.id).await?;
    let tenant_ips = ips::list(
        &mut conn,
        &IpFilter {
            scope: Scope::Tenant(&d.tenant_id),
            ..Default::default()
        },
    )
    .await?;
    let mut out = Vec::new();
    for key in keys {
        let purpose = if key.status == "active" {
            "DKIM key that signs"
        } else {
            "DKIM key replaced by a rotation, kept until retired"
        };
        let algorithm = Algorithm::parse(&key.algorithm).unwrap_or(Algorithm::Rsa);
        out.push(txt(
            format!("{}._domainkey.{}", key.selector, d.domain_name),
            dkim::dns_record(algorithm, &key.public_key),
            purpose,
        ));
    }
    let mechanisms: Vec<String> = tenant_ips
        .iter()
        .filter_map(|ip| ip.ip_address.parse::<std::net::IpAddr>().ok())
        .map(|ip| {
            if ip.is_ipv4() {
                format!("ip4:{ip}")
            } else {
                format!("ip6:{ip}")
            }
        })
        .collect();
    out.push(txt(
        d.domain_name.clone(),
        format!("v=spf1 {} ~all", mechanisms.join(" ")).replace("  ", " "),
        "SPF: the tenant's sending IPs",
    ));
    out.push(txt(
        format!("_dmarc.{}", d.domain_name),
        format!("v=DMARC1; p={}; adkim=r; aspf=r", d.dmarc_policy),
        "DMARC policy",
    ));
    let mut hosts: Vec<&str> = tenant_ips
        .iter()
        .filter_map(|ip| ip.hostname.as_deref())
        .collect();
    hosts.sort();
    hosts.dedup();
    for host in &hosts {
        out.push(DnsRecord {
            record_type: "MX".into(),
            name: d.domain_name.clone(),
            value: format!("10 {host}."),
            strings: None,
            purpose: "MX: where replies and bounces come back".into(),
        });
    }
    for ip in &tenant_ips {
        let (Some(host), Ok(addr)) = (&ip.hostname, ip.ip_address.parse::<std::net::IpAddr>())
        else {
            continue;
        };
        let kind = if addr.is_ipv4() { "A" } else { "AAAA" };
        out.push(DnsRecord {
            record_type: kind.into(),
            name: host.clone(),
            value: ip.ip_address.clone(),
            strings: None,
            purpose: "forward record the PTR is confirmed with".into(),
        });
        out.push(DnsRecord {
            record_type: "PTR".into(),
            name: reverse_name(addr),
            value: format!("{host}."),
            strings: None,
            purpose: "reverse DNS, set at the IP's provider".into(),
        });
    }
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
    let mut conn = state.db.pool().acquire().await?;
    let d = super::visible::<ee_store::domains::Domain>(&mut conn, &principal, &id).await?;
    drop(conn);
    let now = state.now();
    let caller = audit::caller(&principal, &meta);
    let report = ee_app::infra::validate_domain(&state.services, &d, Some(&caller), now).await?;
    let mut conn = state.db.pool().acquire().await?;
    let latest = ee_store::domains::checks(&mut conn, &d.id, 1)
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
    let mut conn = state.db.pool().acquire().await?;
    let d = super::visible::<ee_store::domains::Domain>(&mut conn, &principal, &id).await?;
    let rows = ee_store::domains::checks(&mut conn, &d.id, 100).await?;
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
