//! Sending domains and their DKIM keys: added with a first key, changed, deleted, keys
//! rotated and retired, each with its audit entry. Private keys are sealed at rest and
//! never shown.

use ee_core::dkim::SEAL_PURPOSE as DKIM_PURPOSE;
use ee_core::secrets::Sealer;
use ee_core::timefmt::to_rfc3339;
use ee_mail::dkim::{self, Algorithm};
use ee_store::domains::{self, DkimKey};
pub use ee_store::domains::{Domain, DomainCheck};
use ee_store::{AnyConnection, Scope};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::Change;
use crate::error::AppError;
use crate::input::invalid;
use crate::read::{Read, Reader};
use crate::write::Write;

const DMARC_POLICIES: [&str; 3] = ["none", "quarantine", "reject"];

fn check_policy(policy: &str) -> Result<(), AppError> {
    if DMARC_POLICIES.contains(&policy) {
        Ok(())
    } else {
        Err(invalid(
            "dmarc_policy",
            "must be none, quarantine or reject",
        ))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DkimKeyOut {
    pub selector: String,
    /// rsa or ed25519.
    pub algorithm: String,
    pub status: ee_core::dkim::KeyStatus,
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

/// The domain as the API shows it, with its keys (public halves only).
pub async fn domain_out(r: &mut impl Reader, d: Domain) -> Result<DomainOut, AppError> {
    let keys = domains::all_keys(r.connection(), &d.id).await?;
    Ok(DomainOut {
        id: d.id,
        domain: d.domain_name,
        tenant_id: d.tenant_id,
        dkim_selector: d.dkim_selector,
        dmarc_policy: d.dmarc_policy,
        dkim_keys: keys.into_iter().map(DkimKeyOut::from).collect(),
        last_checked_at: d.last_checked_at.map(to_rfc3339),
        dns_ok: d.last_check_ok,
        created_at: to_rfc3339(d.created_at),
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDomain {
    /// The sending domain (IDN allowed; stored in its ASCII form).
    #[serde(alias = "domain_name")]
    pub domain: String,
    #[serde(alias = "tenant")]
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

fn normalize_domain(text: &str) -> Result<String, AppError> {
    let ascii = idna::domain_to_ascii(text.trim().trim_end_matches('.'))
        .map_err(|_| invalid("domain", "is not a valid domain name"))?;
    if !ee_core::address::is_host_name(&ascii) {
        return Err(invalid("domain", "is not a valid domain name"));
    }
    Ok(ascii)
}

fn check_selector(selector: &str) -> Result<(), AppError> {
    let ok = !selector.is_empty()
        && selector.len() <= 63
        && selector
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !selector.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "dkim_selector",
            "must be a DNS label: letters, digits and hyphens",
        ))
    }
}

fn algorithm(text: Option<&str>, field: &str) -> Result<Algorithm, AppError> {
    match text {
        None => Ok(Algorithm::Rsa),
        Some(t) => Algorithm::parse(t).ok_or_else(|| invalid(field, "must be rsa or ed25519")),
    }
}

fn default_selector(now: i64) -> String {
    let date = ee_core::timefmt::date_of(now);
    format!("ee{}{}", &date[..4], &date[5..7])
}

/// Generates a key and stores it, sealed, as the domain's active one.
async fn add_key(
    sealer: &Sealer,
    conn: &mut AnyConnection,
    domain_id: &str,
    selector: &str,
    algorithm: Algorithm,
    now: i64,
) -> Result<DkimKey, AppError> {
    let generated = tokio::task::spawn_blocking(move || dkim::generate(algorithm))
        .await
        .map_err(|_| AppError::Internal("DKIM key generation stopped".into()))?
        .map_err(|e| AppError::Internal(format!("DKIM key generation failed: {e}")))?;
    let sealed = sealer.seal(DKIM_PURPOSE, generated.private_pem.as_bytes());
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

/// Adds a sending domain to `tenant_id` with a new DKIM key.
pub async fn create(
    w: &mut Write,
    sealer: &Sealer,
    tenant_id: &str,
    input: CreateDomain,
) -> Result<DomainOut, AppError> {
    let name = normalize_domain(&input.domain)?;
    let algorithm = algorithm(input.dkim_algorithm.as_deref(), "dkim_algorithm")?;
    let selector = input
        .dkim_selector
        .unwrap_or_else(|| default_selector(w.now));
    check_selector(&selector)?;
    let policy = input.dmarc_policy.unwrap_or_else(|| "none".into());
    check_policy(&policy)?;
    ee_store::tenants::get(&mut w.tx, tenant_id)
        .await
        .map_err(AppError::from_store("tenant"))?;
    let domain = domains::insert(&mut w.tx, tenant_id, &name, &policy, w.now).await?;
    add_key(sealer, &mut w.tx, &domain.id, &selector, algorithm, w.now).await?;
    let domain = domains::get(&mut w.tx, &domain.id, Scope::All).await?;
    let out = domain_out(w, domain).await?;
    w.created("domain.create", &out).await?;
    Ok(out)
}

/// Changes the domain's DMARC policy.
pub async fn update(w: &mut Write, id: &str, input: UpdateDomain) -> Result<DomainOut, AppError> {
    let mut d: Domain = w.find(id).await?;
    let before = domain_out(w, d.clone()).await?;
    if let Some(policy) = input.dmarc_policy {
        check_policy(&policy)?;
        d.dmarc_policy = policy;
    }
    domains::update(&mut w.tx, &d, w.now).await?;
    let out = domain_out(w, d).await?;
    w.changed("domain.update", &before, &out).await?;
    Ok(out)
}

/// Deletes the domain with its keys.
pub async fn delete(w: &mut Write, id: &str) -> Result<(), AppError> {
    let d: Domain = w.find(id).await?;
    let before = domain_out(w, d.clone()).await?;
    domains::delete(&mut w.tx, &d.id).await?;
    w.removed("domain.delete", &before).await
}

/// A new DKIM key under a new selector; the old key stays published until retired.
pub async fn rotate_dkim(
    w: &mut Write,
    sealer: &Sealer,
    id: &str,
    input: RotateDkim,
) -> Result<DomainOut, AppError> {
    let algorithm = algorithm(input.algorithm.as_deref(), "algorithm")?;
    let d: Domain = w.find(id).await?;
    let existing = domains::all_keys(&mut w.tx, &d.id).await?;
    let selector = match input.selector {
        Some(s) => s,
        None => {
            // ee<yyyymm>, then ee<yyyymm>b, c… within the same month.
            let base = default_selector(w.now);
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
    let before = domain_out(w, d.clone()).await?;
    add_key(sealer, &mut w.tx, &d.id, &selector, algorithm, w.now).await?;
    let d = domains::get(&mut w.tx, &d.id, Scope::All).await?;
    let out = domain_out(w, d).await?;
    w.changed("domain.dkim_rotate", &before, &out).await?;
    Ok(out)
}

/// Takes a replaced key out of DNS (the active one cannot be retired).
pub async fn retire_dkim(w: &mut Write, id: &str, selector: &str) -> Result<(), AppError> {
    let d: Domain = w.find(id).await?;
    domains::retire_key(&mut w.tx, &d.id, selector, w.now)
        .await
        .map_err(AppError::from_store("published, non-active DKIM key"))?;
    w.record(Change {
        action: "domain.dkim_retire",
        resource_type: "domain",
        resource_id: Some(&d.id),
        tenant_id: Some(&d.tenant_id),
        before: None,
        after: Some(serde_json::json!({ "selector": selector })),
    })
    .await
}

crate::write::audited!(DomainOut, "domain");

/// The domains the caller may see.
pub async fn list(read: &mut Read) -> Result<Vec<Domain>, AppError> {
    let (conn, scope) = read.parts();
    Ok(domains::list(conn, scope).await?)
}

/// A domain's DNS checks, newest first (at most `limit`).
pub async fn checks(read: &mut Read, d: &Domain, limit: i64) -> Result<Vec<DomainCheck>, AppError> {
    Ok(domains::checks(read.conn(), &d.id, limit).await?)
}
