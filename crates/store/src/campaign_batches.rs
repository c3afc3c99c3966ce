//! A batch of a campaign's recipients written to the queue in a few bulk statements (one
//! JSON parameter each, `bulk`): their messages, the messages' first events and the
//! recipients' ledger rows. One statement per row made the single SQLite writer the
//! campaign's bottleneck: three round trips to the database thread per recipient.

use std::collections::HashSet;

use ee_core::campaign::RecipientState;
use ee_core::ids::new_id;
use serde_json::{Value, json};
use sqlx::AnyConnection;

use crate::messages::NewMessage;
use crate::{Result, bulk};

/// Inserts the messages whose idempotency key is not taken yet (a batch run twice, two
/// nodes); the ids of those inserted.
pub async fn insert_messages(
    conn: &mut AnyConnection,
    messages: &[&NewMessage],
    now: i64,
) -> Result<HashSet<String>> {
    let mut inserted = HashSet::new();
    for chunk in messages.chunks(bulk::ROWS) {
        let rows: Vec<Value> = chunk
            .iter()
            .map(|m| {
                json!([
                    m.id,
                    m.tenant_id,
                    m.contact_id,
                    m.campaign_id,
                    m.template_id,
                    m.kind,
                    m.idempotency_key,
                    m.to_email,
                    m.to_name,
                    m.from_email,
                    m.from_name,
                    m.reply_to,
                    m.subject,
                    m.html,
                    m.text_body,
                    m.language,
                    m.headers,
                    i64::from(m.track_opens),
                    i64::from(m.track_clicks),
                    m.message_id_header,
                    m.state,
                    m.state_reason,
                    m.not_before,
                    m.template_version,
                ])
            })
            .collect();
        // `WHERE true`: SQLite reads an `ON` right after `FROM …` as a join's.
        let sql = format!(
            "INSERT INTO messages (id, tenant_id, contact_id, campaign_id, template_id, kind, idempotency_key, \
             to_email, to_name, from_email, from_name, reply_to, subject, html, text_body, language, headers, \
             track_opens, track_clicks, links, message_id_header, state, state_reason, attempts, next_attempt_at, \
             queued_at, updated_at, template_version) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, \
             value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11, value ->> 12, value ->> 13, \
             value ->> 14, value ->> 15, value ->> 16, CAST(value ->> 17 AS BIGINT), CAST(value ->> 18 AS BIGINT), \
             '[]', value ->> 19, value ->> 20, value ->> 21, 0, CAST(value ->> 22 AS BIGINT), $2, $2, \
             CAST(value ->> 23 AS BIGINT) FROM {} WHERE true \
             ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING id",
            bulk::rows(conn, "$1")
        );
        let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(bulk::encode(&rows))
            .bind(now)
            .fetch_all(&mut *conn)
            .await?;
        inserted.extend(ids);
    }
    Ok(inserted)
}

/// A message's first event: its state (`queued`, `suppressed`) and why.
pub struct FirstEvent<'a> {
    pub message_id: &'a str,
    pub tenant_id: &'a str,
    pub state: &'a str,
    pub reason: Option<&'a str>,
}

pub async fn add_first_events(
    conn: &mut AnyConnection,
    events: &[FirstEvent<'_>],
    now: i64,
) -> Result<()> {
    for chunk in events.chunks(bulk::ROWS) {
        let rows: Vec<Value> = chunk
            .iter()
            .map(|e| json!([new_id(), e.message_id, e.tenant_id, e.state, e.reason]))
            .collect();
        let sql = format!(
            "INSERT INTO message_events (id, message_id, tenant_id, event_type, code, detail, ip_id, occurred_at) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, NULL, value ->> 4, NULL, $2 FROM {}",
            bulk::rows(conn, "$1")
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(bulk::encode(&rows))
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// What became of a pending recipient: its state, its message, why.
pub struct Settled<'a> {
    pub contact_id: &'a str,
    pub state: RecipientState,
    pub message_id: Option<&'a str>,
    pub detail: Option<&'a str>,
}

/// Settles the campaign's recipients still pending (`campaigns::settle`, in bulk); the
/// contacts whose row this settled (another node may have settled the others).
pub async fn settle(
    conn: &mut AnyConnection,
    campaign_id: &str,
    settled: &[Settled<'_>],
    now: i64,
) -> Result<HashSet<String>> {
    let mut done = HashSet::new();
    for chunk in settled.chunks(bulk::ROWS) {
        let rows: Vec<Value> = chunk
            .iter()
            .map(|s| {
                json!([
                    s.contact_id,
                    s.state.as_str(),
                    s.message_id,
                    s.detail,
                    campaign_id
                ])
            })
            .collect();
        // The campaign in every row rather than as a parameter: with it a constant,
        // SQLite's planner walks the campaign's pending rows and scans the JSON for each
        // (quadratic); read from the row, its key is looked up once per row.
        let sql = format!(
            "UPDATE campaign_recipients SET state = value ->> 1, message_id = value ->> 2, \
             detail = value ->> 3, queued_at = CASE WHEN value ->> 2 IS NULL THEN queued_at ELSE $2 END, \
             updated_at = $2 FROM {} WHERE campaign_recipients.campaign_id = value ->> 4 \
             AND campaign_recipients.contact_id = value ->> 0 AND campaign_recipients.state = 'pending' \
             RETURNING campaign_recipients.contact_id",
            bulk::rows(conn, "$1")
        );
        let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(bulk::encode(&rows))
            .bind(now)
            .fetch_all(&mut *conn)
            .await?;
        done.extend(ids);
    }
    Ok(done)
}
