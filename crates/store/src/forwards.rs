//! The feedback forwarding outbox: one row per bounce or complaint to forward to a
//! contact's data source, sent by the retry-queue job until delivered or dead.

use ee_core::feedback::ForwardState;
use sqlx::AnyConnection;

use crate::Result;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Forward {
    pub id: String,
    pub tenant_id: String,
    pub source_id: String,
    pub event_id: String,
    pub url: String,
    pub body: String,
    #[sqlx(try_from = "String")]
    pub state: ForwardState,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, tenant_id, source_id, event_id, url, body, state, attempts, next_attempt_at, \
    last_status, last_error, delivered_at, created_at, updated_at";

pub async fn insert(
    conn: &mut AnyConnection,
    tenant_id: &str,
    source_id: &str,
    event_id: &str,
    url: &str,
    body: &str,
    now: i64,
) -> Result<String> {
    let id = ee_core::ids::new_id();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO feedback_forwards ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, NULL, NULL, NULL, $7, $7)"
    )))
    .bind(&id)
    .bind(tenant_id)
    .bind(source_id)
    .bind(event_id)
    .bind(url)
    .bind(body)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(id)
}

/// Pending forwards due now, oldest first.
pub async fn due(conn: &mut AnyConnection, now: i64, limit: i64) -> Result<Vec<Forward>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM feedback_forwards WHERE state = 'pending' AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at, id LIMIT $2"
    )))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Records an attempt: delivered, or failed with the time of the next one (`None`: dead).
/// Only a pending row whose attempts are as read is changed (two nodes never both count).
#[allow(clippy::too_many_arguments)]
pub async fn record_attempt(
    conn: &mut AnyConnection,
    forward: &Forward,
    delivered: bool,
    status: Option<i64>,
    error: Option<&str>,
    next_attempt_at: Option<i64>,
    now: i64,
) -> Result<bool> {
    let state = match (delivered, next_attempt_at) {
        (true, _) => ForwardState::Delivered,
        (false, Some(_)) => ForwardState::Pending,
        (false, None) => ForwardState::Dead,
    };
    let done = sqlx::query(
        "UPDATE feedback_forwards SET state = $1, attempts = attempts + 1, last_status = $2, last_error = $3, \
         next_attempt_at = COALESCE($4, next_attempt_at), delivered_at = $5, updated_at = $6 \
         WHERE id = $7 AND state = 'pending' AND attempts = $8",
    )
    .bind(state.as_str())
    .bind(status)
    .bind(error)
    .bind(next_attempt_at)
    .bind(delivered.then_some(now))
    .bind(now)
    .bind(&forward.id)
    .bind(forward.attempts)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A page of a tenant's forwards (all tenants': `None`), newest first.
pub async fn page(
    conn: &mut AnyConnection,
    tenant_id: Option<&str>,
    state: Option<&str>,
    after: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<Forward>> {
    let (t, id) = after.map_or((None, None), |(t, id)| (Some(t), Some(id)));
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM feedback_forwards WHERE ($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR state = $2) \
         AND ($3 IS NULL OR created_at < $3 OR (created_at = $3 AND id < $4)) ORDER BY created_at DESC, id DESC LIMIT $5"
    )))
    .bind(tenant_id)
    .bind(state)
    .bind(t)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// A dead (or pending) forward of the tenant made due now, with its attempts kept; false
/// when there is none such.
pub async fn retry_now(
    conn: &mut AnyConnection,
    tenant_id: Option<&str>,
    id: &str,
    now: i64,
) -> Result<Option<Forward>> {
    let done = sqlx::query(
        "UPDATE feedback_forwards SET state = 'pending', next_attempt_at = $1, updated_at = $1 \
         WHERE id = $2 AND ($3 IS NULL OR tenant_id = $3) AND state IN ('pending', 'dead')",
    )
    .bind(now)
    .bind(id)
    .bind(tenant_id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM feedback_forwards WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}
