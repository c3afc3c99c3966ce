//! CSV imports: their progress, counts and error report.

use crate::Scope;
use ee_core::ids::new_id;
use sqlx::AnyConnection;

use crate::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Import {
    pub id: String,
    pub tenant_id: String,
    pub source_id: Option<String>,
    pub filename: Option<String>,
    /// The uploaded file on disk until the import ends.
    pub path: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: ee_core::contacts::ImportStatus,
    pub total: i64,
    pub created: i64,
    pub updated: i64,
    pub duplicates: i64,
    pub rejected: i64,
    pub delimiter: Option<String>,
    pub encoding: Option<String>,
    pub error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

const COLUMNS: &str = "id, tenant_id, source_id, filename, path, status, total, created, updated, duplicates, rejected, \
    delimiter, encoding, error, created_at, finished_at";

pub async fn insert(
    conn: &mut AnyConnection,
    tenant_id: &str,
    source_id: Option<&str>,
    filename: Option<&str>,
    path: Option<&str>,
    now: i64,
) -> Result<Import> {
    let id = new_id();
    sqlx::query("INSERT INTO imports (id, tenant_id, source_id, filename, path, status, created_at) VALUES ($1, $2, $3, $4, $5, 'queued', $6)")
        .bind(&id)
        .bind(tenant_id)
        .bind(source_id)
        .bind(filename)
        .bind(path)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    get(conn, &id, Scope::All).await
}

pub async fn get(conn: &mut AnyConnection, id: &str, scope: Scope<'_>) -> Result<Import> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM imports WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)"
    )))
    .bind(id)
    .bind(scope.tenant())
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

pub async fn list(conn: &mut AnyConnection, scope: Scope<'_>, limit: i64) -> Result<Vec<Import>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM imports WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY created_at DESC, id DESC LIMIT $2")))
        .bind(scope.tenant())
        .bind(limit)
        .fetch_all(conn)
        .await?)
}

/// Writes progress and, when finished, the final status.
pub async fn update(conn: &mut AnyConnection, i: &Import) -> Result<()> {
    sqlx::query(
        "UPDATE imports SET status = $1, total = $2, created = $3, updated = $4, duplicates = $5, rejected = $6, \
         delimiter = $7, encoding = $8, error = $9, finished_at = $10, path = $11 WHERE id = $12",
    )
    .bind(i.status.as_str())
    .bind(i.total)
    .bind(i.created)
    .bind(i.updated)
    .bind(i.duplicates)
    .bind(i.rejected)
    .bind(&i.delimiter)
    .bind(&i.encoding)
    .bind(&i.error)
    .bind(i.finished_at)
    .bind(&i.path)
    .bind(&i.id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds lines to the error report, one statement for any number (a line already
/// reported keeps its first reason).
pub async fn add_errors(
    conn: &mut AnyConnection,
    import_id: &str,
    errors: &[(i64, String)],
) -> Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO import_errors (import_id, line, reason) \
         SELECT $2, CAST(value ->> 0 AS BIGINT), value ->> 1 FROM {} WHERE true ON CONFLICT DO NOTHING",
        crate::bulk::rows(conn, "$1")
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(crate::bulk::encode(errors))
        .bind(import_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The error report, by line.
pub async fn errors(conn: &mut AnyConnection, import_id: &str) -> Result<Vec<(i64, String)>> {
    Ok(
        sqlx::query_as("SELECT line, reason FROM import_errors WHERE import_id = $1 ORDER BY line")
            .bind(import_id)
            .fetch_all(conn)
            .await?,
    )
}
