//! Sending domains, their DKIM keys and the history of their DNS checks.

use crate::Scope;
use ee_core::ids::new_id;
use sqlx::AnyConnection;

use crate::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Domain {
    pub id: String,
    pub tenant_id: String,
    pub domain_name: String,
    /// The selector of the key that signs now.
    pub dkim_selector: Option<String>,
    pub dmarc_policy: String,
    pub last_checked_at: Option<i64>,
    #[sqlx(try_from = "crate::flag::MaybeFlag")]
    pub last_check_ok: Option<bool>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, tenant_id, domain_name, dkim_selector, dmarc_policy, last_checked_at, last_check_ok, created_at, updated_at";

pub async fn insert(
    conn: &mut AnyConnection,
    tenant_id: &str,
    name: &str,
    dmarc_policy: &str,
    now: i64,
) -> Result<Domain> {
    let domain = Domain {
        id: new_id(),
        tenant_id: tenant_id.to_owned(),
        domain_name: name.to_owned(),
        dkim_selector: None,
        dmarc_policy: dmarc_policy.to_owned(),
        last_checked_at: None,
        last_check_ok: None,
        created_at: now,
        updated_at: now,
    };
    sqlx::query(
        "INSERT INTO domains (id, tenant_id, domain_name, dmarc_policy, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&domain.id)
    .bind(tenant_id)
    .bind(name)
    .bind(dmarc_policy)
    .bind(now)
    .execute(conn)
    .await
    .map_err(|e| StoreError::unique(e, "this tenant has this domain already"))?;
    Ok(domain)
}

pub async fn get(conn: &mut AnyConnection, id: &str, scope: Scope<'_>) -> Result<Domain> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM domains WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)"
    )))
    .bind(id)
    .bind(scope.tenant())
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

pub async fn list(conn: &mut AnyConnection, scope: Scope<'_>) -> Result<Vec<Domain>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM domains WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY domain_name"
    )))
    .bind(scope.tenant())
    .fetch_all(conn)
    .await?)
}

pub async fn update(conn: &mut AnyConnection, domain: &Domain, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE domains SET dkim_selector = $1, dmarc_policy = $2, last_checked_at = $3, last_check_ok = $4, \
         updated_at = $5 WHERE id = $6",
    )
    .bind(&domain.dkim_selector)
    .bind(&domain.dmarc_policy)
    .bind(domain.last_checked_at)
    .bind(domain.last_check_ok.map(i64::from))
    .bind(now)
    .bind(&domain.id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM domains WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DkimKey {
    pub id: String,
    pub domain_id: String,
    pub selector: String,
    pub algorithm: String,
    /// Sealed with the master key; never leaves the server unsealed but to sign.
    pub private_key_sealed: String,
    pub public_key: String,
    #[sqlx(try_from = "String")]
    pub status: ee_core::dkim::KeyStatus,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

const KEY_COLUMNS: &str = "id, domain_id, selector, algorithm, private_key_sealed, public_key, status, created_at, retired_at";

/// Adds a key as the domain's active one; the previous active key stays published.
pub async fn add_active_key(
    conn: &mut AnyConnection,
    domain_id: &str,
    selector: &str,
    algorithm: &str,
    private_key_sealed: &str,
    public_key: &str,
    now: i64,
) -> Result<DkimKey> {
    sqlx::query(
        "UPDATE dkim_keys SET status = 'published' WHERE domain_id = $1 AND status = 'active'",
    )
    .bind(domain_id)
    .execute(&mut *conn)
    .await?;
    let key = DkimKey {
        id: new_id(),
        domain_id: domain_id.to_owned(),
        selector: selector.to_owned(),
        algorithm: algorithm.to_owned(),
        private_key_sealed: private_key_sealed.to_owned(),
        public_key: public_key.to_owned(),
        status: ee_core::dkim::KeyStatus::Active,
        created_at: now,
        retired_at: None,
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO dkim_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    )))
    .bind(&key.id)
    .bind(domain_id)
    .bind(selector)
    .bind(algorithm)
    .bind(private_key_sealed)
    .bind(public_key)
    .bind(key.status.as_str())
    .bind(now)
    .bind(key.retired_at)
    .execute(&mut *conn)
    .await
    .map_err(|e| StoreError::unique(e, "this selector is used already for this domain"))?;
    sqlx::query("UPDATE domains SET dkim_selector = $1, updated_at = $2 WHERE id = $3")
        .bind(selector)
        .bind(now)
        .bind(domain_id)
        .execute(conn)
        .await?;
    Ok(key)
}

