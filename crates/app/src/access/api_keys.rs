//! API keys: random, shown once, stored hashed, with expiry and rotation.

use ee_core::ValidationErrors;
use ee_core::auth::{generate_api_key, token_digest};
use ee_core::tenant::validate_name;
use ee_core::timefmt::to_rfc3339;
use ee_store::StoreError;
pub use ee_store::api_keys::ApiKey;
use ee_store::api_keys::{self, NewApiKey};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppError;
use crate::access::Credential;
use crate::read::Read;
use crate::write::Write;

/// A key as the API answers it and the audit log records it (never the secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyOut {
    pub id: String,
    pub name: String,
    pub tenant_id: String,
    /// The first characters of the current key, to tell keys apart.
    pub key_prefix: String,
    /// `active`, `expired` or `revoked`.
    pub status: &'static str,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub rotated_at: Option<String>,
    /// Until when the key replaced by the last rotation still works.
    pub previous_valid_until: Option<String>,
    pub last_used_at: Option<String>,
}

impl ApiKeyOut {
    pub fn new(k: ApiKey, now: i64) -> Self {
        let status = if k.revoked_at.is_some() {
            "revoked"
        } else if k.expires_at.is_some_and(|at| at <= now) {
            "expired"
        } else {
            "active"
        };
        Self {
            id: k.id,
            name: k.name,
            tenant_id: k.tenant_id,
            key_prefix: k.key_prefix,
            status,
            created_at: to_rfc3339(k.created_at),
            expires_at: k.expires_at.map(to_rfc3339),
            revoked_at: k.revoked_at.map(to_rfc3339),
            rotated_at: k.rotated_at.map(to_rfc3339),
            previous_valid_until: k
                .previous_valid_until
                .filter(|at| *at > now)
                .map(to_rfc3339),
            last_used_at: k.last_used_at.map(to_rfc3339),
        }
    }
}

/// What a new key is made of.
#[derive(Debug, Clone)]
pub struct NewKeyInput {
    /// The tenant's id, or its slug.
    pub tenant: String,
    pub name: String,
    pub expires_at: Option<i64>,
    /// The account that made it, if any.
    pub created_by: Option<String>,
}

/// Creates a key. Returns it and its secret, which is not stored.
pub async fn create(w: &mut Write, input: NewKeyInput) -> Result<(ApiKeyOut, String), AppError> {
    let now = w.now;
    let mut errors = ValidationErrors::new();
    validate_name(&input.name, "name", &mut errors);
    if input.expires_at.is_some_and(|at| at <= now) {
        errors.add("expires_at", "must be in the future");
    }
    errors.into_result()?;
    let tenant = crate::access::tenants::find(&mut w.tx, &input.tenant).await?;
    let (key, prefix) = generate_api_key();
    let stored = api_keys::insert(
        &mut w.tx,
        NewApiKey {
            tenant_id: &tenant.id,
            name: input.name.trim(),
            key_prefix: &prefix,
            key_hash: &token_digest(&key),
            created_by: input.created_by.as_deref(),
            expires_at: input.expires_at,
        },
        now,
    )
    .await?;
    let out = ApiKeyOut::new(stored, now);
    w.created("api_key.create", &out).await?;
    Ok((out, key))
}

/// Revokes a key the caller may see, its rotation's previous secret too.
pub async fn revoke(w: &mut Write, id: &str) -> Result<(), AppError> {
    let key = w.find::<ApiKey>(id).await?;
    api_keys::revoke(&mut w.tx, id, w.now).await?;
    let revoked = w.find::<ApiKey>(id).await?;
    let now = w.now;
    w.changed(
        "api_key.revoke",
        &ApiKeyOut::new(key, now),
        &ApiKeyOut::new(revoked, now),
    )
    .await
}

/// The longest a replaced key may keep working.
const MAX_GRACE_SECS: i64 = 30 * 86_400;

/// Issues a new secret for a key; the old one keeps working `grace_secs` more. Returns
/// the key and its new secret, which is not stored.
pub async fn rotate(
    w: &mut Write,
    id: &str,
    grace_secs: i64,
) -> Result<(ApiKeyOut, String), AppError> {
    if !(0..=MAX_GRACE_SECS).contains(&grace_secs) {
        return Err(crate::input::invalid(
            "grace_secs",
            "must be between 0 and 2592000 (30 days)",
        ));
    }
    let key = w.find::<ApiKey>(id).await?;
    if key.revoked_at.is_some() {
        return Err(AppError::Conflict("a revoked key cannot be rotated".into()));
    }
    let (secret, prefix) = generate_api_key();
    let now = w.now;
    api_keys::rotate(
        &mut w.tx,
        id,
        &prefix,
        &token_digest(&secret),
        now + grace_secs * 1000,
        now,
    )
    .await?;
    let rotated = w.find::<ApiKey>(id).await?;
    let out = ApiKeyOut::new(rotated, now);
    w.changed("api_key.rotate", &ApiKeyOut::new(key, now), &out)
        .await?;
    Ok((out, secret))
}

crate::write::audited!(ApiKeyOut, "api_key");

/// The keys the caller may see, without their secrets.
pub async fn list(read: &mut Read) -> Result<Vec<ApiKey>, AppError> {
    let (conn, scope) = read.parts();
    Ok(api_keys::list(conn, scope).await?)
}

/// The key a request presents (its secret), if it is valid now and its tenant active; its
/// last use is noted at most once a minute (a write on every request would serialise
/// SQLite's writers).
pub async fn authenticate(
    read: &mut Read,
    secret: &str,
    now: i64,
) -> Result<Credential<ApiKey>, AppError> {
    let conn = read.conn();
    let key = match api_keys::find_valid(conn, &token_digest(secret), now).await {
        Ok(key) => key,
        Err(StoreError::NotFound) => return Ok(Credential::Refused),
        Err(e) => return Err(e.into()),
    };
    if !super::tenant_active(conn, &key.tenant_id).await? {
        return Ok(Credential::TenantDisabled);
    }
    if key.last_used_at.is_none_or(|at| now - at >= 60_000) {
        api_keys::touch(conn, &key.id, now).await?;
    }
    Ok(Credential::Valid(key))
}
