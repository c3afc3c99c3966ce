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
