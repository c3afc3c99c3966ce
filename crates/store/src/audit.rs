//! The audit log: who changed what, when, from where.

use ee_core::ids::new_id;
use sqlx::AnyConnection;

use crate::Result;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: String,
    pub created_at: i64,
    #[sqlx(try_from = "String")]
    pub actor_type: ee_core::auth::ActorKind,
    pub actor_id: Option<String>,
    pub actor_label: Option<String>,
    pub tenant_id: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    /// JSON `{"before": …, "after": …}`, secrets already redacted.
    pub changes: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// Everything but the id and time, which `insert` assigns.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEntry {
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub actor_label: Option<String>,
    pub tenant_id: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub changes: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

pub async fn insert(conn: &mut AnyConnection, entry: NewAuditEntry, now: i64) -> Result<String> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO audit_logs (id, created_at, actor_type, actor_id, actor_label, tenant_id, \
         action, resource_type, resource_id, changes, ip_address, user_agent, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&id)
    .bind(now)
    .bind(&entry.actor_type)
    .bind(&entry.actor_id)
    .bind(&entry.actor_label)
    .bind(&entry.tenant_id)
    .bind(&entry.action)
    .bind(&entry.resource_type)
    .bind(&entry.resource_id)
    .bind(&entry.changes)
    .bind(&entry.ip_address)
    .bind(&entry.user_agent)
    .bind(&entry.request_id)
    .execute(conn)
    .await?;
    Ok(id)
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub tenant_id: Option<String>,
    /// Inclusive lower bound, epoch ms.
    pub from: Option<i64>,
    /// Exclusive upper bound, epoch ms.
    pub to: Option<i64>,
    /// Keyset cursor: entries strictly older than this (created_at, id).
    pub before: Option<(i64, String)>,
    pub limit: i64,
}

/// Newest first.
pub async fn list(conn: &mut AnyConnection, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
    let (before_time, before_id) = match &filter.before {
        Some((t, id)) => (Some(*t), Some(id.clone())),
        None => (None, None),
    };
    Ok(sqlx::query_as(
        "SELECT id, created_at, actor_type, actor_id, actor_label, tenant_id, action, \
         resource_type, resource_id, changes, ip_address, user_agent, request_id FROM audit_logs \
         WHERE ($1 IS NULL OR actor_id = $1) AND ($2 IS NULL OR action = $2) \
         AND ($3 IS NULL OR resource_type = $3) AND ($4 IS NULL OR resource_id = $4) \
         AND ($5 IS NULL OR tenant_id = $5) AND ($6 IS NULL OR created_at >= $6) \
         AND ($7 IS NULL OR created_at < $7) \
         AND ($8 IS NULL OR created_at < $8 OR (created_at = $8 AND id < $9)) \
         ORDER BY created_at DESC, id DESC LIMIT $10",
    )
    .bind(&filter.actor_id)
    .bind(&filter.action)
    .bind(&filter.resource_type)
    .bind(&filter.resource_id)
    .bind(&filter.tenant_id)
    .bind(filter.from)
    .bind(filter.to)
    .bind(before_time)
    .bind(before_id)
    .bind(filter.limit)
    .fetch_all(conn)
    .await?)
}
