//! Mail the bounce listener could not read as a report, kept for an operator.

use sqlx::AnyConnection;

use crate::Result;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct KeptMessage {
    pub id: String,
    pub envelope_from: Option<String>,
    pub envelope_to: String,
    pub raw: String,
    pub size: i64,
    pub reason: String,
    pub received_at: i64,
}

/// The most kept of a message's text.
pub const KEPT_BYTES: usize = 1024 * 1024;

pub async fn insert(conn: &mut AnyConnection, m: &KeptMessage) -> Result<()> {
    sqlx::query(
        "INSERT INTO feedback_messages (id, envelope_from, envelope_to, raw, size, reason, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&m.id)
    .bind(&m.envelope_from)
    .bind(&m.envelope_to)
    .bind(&m.raw)
    .bind(m.size)
    .bind(&m.reason)
    .bind(m.received_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Keeps the newest messages within `max_count` and `max_bytes` of kept text, dropping
/// the oldest first. How many were dropped.
pub async fn cap(conn: &mut AnyConnection, max_count: i64, max_bytes: i64) -> Result<u64> {
    let newest: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT received_at, id, LENGTH(raw) FROM feedback_messages \
         ORDER BY received_at DESC, id DESC LIMIT $1",
    )
    .bind(max_count + 1)
    .fetch_all(&mut *conn)
    .await?;
    let mut total = 0_i64;
    let mut edge = None;
    for (index, (at, id, len)) in newest.into_iter().enumerate() {
        total += len;
        if index as i64 >= max_count || (total > max_bytes && index > 0) {
            edge = Some((at, id));
            break;
        }
    }
    let Some((at, id)) = edge else {
        return Ok(0);
    };
    let done = sqlx::query(
        "DELETE FROM feedback_messages WHERE received_at < $1 OR (received_at = $1 AND id <= $2)",
    )
    .bind(at)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// How many messages are kept, and their kept bytes.
pub async fn totals(conn: &mut AnyConnection) -> Result<(i64, i64)> {
    let (n, bytes): (i64, Option<i64>) =
        sqlx::query_as("SELECT COUNT(*), CAST(SUM(LENGTH(raw)) AS BIGINT) FROM feedback_messages")
            .fetch_one(conn)
            .await?;
    Ok((n, bytes.unwrap_or(0)))
}

/// A page, newest first, after the cursor `(received_at, id)`.
pub async fn page(
    conn: &mut AnyConnection,
    after: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<KeptMessage>> {
    let (t, id) = after.map_or((None, None), |(t, id)| (Some(t), Some(id)));
    Ok(sqlx::query_as(
        "SELECT id, envelope_from, envelope_to, raw, size, reason, received_at FROM feedback_messages \
         WHERE ($1 IS NULL OR received_at < $1 OR (received_at = $1 AND id < $2)) \
         ORDER BY received_at DESC, id DESC LIMIT $3",
    )
    .bind(t)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
