//! The message queue as an operator reads and nudges it: filtered pages of messages
//! (newest first, keyset cursor) and "retry now" for deferred ones.

use sqlx::AnyConnection;

use crate::Result;
use crate::messages::Message;

/// Which messages; every field narrows, `None` leaves it open.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter<'a> {
    /// The tenant (`None`: all, for an admin).
    pub tenant_id: Option<&'a str>,
    pub state: Option<&'a str>,
    /// The recipient's normalised address.
    pub to_email: Option<&'a str>,
    pub campaign_id: Option<&'a str>,
    pub ip_id: Option<&'a str>,
    /// Queued at or after (ms).
    pub since: Option<i64>,
    /// Queued before (ms).
    pub until: Option<i64>,
}

const WHERE: &str = "($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR state = $2) \
    AND ($3 IS NULL OR to_email = $3) AND ($4 IS NULL OR campaign_id = $4) \
    AND ($5 IS NULL OR ip_id = $5) AND ($6 IS NULL OR queued_at >= $6) AND ($7 IS NULL OR queued_at < $7)";

/// A page of messages, newest first, after the cursor `(queued_at, id)`.
pub async fn page(
    conn: &mut AnyConnection,
    filter: &MessageFilter<'_>,
    after: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<Message>> {
    let (t, id) = after.map_or((None, None), |(t, id)| (Some(t), Some(id)));
    let sql = format!(
        "SELECT {} FROM messages WHERE {WHERE} \
         AND ($8 IS NULL OR queued_at < $8 OR (queued_at = $8 AND id < $9)) \
         ORDER BY queued_at DESC, id DESC LIMIT $10",
        crate::messages::COLUMNS
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(filter.tenant_id)
        .bind(filter.state)
        .bind(filter.to_email)
        .bind(filter.campaign_id)
        .bind(filter.ip_id)
        .bind(filter.since)
        .bind(filter.until)
        .bind(t)
        .bind(id)
        .bind(limit)
        .fetch_all(conn)
        .await?)
}

/// Makes deferred messages due now (the filter's state is ignored: only deferred ones
/// wait for a retry). Returns the ids made due.
pub async fn retry_deferred(
    conn: &mut AnyConnection,
    filter: &MessageFilter<'_>,
    id: Option<&str>,
    limit: i64,
    now: i64,
) -> Result<Vec<String>> {
    let filter = MessageFilter {
        state: Some("deferred"),
        ..filter.clone()
    };
    let sql = format!(
        "UPDATE messages SET next_attempt_at = $8, updated_at = $8 WHERE id IN ( \
         SELECT id FROM messages WHERE {WHERE} AND ($9 IS NULL OR id = $9) \
         ORDER BY queued_at, id LIMIT $10) AND state = 'deferred' RETURNING id"
    );
    let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(filter.tenant_id)
        .bind(filter.state)
        .bind(filter.to_email)
        .bind(filter.campaign_id)
        .bind(filter.ip_id)
        .bind(filter.since)
        .bind(filter.until)
        .bind(now)
        .bind(id)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// The tenant's messages with these idempotency keys: key → message id.
pub async fn ids_by_key(
    conn: &mut AnyConnection,
    tenant_id: &str,
    keys: &[String],
) -> Result<std::collections::HashMap<String, String>> {
    if keys.is_empty() {
        return Ok(Default::default());
    }
    let sql = format!(
        "SELECT idempotency_key, id FROM messages WHERE tenant_id = $1 AND idempotency_key {}",
        crate::bulk::in_texts(conn, "$2")
    );
    let found: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(crate::bulk::encode(keys))
        .fetch_all(&mut *conn)
        .await?;
    Ok(found.into_iter().collect())
}

/// Per address, the messages (any state but suppressed, transactional ones exempt) queued
/// since `since`: the frequency cap of a batch, in one query.
pub async fn recent_counts_to(
    conn: &mut AnyConnection,
    tenant_id: &str,
    emails: &[String],
    since: i64,
) -> Result<std::collections::HashMap<String, i64>> {
    if emails.is_empty() {
        return Ok(Default::default());
    }
    let sql = format!(
        "SELECT to_email, COUNT(*) FROM messages WHERE tenant_id = $1 AND to_email {} \
         AND queued_at >= $3 AND state <> 'suppressed' AND kind <> 'transactional' GROUP BY to_email",
        crate::bulk::in_texts(conn, "$2")
    );
    let found: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(crate::bulk::encode(emails))
        .bind(since)
        .fetch_all(&mut *conn)
        .await?;
    Ok(found.into_iter().collect())
}

/// How many messages are due and waiting (queued or deferred, due by `now`): the queue's
/// backlog, read from the partial index of waiting messages.
pub async fn due_count(conn: &mut AnyConnection, now: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages WHERE state IN ('queued', 'deferred') AND next_attempt_at <= $1",
    )
    .bind(now)
    .fetch_one(conn)
    .await?)
}
