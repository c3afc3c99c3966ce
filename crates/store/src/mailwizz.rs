//! MailWizz instances of a tenant: API address, key sealed at rest, default list.

use crate::Scope;
use ee_core::ids::new_id;
use sqlx::AnyConnection;

use crate::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Instance {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub api_url: String,
    pub api_key_sealed: String,
    pub default_list_uid: Option<String>,
    #[sqlx(try_from = "crate::flag::Flag")]
    pub is_primary: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, tenant_id, name, api_url, api_key_sealed, default_list_uid, is_primary, created_at, updated_at";

pub struct NewInstance<'a> {
    pub name: &'a str,
    pub api_url: &'a str,
    pub api_key_sealed: &'a str,
    pub default_list_uid: Option<&'a str>,
    pub is_primary: bool,
}

/// One primary instance per tenant: making one primary demotes the others.
async fn demote_others(conn: &mut AnyConnection, tenant_id: &str, keep: &str) -> Result<()> {
    sqlx::query("UPDATE mailwizz_instances SET is_primary = 0 WHERE tenant_id = $1 AND id <> $2")
        .bind(tenant_id)
        .bind(keep)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert(
    conn: &mut AnyConnection,
    tenant_id: &str,
    new: &NewInstance<'_>,
    now: i64,
) -> Result<Instance> {
    let id = new_id();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO mailwizz_instances ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"
    )))
    .bind(&id)
    .bind(tenant_id)
    .bind(new.name)
    .bind(new.api_url)
    .bind(new.api_key_sealed)
    .bind(new.default_list_uid)
    .bind(i64::from(new.is_primary))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if new.is_primary {
        demote_others(conn, tenant_id, &id).await?;
    }
    get(conn, &id, Scope::All).await
}

pub async fn get(conn: &mut AnyConnection, id: &str, scope: Scope<'_>) -> Result<Instance> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM mailwizz_instances WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)"
    )))
    .bind(id)
    .bind(scope.tenant())
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

pub async fn list(conn: &mut AnyConnection, scope: Scope<'_>) -> Result<Vec<Instance>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM mailwizz_instances WHERE ($1 IS NULL OR tenant_id = $1) \
         ORDER BY tenant_id, is_primary DESC, name, id"
    )))
    .bind(scope.tenant())
    .fetch_all(conn)
    .await?)
}

pub async fn update(conn: &mut AnyConnection, instance: &Instance, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE mailwizz_instances SET name = $1, api_url = $2, api_key_sealed = $3, default_list_uid = $4, \
         is_primary = $5, updated_at = $6 WHERE id = $7",
    )
    .bind(&instance.name)
    .bind(&instance.api_url)
    .bind(&instance.api_key_sealed)
    .bind(&instance.default_list_uid)
    .bind(i64::from(instance.is_primary))
    .bind(now)
    .bind(&instance.id)
    .execute(&mut *conn)
    .await?;
    if instance.is_primary {
        demote_others(conn, &instance.tenant_id, &instance.id).await?;
    }
    Ok(())
}

pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM mailwizz_instances WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The tenant's instance named by id or name, or its primary one (the only one counts as
/// primary) when `key` is absent.
pub async fn find(
    conn: &mut AnyConnection,
    tenant_id: &str,
    key: Option<&str>,
) -> Result<Instance> {
    let all = list(conn, Scope::Tenant(tenant_id)).await?;
    match key {
        Some(key) => all.into_iter().find(|i| i.id == key || i.name == key),
        None if all.len() == 1 => all.into_iter().next(),
        None => all.into_iter().find(|i| i.is_primary),
    }
    .ok_or(StoreError::NotFound)
}

/// Contacts of the instance's tenant that may be mailed and have no subscriber in the
/// given list (its default list) yet.
pub async fn unsynced_contacts(
    conn: &mut AnyConnection,
    instance: &Instance,
    list_uid: &str,
    limit: i64,
) -> Result<Vec<crate::contacts::Contact>> {
    let columns = crate::contacts::COLUMNS
        .split(", ")
        .map(|c| format!("c.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {columns} FROM contacts c WHERE c.tenant_id = $1 AND c.status = 'active' \
         AND c.validation_status <> 'invalid' AND NOT EXISTS (SELECT 1 FROM mailwizz_subscribers s \
         WHERE s.instance_id = $2 AND s.contact_id = c.id AND s.list_uid = $3) \
         ORDER BY c.created_at, c.id LIMIT $4"
    )))
    .bind(&instance.tenant_id)
    .bind(&instance.id)
    .bind(list_uid)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// What MailWizz answered for one contact: its subscriber uid, or why it was refused.
pub struct SubscriberOutcome<'a> {
    pub contact_id: &'a str,
    pub subscriber_uid: Option<&'a str>,
    pub error: Option<&'a str>,
}

