//! Data sources (Scraper-Pro, Backlink-Engine, CSV, API) with their webhook secrets,
//! idempotent ingest batches, routing rules across tenants, and tenants' list additions.

use crate::Scope;
use ee_core::ids::new_id;
use ee_core::source::SourceKind;
use sqlx::AnyConnection;

use crate::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Source {
    pub id: String,
    pub tenant_id: String,
    pub slug: String,
    pub name: String,
    /// scraper_pro, backlink_engine, csv, api; powermta, mailwizz (feedback).
    #[sqlx(rename = "type", try_from = "String")]
    pub kind: SourceKind,
    /// JSON: `{"route": true}` sends its contacts through the routing rules.
    pub config: String,
    /// Sealed with the master key.
    pub secret_sealed: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "id, tenant_id, slug, name, type, config, secret_sealed, created_at, updated_at";

#[allow(clippy::too_many_arguments)]
pub async fn insert(
    conn: &mut AnyConnection,
    tenant_id: &str,
    slug: &str,
    name: &str,
    kind: SourceKind,
    config: &str,
    secret_sealed: &str,
    now: i64,
) -> Result<Source> {
    let s = Source {
        id: new_id(),
        tenant_id: tenant_id.into(),
        slug: slug.into(),
        name: name.into(),
        kind,
        config: config.into(),
        secret_sealed: Some(secret_sealed.into()),
        created_at: now,
        updated_at: now,
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO data_sources ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"
    )))
    .bind(&s.id)
    .bind(tenant_id)
    .bind(slug)
    .bind(name)
    .bind(kind.as_str())
    .bind(config)
    .bind(secret_sealed)
    .bind(now)
    .execute(conn)
    .await
    .map_err(|e| StoreError::unique(e, "this tenant has a source with this slug"))?;
    Ok(s)
}

pub async fn get(conn: &mut AnyConnection, id: &str, scope: Scope<'_>) -> Result<Source> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM data_sources WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)"
    )))
    .bind(id)
    .bind(scope.tenant())
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

/// A source by slug or id; within a tenant, or anywhere (admin, webhooks).
pub async fn find(conn: &mut AnyConnection, key: &str, scope: Scope<'_>) -> Result<Vec<Source>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM data_sources WHERE (slug = $1 OR id = $1) AND ($2 IS NULL OR tenant_id = $2)"
    )))
    .bind(key)
    .bind(scope.tenant())
    .fetch_all(conn)
    .await?)
}

pub async fn list(conn: &mut AnyConnection, scope: Scope<'_>) -> Result<Vec<Source>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM data_sources WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY slug"
    )))
    .bind(scope.tenant())
    .fetch_all(conn)
    .await?)
}

pub async fn update(conn: &mut AnyConnection, s: &Source, now: i64) -> Result<()> {
    sqlx::query("UPDATE data_sources SET name = $1, config = $2, secret_sealed = $3, updated_at = $4 WHERE id = $5")
        .bind(&s.name)
        .bind(&s.config)
        .bind(&s.secret_sealed)
        .bind(now)
        .bind(&s.id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM data_sources WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The stored answer of a batch already ingested, if any.
pub async fn batch_response(
    conn: &mut AnyConnection,
    tenant_id: &str,
    source_key: &str,
    batch_id: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT response FROM ingest_batches WHERE tenant_id = $1 AND source_key = $2 AND batch_id = $3")
        .bind(tenant_id)
        .bind(source_key)
        .bind(batch_id)
        .fetch_optional(conn)
        .await?)
}

/// Records a batch's answer; false when another request recorded it first.
pub async fn record_batch(
    conn: &mut AnyConnection,
    tenant_id: &str,
    source_key: &str,
    batch_id: &str,
    response: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO ingest_batches (tenant_id, source_key, batch_id, response, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, source_key, batch_id) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(source_key)
    .bind(batch_id)
    .bind(response)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RoutingRule {
    pub id: String,
    pub priority: i64,
    /// JSON: `{"category": "LAWYER", "tag": "TYPE:LAWYER", "country": "FR", "language": "fr", "source": "scraper-pro-001"}`,
    /// every given condition must hold.
    pub conditions: String,
    pub tenant_id: String,
    pub created_at: i64,
}

pub async fn add_rule(
    conn: &mut AnyConnection,
    priority: i64,
    conditions: &str,
    tenant_id: &str,
    now: i64,
) -> Result<RoutingRule> {
    let r = RoutingRule {
        id: new_id(),
        priority,
        conditions: conditions.into(),
        tenant_id: tenant_id.into(),
        created_at: now,
    };
    sqlx::query("INSERT INTO routing_rules (id, priority, conditions, tenant_id, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&r.id)
        .bind(priority)
        .bind(conditions)
        .bind(tenant_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(r)
}

/// Rules by priority (lowest first), then age.
pub async fn rules(conn: &mut AnyConnection) -> Result<Vec<RoutingRule>> {
    Ok(sqlx::query_as("SELECT id, priority, conditions, tenant_id, created_at FROM routing_rules ORDER BY priority, created_at, id")
        .fetch_all(conn)
        .await?)
}

pub async fn delete_rule(conn: &mut AnyConnection, id: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM routing_rules WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// A tenant's additions to the shipped disposable/free/role lists.
pub async fn extra_lists(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<ee_core::contacts::ExtraLists> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT list, value FROM validation_list_entries WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_all(conn)
            .await?;
    let mut lists = ee_core::contacts::ExtraLists::default();
    for (list, value) in rows {
        match list.as_str() {
            "disposable" => lists.disposable.insert(value),
            "free" => lists.free.insert(value),
            "role" => lists.role.insert(value),
            _ => false,
        };
    }
    Ok(lists)
}

pub async fn set_list_entries(
    conn: &mut AnyConnection,
    tenant_id: &str,
    list: &str,
    values: &[String],
) -> Result<()> {
    sqlx::query("DELETE FROM validation_list_entries WHERE tenant_id = $1 AND list = $2")
        .bind(tenant_id)
        .bind(list)
        .execute(&mut *conn)
        .await?;
    for value in values {
        sqlx::query("INSERT INTO validation_list_entries (tenant_id, list, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(tenant_id)
            .bind(list)
            .bind(value)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The MX cache: a domain's outcome until it expires.
pub async fn cached_mx(
    conn: &mut AnyConnection,
    domain: &str,
    now: i64,
) -> Result<Option<(String, String)>> {
    Ok(
        sqlx::query_as("SELECT outcome, hosts FROM mx_cache WHERE domain = $1 AND expires_at > $2")
            .bind(domain)
            .bind(now)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn cache_mx(
    conn: &mut AnyConnection,
    domain: &str,
    outcome: &str,
    hosts: &str,
    expires_at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO mx_cache (domain, outcome, hosts, expires_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (domain) DO UPDATE SET outcome = excluded.outcome, hosts = excluded.hosts, expires_at = excluded.expires_at",
    )
    .bind(domain)
    .bind(outcome)
    .bind(hosts)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}
