//! Opens and clicks as they came, written many at once.

use sqlx::AnyConnection;

use crate::{Result, bulk};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NewHit {
    pub id: String,
    pub tenant_id: String,
    pub message_id: String,
    pub campaign_id: Option<String>,
    pub contact_id: Option<String>,
    /// open or click.
    pub kind: ee_core::machine_hits::HitKind,
    pub link: Option<i64>,
    pub url: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub machine: bool,
    pub machine_reason: Option<String>,
    pub repeat: bool,
    pub occurred_at: i64,
}

/// Writes hits in one statement.
pub async fn insert_many(conn: &mut AnyConnection, hits: &[NewHit]) -> Result<()> {
    if hits.is_empty() {
        return Ok(());
    }
    let rows: Vec<serde_json::Value> = hits
        .iter()
        .map(|h| {
            serde_json::json!([
                h.id,
                h.tenant_id,
                h.message_id,
                h.campaign_id,
                h.contact_id,
                h.kind.as_str(),
                h.link,
                h.url,
                h.ip,
                h.user_agent,
                i64::from(h.machine),
                h.machine_reason,
                i64::from(h.repeat),
                h.occurred_at
            ])
        })
        .collect();
    let sql = format!(
        "INSERT INTO tracking_hits (id, tenant_id, message_id, campaign_id, contact_id, kind, link, url, ip, \
         user_agent, machine, machine_reason, repeat, occurred_at) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, \
         CAST(value ->> 6 AS BIGINT), value ->> 7, value ->> 8, value ->> 9, CAST(value ->> 10 AS BIGINT), \
         value ->> 11, CAST(value ->> 12 AS BIGINT), CAST(value ->> 13 AS BIGINT) FROM {}",
        bulk::rows(conn, "$1")
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(bulk::encode(&rows))
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct HitRow {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub kind: ee_core::machine_hits::HitKind,
    pub link: Option<i64>,
    pub url: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[sqlx(try_from = "crate::flag::Flag")]
    pub machine: bool,
    pub machine_reason: Option<String>,
    #[sqlx(try_from = "crate::flag::Flag")]
    pub repeat: bool,
    pub occurred_at: i64,
}

/// A message's hits, oldest first (the first thousand).
pub async fn of_message(conn: &mut AnyConnection, message_id: &str) -> Result<Vec<HitRow>> {
    Ok(sqlx::query_as(
        "SELECT id, kind, link, url, ip, user_agent, machine, machine_reason, repeat, occurred_at \
         FROM tracking_hits WHERE message_id = $1 ORDER BY occurred_at, id LIMIT 1000",
    )
    .bind(message_id)
    .fetch_all(conn)
    .await?)
}
