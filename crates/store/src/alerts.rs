//! Alerts, merged by cause: a repeat of an open alert's cause counts an occurrence
//! instead of making (and sending) a new one.

use crate::Scope;
use ee_core::alert::Severity;
use ee_core::ids::new_id;
use sqlx::AnyConnection;

use crate::Result;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Alert {
    pub id: String,
    pub tenant_id: Option<String>,
    pub cause: String,
    #[sqlx(try_from = "String")]
    pub severity: Severity,
    pub title: String,
    pub message: String,
    pub occurrences: i64,
    pub first_at: i64,
    pub last_at: i64,
    pub notified_at: Option<i64>,
}

const COLUMNS: &str =
    "id, tenant_id, cause, severity, title, message, occurrences, first_at, last_at, notified_at";

pub struct NewAlert<'a> {
    pub tenant_id: Option<&'a str>,
    /// What makes two alerts "the same", e.g. `ip.quarantined:<ip id>`.
    pub cause: &'a str,
    pub severity: Severity,
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Raised {
    /// A new alert, to be sent.
    New(Alert),
    /// A repeat merged into this open alert; nothing to send.
    Merged(Alert),
}

/// Raises an alert, merging it into one with the same cause seen within `merge_window_ms`.
pub async fn raise(
    conn: &mut AnyConnection,
    new: NewAlert<'_>,
    merge_window_ms: i64,
    now: i64,
) -> Result<Raised> {
    let open: Option<Alert> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM alerts WHERE cause = $1 AND last_at >= $2 ORDER BY last_at DESC LIMIT 1"
    )))
    .bind(new.cause)
    .bind(now - merge_window_ms)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(mut alert) = open {
        sqlx::query("UPDATE alerts SET occurrences = occurrences + 1, last_at = $1, message = $2 WHERE id = $3")
            .bind(now)
            .bind(new.message)
            .bind(&alert.id)
            .execute(conn)
            .await?;
        alert.occurrences += 1;
        alert.last_at = now;
        alert.message = new.message.to_owned();
        return Ok(Raised::Merged(alert));
    }
    let alert = Alert {
        id: new_id(),
        tenant_id: new.tenant_id.map(str::to_owned),
        cause: new.cause.to_owned(),
        severity: new.severity,
        title: new.title.to_owned(),
        message: new.message.to_owned(),
        occurrences: 1,
        first_at: now,
        last_at: now,
        notified_at: None,
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO alerts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    )))
    .bind(&alert.id)
    .bind(&alert.tenant_id)
    .bind(&alert.cause)
    .bind(alert.severity.as_str())
    .bind(&alert.title)
    .bind(&alert.message)
    .bind(alert.occurrences)
    .bind(now)
    .bind(now)
    .bind(alert.notified_at)
    .execute(conn)
    .await?;
    Ok(Raised::New(alert))
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Alert> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM alerts WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(crate::StoreError::NotFound)
}

pub async fn mark_notified(conn: &mut AnyConnection, id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE alerts SET notified_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn list(
    conn: &mut AnyConnection,
    scope: Scope<'_>,
    limit: i64,
    offset: i64,
) -> Result<Vec<Alert>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM alerts WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY last_at DESC, id DESC LIMIT $2 OFFSET $3"
    )))
    .bind(scope.tenant())
    .bind(limit)
    .bind(offset)
    .fetch_all(conn)
    .await?)
}
