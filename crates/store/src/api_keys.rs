//! API keys: stored as a digest, shown once, with expiry, revocation and rotation.
//! During a rotation's grace period the previous key still authenticates, so a client
//! can be switched over without downtime.

use crate::Scope;
use ee_core::ids::new_id;
use sqlx::AnyConnection;

use crate::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ApiKey {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub key_prefix: String,
    pub key_hash: String,
    pub previous_key_hash: Option<String>,
    pub previous_valid_until: Option<i64>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub rotated_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

pub struct NewApiKey<'a> {
    pub tenant_id: &'a str,
    pub name: &'a str,
    pub key_prefix: &'a str,
    pub key_hash: &'a str,
    pub created_by: Option<&'a str>,
    pub expires_at: Option<i64>,
}

const COLUMNS: &str = "id, tenant_id, name, key_prefix, key_hash, previous_key_hash, \
    previous_valid_until, created_by, created_at, rotated_at, expires_at, revoked_at, last_used_at";

pub async fn insert(conn: &mut AnyConnection, new: NewApiKey<'_>, now: i64) -> Result<ApiKey> {
    let key = ApiKey {
        id: new_id(),
        tenant_id: new.tenant_id.to_owned(),
        name: new.name.to_owned(),
        key_prefix: new.key_prefix.to_owned(),
        key_hash: new.key_hash.to_owned(),
        previous_key_hash: None,
        previous_valid_until: None,
        created_by: new.created_by.map(str::to_owned),
        created_at: now,
        rotated_at: None,
        expires_at: new.expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, name, key_prefix, key_hash, created_by, created_at, \
         expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&key.id)
    .bind(&key.tenant_id)
    .bind(&key.name)
    .bind(&key.key_prefix)
    .bind(&key.key_hash)
    .bind(&key.created_by)
    .bind(now)
    .bind(key.expires_at)
    .execute(conn)
    .await?;
    Ok(key)
}

/// One key, seen through a tenant scope: another tenant's key is "not found".
pub async fn get(conn: &mut AnyConnection, id: &str, scope: Scope<'_>) -> Result<ApiKey> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_keys WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)"
    )))
    .bind(id)
    .bind(scope.tenant())
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

pub async fn list(conn: &mut AnyConnection, scope: Scope<'_>) -> Result<Vec<ApiKey>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_keys WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY created_at, id"
    )))
    .bind(scope.tenant())
    .fetch_all(conn)
    .await?)
}

pub async fn revoke(conn: &mut AnyConnection, id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Replaces the secret; the one it replaces stays valid until `previous_valid_until`.
pub async fn rotate(
    conn: &mut AnyConnection,
    id: &str,
    new_prefix: &str,
    new_hash: &str,
    previous_valid_until: i64,
    now: i64,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE api_keys SET previous_key_hash = key_hash, previous_valid_until = $1, \
         key_hash = $2, key_prefix = $3, rotated_at = $4 WHERE id = $5 AND revoked_at IS NULL",
    )
    .bind(previous_valid_until)
    .bind(new_hash)
    .bind(new_prefix)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The live key whose current secret, or previous secret within its grace period,
/// has this digest. Revoked and expired keys are not returned.
pub async fn find_valid(conn: &mut AnyConnection, key_hash: &str, now: i64) -> Result<ApiKey> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_keys \
         WHERE (key_hash = $1 OR (previous_key_hash = $1 AND previous_valid_until > $2)) \
         AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)"
    )))
    .bind(key_hash)
    .bind(now)
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

/// Records use, at most once a minute per key to keep writes off the hot path.
pub async fn touch(conn: &mut AnyConnection, id: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE api_keys SET last_used_at = $1 \
         WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
    )
    .bind(now)
    .bind(id)
    .bind(now - 60_000)
    .execute(conn)
    .await?;
    Ok(())
}
