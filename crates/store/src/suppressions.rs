//! The suppression list of a tenant: addresses that are never mailed nor re-imported.

use ee_core::contacts::SuppressionReason;
use ee_core::ids::new_id;
use sqlx::AnyConnection;

use crate::Result;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Suppression {
    pub id: String,
    pub tenant_id: String,
    pub email_hash: String,
    pub email: Option<String>,
    #[sqlx(try_from = "String")]
    pub reason: SuppressionReason,
    pub source: Option<String>,
    pub created_at: i64,
}

/// Adds an address (or only its hash); an existing entry keeps its first reason.
pub async fn add(
    conn: &mut AnyConnection,
    tenant_id: &str,
    email_hash: &str,
    email: Option<&str>,
    reason: SuppressionReason,
    source: Option<&str>,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO suppressions (id, tenant_id, email_hash, email, reason, source, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (tenant_id, email_hash) DO NOTHING",
    )
    .bind(new_id())
    .bind(tenant_id)
    .bind(email_hash)
    .bind(email)
    .bind(reason.as_str())
    .bind(source)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn find(
    conn: &mut AnyConnection,
    tenant_id: &str,
    email_hash: &str,
) -> Result<Option<Suppression>> {
    Ok(sqlx::query_as("SELECT id, tenant_id, email_hash, email, reason, source, created_at FROM suppressions WHERE tenant_id = $1 AND email_hash = $2")
        .bind(tenant_id)
        .bind(email_hash)
        .fetch_optional(conn)
        .await?)
}

/// Forgets the address of an entry, keeping the hash (erasure).
pub async fn forget_address(
    conn: &mut AnyConnection,
    tenant_id: &str,
    email_hash: &str,
) -> Result<()> {
    sqlx::query("UPDATE suppressions SET email = NULL WHERE tenant_id = $1 AND email_hash = $2")
        .bind(tenant_id)
        .bind(email_hash)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    reason: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Suppression>> {
    Ok(sqlx::query_as(
        "SELECT id, tenant_id, email_hash, email, reason, source, created_at FROM suppressions WHERE tenant_id = $1 \
         AND ($2 IS NULL OR reason = $2) AND ($3 IS NULL OR id > $3) ORDER BY id LIMIT $4",
    )
    .bind(tenant_id)
    .bind(reason)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

pub async fn remove(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> Result<bool> {
    let done = sqlx::query(
        "DELETE FROM suppressions WHERE tenant_id = $1 AND id = $2 AND reason <> 'erased'",
    )
    .bind(tenant_id)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The suppressed among these hashes, with their reason.
pub async fn reasons_for(
    conn: &mut AnyConnection,
    tenant_id: &str,
    hashes: &[String],
) -> Result<std::collections::HashMap<String, String>> {
    if hashes.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let sql = format!(
        "SELECT email_hash, reason FROM suppressions WHERE tenant_id = $1 AND email_hash {}",
        crate::bulk::in_texts(conn, "$2")
    );
    let found = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(crate::bulk::encode(hashes))
        .fetch_all(&mut *conn)
        .await?;
    Ok(found.into_iter().collect())
}

/// Suppresses an address and marks its contact (if any): status, and an event
/// (`BOUNCED`, `COMPLAINED`, `UNSUBSCRIBED`, or `SUPPRESSED` for other reasons).
/// False when the address was suppressed already (the contact is marked anyway).
pub async fn suppress_address(
    conn: &mut AnyConnection,
    tenant_id: &str,
    email: &str,
    reason: SuppressionReason,
    source: Option<&str>,
    detail: &serde_json::Value,
    now: i64,
) -> Result<bool> {
    let hash = ee_core::contacts::address_hash(email);
    let added = add(
        &mut *conn,
        tenant_id,
        &hash,
        Some(email),
        reason,
        source,
        now,
    )
    .await?;
    if let Some(contact) = crate::contacts::get_by_email(&mut *conn, tenant_id, email).await? {
        let status = reason.contact_status();
        // A repeat (a second unsubscribe) changes nothing and adds no second event.
        if !added && contact.status == status {
            return Ok(false);
        }
        crate::contacts::set_status(&mut *conn, &contact.id, status, now).await?;
        let event = reason.timeline_event();
        crate::contacts::add_event(conn, tenant_id, &contact.id, event, None, detail, now).await?;
    }
    Ok(added)
}