/// Keys still in DNS (active and published), newest first.
pub async fn published_keys(conn: &mut AnyConnection, domain_id: &str) -> Result<Vec<DkimKey>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM dkim_keys WHERE domain_id = $1 AND status IN ('active', 'published') \
         ORDER BY created_at DESC, id DESC"
    )))
    .bind(domain_id)
    .fetch_all(conn)
    .await?)
}

pub async fn all_keys(conn: &mut AnyConnection, domain_id: &str) -> Result<Vec<DkimKey>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM dkim_keys WHERE domain_id = $1 ORDER BY created_at DESC, id DESC"
    )))
    .bind(domain_id)
    .fetch_all(conn)
    .await?)
}

/// Takes a replaced key out of DNS. The active key cannot be retired (rotate first).
pub async fn retire_key(
    conn: &mut AnyConnection,
    domain_id: &str,
    selector: &str,
    now: i64,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE dkim_keys SET status = 'retired', retired_at = $1 WHERE domain_id = $2 AND selector = $3 AND status = 'published'",
    )
    .bind(now)
    .bind(domain_id)
    .bind(selector)
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DomainCheck {
    pub id: String,
    pub domain_id: String,
    pub checked_at: i64,
    pub ok: i64,
    /// JSON: the result of each check.
    pub results: String,
}

pub async fn add_check(
    conn: &mut AnyConnection,
    domain: &Domain,
    ok: bool,
    results: &str,
    now: i64,
) -> Result<DomainCheck> {
    let check = DomainCheck {
        id: new_id(),
        domain_id: domain.id.clone(),
        checked_at: now,
        ok: i64::from(ok),
        results: results.to_owned(),
    };
    sqlx::query("INSERT INTO domain_checks (id, domain_id, checked_at, ok, results) VALUES ($1, $2, $3, $4, $5)")
        .bind(&check.id)
        .bind(&check.domain_id)
        .bind(now)
        .bind(check.ok)
        .bind(results)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE domains SET last_checked_at = $1, last_check_ok = $2 WHERE id = $3")
        .bind(now)
        .bind(check.ok)
        .bind(&domain.id)
        .execute(conn)
        .await?;
    Ok(check)
}

pub async fn checks(
    conn: &mut AnyConnection,
    domain_id: &str,
    limit: i64,
) -> Result<Vec<DomainCheck>> {
    Ok(sqlx::query_as(
        "SELECT id, domain_id, checked_at, ok, results FROM domain_checks WHERE domain_id = $1 \
         ORDER BY checked_at DESC, id DESC LIMIT $2",
    )
    .bind(domain_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// The key that signs for a tenant's domain now, if the domain is one of its own.
pub async fn active_key_for(
    conn: &mut AnyConnection,
    tenant_id: &str,
    domain_name: &str,
) -> Result<Option<DkimKey>> {
    let columns = KEY_COLUMNS
        .split(", ")
        .map(|c| format!("k.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {columns} FROM dkim_keys k JOIN domains d ON d.id = k.domain_id \
         WHERE d.tenant_id = $1 AND d.domain_name = $2 AND k.status = 'active' \
         ORDER BY k.created_at DESC LIMIT 1"
    )))
    .bind(tenant_id)
    .bind(domain_name.to_ascii_lowercase())
    .fetch_optional(conn)
    .await?)
}

/// The tenants that registered a domain name (lower case): (tenant, domain id, whether
/// its last DNS check passed).
pub async fn holders(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Vec<(String, String, Option<i64>)>> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, id, last_check_ok FROM domains WHERE domain_name = $1 ORDER BY id",
    )
    .bind(name)
    .fetch_all(conn)
    .await?)
}
