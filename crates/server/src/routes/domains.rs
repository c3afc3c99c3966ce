use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ee_core::ip::reverse_name;
use ee_core::timefmt::to_rfc3339;
use ee_mail::dkim::{self, Algorithm};
use ee_store::domains::{self, DkimKey, Domain};
use ee_store::ips::{self, IpFilter};
use ee_store::{AnyConnection, tenants};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::audit::{self, Change};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, RequestMeta};
use crate::state::AppState;
use crate::write::Write;

use ee_core::dkim::SEAL_PURPOSE as DKIM_PURPOSE;
const DMARC_POLICIES: [&str; 3] = ["none", "quarantine", "reject"];

#[derive(Debug, Serialize, ToSchema)]
pub struct DkimKeyOut {
    pub selector: String,
    /// rsa or ed25519.
    pub algorithm: String,
    /// active (signs), published (replaced, still in DNS) or retired.
    pub status: String,
    /// The public key, as published in `p=`. The private key is never returned.
    pub public_key: String,
    pub created_at: String,
    pub retired_at: Option<String>,
}

impl From<DkimKey> for DkimKeyOut {
    fn from(k: DkimKey) -> Self {
        Self {
            selector: k.selector,
            algorithm: k.algorithm,
            status: k.status,
            public_key: k.public_key,
            created_at: to_rfc3339(k.created_at),
            retired_at: k.retired_at.map(to_rfc3339),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DomainOut {
    pub id: String,
    pub domain: String,
    pub tenant_id: String,
    /// The selector that signs now.
    pub dkim_selector: Option<String>,
    pub dmarc_policy: String,
    pub dkim_keys: Vec<DkimKeyOut>,
    pub last_checked_at: Option<String>,
    /// The last DNS check passed (null: never checked).
    pub dns_ok: Option<bool>,
    pub created_at: String,
}

async fn domain_out(conn: &mut AnyConnection, d: Domain) -> ApiResult<DomainOut> {
    let keys = domains::all_keys(conn, &d.id).await?;
    Ok(DomainOut {
        id: d.id,
        domain: d.domain_name,
        tenant_id: d.tenant_id,
        dkim_selector: d.dkim_selector,
        dmarc_policy: d.dmarc_policy,
        dkim_keys: keys.into_iter().map(DkimKeyOut::from).collect(),
        last_checked_at: d.last_checked_at.map(to_rfc3339),
        dns_ok: d.last_check_ok.map(|ok| ok == 1),
        created_at: to_rfc3339(d.created_at),
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDomain {
    /// The sending domain (IDN allowed; stored in its ASCII form).
    #[serde(alias = "domain_name")]
    pub domain: String,
    pub tenant_id: Option<String>,
    /// rsa (RSA-2048, the default) or ed25519.
    pub dkim_algorithm: Option<String>,
    /// The DKIM selector; `ee<yyyymm>` when absent.
    pub dkim_selector: Option<String>,
    /// none (the default), quarantine or reject.
    pub dmarc_policy: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDomain {
    pub dmarc_policy: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateDkim {
    pub algorithm: Option<String>,
    pub selector: Option<String>,
}

fn normalize_domain(text: &str) -> Result<String, ApiError> {
    let ascii = idna::domain_to_ascii(text.trim().trim_end_matches('.'))
        .map_err(|_| ApiError::invalid_field("domain", "is not a valid domain name"))?;
    if !ee_core::address::is_host_name(&ascii) {
        return Err(ApiError::invalid_field(
            "domain",
            "is not a valid domain name",
        ));
    }
    Ok(ascii)
}

fn check_selector(selector: &str) -> Result<(), ApiError> {
    let ok = !selector.is_empty()
        && selector.len() <= 63
        && selector
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !selector.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "dkim_selector",
            "must be a DNS label: letters, digits and hyphens",
        ))
    }
}

fn algorithm(text: Option<&str>, field: &str) -> Result<Algorithm, ApiError> {
    match text {
        None => Ok(Algorithm::Rsa),
        Some(t) => Algorithm::parse(t)
            .ok_or_else(|| ApiError::invalid_field(field, "must be rsa or ed25519")),
    }
}

fn default_selector(now: i64) -> String {
    let date = ee_core::timefmt::date_of(now);
    format!("ee{}{}", &date[..4], &date[5..7])
}

/// Generates a key and stores it, sealed, as the domain's active one.
async fn add_key(
    state: &AppState,
    conn: &mut AnyConnection,
    domain_id: &str,
    selector: &str,
    algorithm: Algorithm,
    now: i64,
) -> ApiResult<DkimKey> {
    let generated = tokio::task::spawn_blocking(move || dkim::generate(algorithm))
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|e| {
            tracing::error!(error = %e, "DKIM key generation failed");
            ApiError::internal()
        })?;
    let sealed = state
        .settings
        .sealer
        .seal(DKIM_PURPOSE, generated.private_pem.as_bytes());
    Ok(domains::add_active_key(
        conn,
        domain_id,
        selector,
        algorithm.as_str(),
        &sealed,
        &generated.public_b64,
        now,
    )
    .await?)
}

async fn visible(conn: &mut AnyConnection, principal: &Principal, id: &str) -> ApiResult<Domain> {
    domains::get(conn, id, principal.scope())
        .await
        .map_err(ApiError::from_store("domain"))
}

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
    let tenant_id = principal.owning_tenant(body.tenant_id.as_deref(), "tenant_id")?;
    let name = normalize_domain(&body.domain)?;
    let algorithm = algorithm(body.dkim_algorithm.as_deref(), "dkim_algorithm")?;
    let now = state.now();
    let selector = body.dkim_selector.unwrap_or_else(|| default_selector(now));
    check_selector(&selector)?;
    let policy = body.dmarc_policy.unwrap_or_else(|| "none".into());
    if !DMARC_POLICIES.contains(&policy.as_str()) {
        return Err(ApiError::invalid_field(
            "dmarc_policy",
            "must be none, quarantine or reject",
        ));
    }
    let mut w = Write::begin(&state, &principal, &meta, now).await?;
    tenants::get(&mut w.tx, &tenant_id)
        .await
        .map_err(ApiError::from_store("tenant"))?;
    let domain = domains::insert(&mut w.tx, &tenant_id, &name, &policy, now).await?;
    add_key(&state, &mut w.tx, &domain.id, &selector, algorithm, now).await?;
    let domain = domains::get(&mut w.tx, &domain.id, None).await?;
    let out = domain_out(&mut w.tx, domain).await?;
    let change = Change {
        action: "domain.create",
        resource_type: "domain",
        resource_id: Some(&out.id),
        tenant_id: Some(&out.tenant_id),
        before: None,
        after: serde_json::to_value(&out).ok(),
    };
    w.commit(change).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/api/v1/domains", tag = "domains",
    responses((status = 200, body = Vec<DomainOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Vec<DomainOut>>> {
    let mut conn = state.db.pool().acquire().await?;
    let rows = domains::list(&mut conn, principal.scope()).await?;
    let mut out = Vec::with_capacity(rows.len());
    for d in rows {
        out.push(domain_out(&mut conn, d).await?);
    }
    Ok(Json(out))
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
    let d = visible(&mut conn, &principal, &id).await?;
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
    let now = state.now();
    let mut w = Write::begin(&state, &principal, &meta, now).await?;
    let mut d = visible(&mut w.tx, &principal, &id).await?;
    let before = serde_json::to_value(domain_out(&mut w.tx, d.clone()).await?).ok();
    if let Some(policy) = body.dmarc_policy {
        if !DMARC_POLICIES.contains(&policy.as_str()) {
            return Err(ApiError::invalid_field(
                "dmarc_policy",
                "must be none, quarantine or reject",
            ));
        }
        d.dmarc_policy = policy;
    }
    domains::update(&mut w.tx, &d, now).await?;
    let out = domain_out(&mut w.tx, d).await?;
    let change = Change {
        action: "domain.update",
        resource_type: "domain",
        resource_id: Some(&out.id),
        tenant_id: Some(&out.tenant_id),
        before,
        after: serde_json::to_value(&out).ok(),
    };
    w.commit(change).await?;
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
    let now = state.now();
    let mut w = Write::begin(&state, &principal, &meta, now).await?;
    let d = visible(&mut w.tx, &principal, &id).await?;
    let before = serde_json::to_value(domain_out(&mut w.tx, d.clone()).await?).ok();
    domains::delete(&mut w.tx, &id).await?;
    let change = Change {
        action: "domain.delete",
        resource_type: "domain",
        resource_id: Some(&id),
        tenant_id: Some(&d.tenant_id),
        before,
        after: None,
    };
    w.commit(change).await?;
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
    let algorithm = algorithm(body.algorithm.as_deref(), "algorithm")?;
    let now = state.now();
    let mut w = Write::begin(&state, &principal, &meta, now).await?;
    let d = visible(&mut w.tx, &principal, &id).await?;
    let existing = domains::all_keys(&mut w.tx, &d.id).await?;
    let selector = match body.selector {
        Some(s) => s,
        None => {
            // ee<yyyymm>, then ee<yyyymm>b, c… within the same month.
            let base = default_selector(now);
            let mut candidate = base.clone();
            let mut suffix = b'b';
            while existing.iter().any(|k| k.selector == candidate) && suffix <= b'z' {
                candidate = format!("{base}{}", suffix as char);
                suffix += 1;
            }
            candidate
        }
    };
    check_selector(&selector)?;
    let before = serde_json::to_value(domain_out(&mut w.tx, d.clone()).await?).ok();
    add_key(&state, &mut w.tx, &d.id, &selector, algorithm, now).await?;
    let d = domains::get(&mut w.tx, &d.id, None).await?;
    let out = domain_out(&mut w.tx, d).await?;
    let change = Change {
        action: "domain.dkim_rotate",
        resource_type: "domain",
        resource_id: Some(&out.id),
        tenant_id: Some(&out.tenant_id),
        before,
        after: serde_json::to_value(&out).ok(),
    };
    w.commit(change).await?;
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
    let now = state.now();
    let mut w = Write::begin(&state, &principal, &meta, now).await?;
    let d = visible(&mut w.tx, &principal, &id).await?;
    domains::retire_key(&mut w.tx, &d.id, &selector, now)
        .await
        .map_err(ApiError::from_store("published, non-active DKIM key"))?;
    let change = Change {
        action: "domain.dkim_retire",
        resource_type: "domain",
        resource_id: Some(&id),
        tenant_id: Some(&d.tenant_id),
        before: None,
        after: Some(serde_json::json!({"selector": selector})),
    };
    w.commit(change).await?;
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
#[utoipa::path(get, path = "/api/v1/domains/{id}/dns-records", tag = "domains", params(("id" = String, Path)),
    responses((status = 200, body = Vec<DnsRecord>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn dns_records(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<DnsRecord>>> {
    let mut conn = state.db.pool().acquire().await?;
    let d = visible(&mut conn, &principal, &id).await?;
    let keys = domains::published_keys(&mut conn, &d.id).await?;
    let tenant_ips = ips::list(
        &mut conn,
        &IpFilter {
            scope: Some(&d.tenant_id),
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
    Ok(Json(out))
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
    let d = visible(&mut conn, &principal, &id).await?;
    drop(conn);
    let now = state.now();
    let caller = audit::caller(&principal, &meta);
    let report = ee_app::infra::validate_domain(&state.services, &d, Some(&caller), now).await?;
    let mut conn = state.db.pool().acquire().await?;
    let latest = domains::checks(&mut conn, &d.id, 1)
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
#[utoipa::path(get, path = "/api/v1/domains/{id}/checks", tag = "domains", params(("id" = String, Path)),
    responses((status = 200, body = Vec<DomainCheckOut>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn checks(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<DomainCheckOut>>> {
    let mut conn = state.db.pool().acquire().await?;
    let d = visible(&mut conn, &principal, &id).await?;
    let rows = domains::checks(&mut conn, &d.id, 100).await?;
    Ok(Json(
        rows.into_iter()
            .map(|c| DomainCheckOut {
                id: c.id,
                checked_at: to_rfc3339(c.checked_at),
                ok: c.ok == 1,
                results: serde_json::from_str(&c.results).unwrap_or_default(),
            })
            .collect(),
    ))
}
