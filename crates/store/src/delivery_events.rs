//! Delivery events: what every feedback source reported, classified, with what it was
//! matched to; the soft-bounce count and the last delivery an address had.

use ee_core::feedback::{Category, Class, EventKind, Source};
use sqlx::AnyConnection;

use crate::Result;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DeliveryEventRow {
    pub id: String,
    pub tenant_id: Option<String>,
    pub message_id: Option<String>,
    pub campaign_id: Option<String>,
    pub contact_id: Option<String>,
    pub ip_id: Option<String>,
    pub recipient: String,
    #[sqlx(try_from = "String")]
    pub kind: EventKind,
    #[sqlx(try_from = "String")]
    pub class: Class,
    #[sqlx(try_from = "String")]
    pub category: Category,
    #[sqlx(try_from = "String")]
    pub source: Source,
    pub code: Option<i64>,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    pub remote_mta: Option<String>,
    pub ip_address: Option<String>,
    pub raw_ref: Option<String>,
    pub dedupe_key: Option<String>,
    pub occurred_at: i64,
    pub received_at: i64,
}

const COLUMNS: &str = "id, tenant_id, message_id, campaign_id, contact_id, ip_id, recipient, kind, class, \
    category, source, code, status, diagnostic, remote_mta, ip_address, raw_ref, dedupe_key, occurred_at, received_at";

/// Stores an event; false (nothing stored) when one with its dedupe key exists.
pub async fn insert(conn: &mut AnyConnection, e: &DeliveryEventRow) -> Result<bool> {
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO delivery_events ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
         $13, $14, $15, $16, $17, $18, $19, $20) ON CONFLICT (dedupe_key) DO NOTHING"
    )))
    .bind(&e.id)
    .bind(&e.tenant_id)
    .bind(&e.message_id)
    .bind(&e.campaign_id)
    .bind(&e.contact_id)
    .bind(&e.ip_id)
    .bind(&e.recipient)
    .bind(e.kind.as_str())
    .bind(e.class.as_str())
    .bind(e.category.as_str())
    .bind(e.source.as_str())
    .bind(e.code)
    .bind(&e.status)
    .bind(&e.diagnostic)
    .bind(&e.remote_mta)
    .bind(&e.ip_address)
    .bind(&e.raw_ref)
    .bind(&e.dedupe_key)
    .bind(e.occurred_at)
    .bind(e.received_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Which events; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct EventFilter<'a> {
    /// `Some(None)`: the unmatched ones (no tenant); `None`: any (an admin).
    pub tenant_id: Option<Option<&'a str>>,
    pub class: Option<&'a str>,
    pub category: Option<&'a str>,
    pub source: Option<&'a str>,
    pub recipient: Option<&'a str>,
    pub campaign_id: Option<&'a str>,
    pub message_id: Option<&'a str>,
}

/// A page of events, newest first, after the cursor `(received_at, id)`.
pub async fn page(
    conn: &mut AnyConnection,
    f: &EventFilter<'_>,
    after: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<DeliveryEventRow>> {
    let (t, id) = after.map_or((None, None), |(t, id)| (Some(t), Some(id)));
    let (any_tenant, unmatched, tenant) = match f.tenant_id {
        None => (1_i64, 0_i64, None),
        Some(None) => (0, 1, None),
        Some(Some(t)) => (0, 0, Some(t)),
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM delivery_events WHERE \
         ($1 = 1 OR ($2 = 1 AND tenant_id IS NULL) OR tenant_id = $3) \
         AND ($4 IS NULL OR class = $4) AND ($5 IS NULL OR category = $5) AND ($6 IS NULL OR source = $6) \
         AND ($7 IS NULL OR recipient = $7) AND ($8 IS NULL OR campaign_id = $8) AND ($9 IS NULL OR message_id = $9) \
         AND ($10 IS NULL OR received_at < $10 OR (received_at = $10 AND id < $11)) \
         ORDER BY received_at DESC, id DESC LIMIT $12"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(any_tenant)
        .bind(unmatched)
        .bind(tenant)
        .bind(f.class)
        .bind(f.category)
        .bind(f.source)
        .bind(f.recipient)
        .bind(f.campaign_id)
        .bind(f.message_id)
        .bind(t)
        .bind(id)
        .bind(limit)
        .fetch_all(conn)
        .await?)
}

/// Keeps the newest `keep` unmatched events (no tenant), dropping older ones: strangers
/// write them, so they must not grow without bound. How many were dropped.
pub async fn cap_unmatched(conn: &mut AnyConnection, keep: i64) -> Result<u64> {
    crate::unowned_cap::keep_newest(conn, crate::unowned_cap::Unowned::DeliveryEvents, keep).await
}

/// How many unmatched events are kept.
pub async fn unmatched_count(conn: &mut AnyConnection) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM delivery_events WHERE tenant_id IS NULL")
            .fetch_one(conn)
            .await?,
    )
}

/// The soft bounces an address had in a tenant since a time.
pub async fn soft_bounces_since(
    conn: &mut AnyConnection,
    tenant_id: &str,
    recipient: &str,
    since: i64,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM delivery_events WHERE tenant_id = $1 AND recipient = $2 \
         AND class = 'soft' AND kind = 'bounced' AND occurred_at >= $3",
    )
    .bind(tenant_id)
    .bind(recipient)
    .bind(since)
    .fetch_one(conn)
    .await?)
}

/// When an address last had a message delivered in a tenant: a delivery event, or a
/// message our own transport handed to its MX directly.
pub async fn last_delivery(
    conn: &mut AnyConnection,
    tenant_id: &str,
    recipient: &str,
) -> Result<Option<i64>> {
    let reported: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(occurred_at) FROM delivery_events WHERE tenant_id = $1 AND recipient = $2 \
         AND class = 'delivered'",
    )
    .bind(tenant_id)
    .bind(recipient)
    .fetch_one(&mut *conn)
    .await?;
    let direct: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(sent_at) FROM messages WHERE tenant_id = $1 AND to_email = $2 AND state = 'sent' \
         AND route = 'direct'",
    )
    .bind(tenant_id)
    .bind(recipient)
    .fetch_one(conn)
    .await?;
    Ok(reported.max(direct))
}