pub async fn record_subscribers(
    conn: &mut AnyConnection,
    instance_id: &str,
    list_uid: &str,
    outcomes: &[SubscriberOutcome<'_>],
    now: i64,
) -> Result<()> {
    for o in outcomes {
        sqlx::query(
            "INSERT INTO mailwizz_subscribers (instance_id, contact_id, list_uid, subscriber_uid, error, synced_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (instance_id, contact_id, list_uid) DO UPDATE SET \
             subscriber_uid = excluded.subscriber_uid, error = excluded.error, \
             synced_at = excluded.synced_at",
        )
        .bind(instance_id)
        .bind(o.contact_id)
        .bind(list_uid)
        .bind(o.subscriber_uid)
        .bind(o.error)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Subscribers, in any list of the instance, whose contact may no longer be mailed
/// (unsubscribed, bounced, complained, suppressed) and who are still subscribed in
/// MailWizz: (contact id, list uid, uid).
pub async fn stale_subscribers(
    conn: &mut AnyConnection,
    instance_id: &str,
    limit: i64,
) -> Result<Vec<(String, String, String)>> {
    Ok(sqlx::query_as(
        "SELECT s.contact_id, s.list_uid, s.subscriber_uid FROM mailwizz_subscribers s \
         JOIN contacts c ON c.id = s.contact_id WHERE s.instance_id = $1 \
         AND s.subscriber_uid IS NOT NULL AND s.unsubscribed_at IS NULL AND c.status <> 'active' \
         ORDER BY s.contact_id, s.list_uid LIMIT $2",
    )
    .bind(instance_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

pub async fn mark_unsubscribed(
    conn: &mut AnyConnection,
    instance_id: &str,
    contact_id: &str,
    list_uid: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE mailwizz_subscribers SET unsubscribed_at = $1 \
         WHERE instance_id = $2 AND contact_id = $3 AND list_uid = $4",
    )
    .bind(now)
    .bind(instance_id)
    .bind(contact_id)
    .bind(list_uid)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Subscriber {
    pub instance_id: String,
    pub contact_id: String,
    pub list_uid: String,
    pub subscriber_uid: Option<String>,
    pub error: Option<String>,
    pub synced_at: i64,
    pub unsubscribed_at: Option<i64>,
}

pub async fn subscribers_of_contact(
    conn: &mut AnyConnection,
    contact_id: &str,
) -> Result<Vec<Subscriber>> {
    Ok(sqlx::query_as(
        "SELECT instance_id, contact_id, list_uid, subscriber_uid, error, synced_at, unsubscribed_at \
         FROM mailwizz_subscribers WHERE contact_id = $1 ORDER BY instance_id, list_uid",
    )
    .bind(contact_id)
    .fetch_all(conn)
    .await?)
}

/// The MailWizz template uid and version a template of ours was last pushed as.
pub async fn pushed_template(
    conn: &mut AnyConnection,
    instance_id: &str,
    template_id: &str,
) -> Result<Option<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT template_uid, version FROM mailwizz_templates WHERE instance_id = $1 AND template_id = $2",
    )
    .bind(instance_id)
    .bind(template_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn record_template(
    conn: &mut AnyConnection,
    instance_id: &str,
    template_id: &str,
    template_uid: &str,
    version: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO mailwizz_templates (instance_id, template_id, template_uid, version, pushed_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (instance_id, template_id) DO UPDATE SET \
         template_uid = excluded.template_uid, version = excluded.version, pushed_at = excluded.pushed_at",
    )
    .bind(instance_id)
    .bind(template_id)
    .bind(template_uid)
    .bind(version)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A sending IP mapped to the MailWizz delivery server that uses it, with the last sync.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DeliveryServer {
    pub id: String,
    pub instance_id: String,
    pub ip_id: String,
    pub server_id: String,
    pub last_status: Option<String>,
    pub last_detail: Option<String>,
    pub last_hourly_quota: Option<i64>,
    pub last_daily_quota: Option<i64>,
    pub last_sync_at: Option<i64>,
    pub created_at: i64,
}

const SERVER_COLUMNS: &str = "d.id, d.instance_id, d.ip_id, d.server_id, d.last_status, d.last_detail, \
    d.last_hourly_quota, d.last_daily_quota, d.last_sync_at, d.created_at";

pub async fn insert_delivery_server(
    conn: &mut AnyConnection,
    instance_id: &str,
    ip_id: &str,
    server_id: &str,
    now: i64,
) -> Result<DeliveryServer> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO mailwizz_delivery_servers (id, instance_id, ip_id, server_id, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(instance_id)
    .bind(ip_id)
    .bind(server_id)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(|e| StoreError::unique(e, "delivery server"))?;
    get_delivery_server(conn, &id, Scope::All).await
}

pub async fn get_delivery_server(
    conn: &mut AnyConnection,
    id: &str,
    scope: Scope<'_>,
) -> Result<DeliveryServer> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SERVER_COLUMNS} FROM mailwizz_delivery_servers d JOIN mailwizz_instances i \
         ON i.id = d.instance_id WHERE d.id = $1 AND ($2 IS NULL OR i.tenant_id = $2)"
    )))
    .bind(id)
    .bind(scope.tenant())
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

pub async fn list_delivery_servers(
    conn: &mut AnyConnection,
    scope: Scope<'_>,
) -> Result<Vec<DeliveryServer>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SERVER_COLUMNS} FROM mailwizz_delivery_servers d JOIN mailwizz_instances i \
         ON i.id = d.instance_id WHERE ($1 IS NULL OR i.tenant_id = $1) ORDER BY d.created_at, d.id"
    )))
    .bind(scope.tenant())
    .fetch_all(conn)
    .await?)
}

pub async fn delete_delivery_server(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM mailwizz_delivery_servers WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// What the last quota sync of one mapping came to.
pub struct SyncOutcome<'a> {
    pub status: &'a str,
    pub detail: &'a str,
    pub hourly_quota: Option<i64>,
    pub daily_quota: Option<i64>,
}

pub async fn record_sync(
    conn: &mut AnyConnection,
    id: &str,
    outcome: &SyncOutcome<'_>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE mailwizz_delivery_servers SET last_status = $1, last_detail = $2, last_hourly_quota = $3, \
         last_daily_quota = $4, last_sync_at = $5 WHERE id = $6",
    )
    .bind(outcome.status)
    .bind(outcome.detail)
    .bind(outcome.hourly_quota)
    .bind(outcome.daily_quota)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}
