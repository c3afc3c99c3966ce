//! MailWizz instances of a tenant: API address, key sealed at rest, default list.

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
    pub is_primary: i64,
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
    get(conn, &id, None).await
}

pub async fn get(conn: &mut AnyConnection, id: &str, scope: Option<&str>) -> Result<Instance> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM mailwizz_instances WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)"
    )))
    .bind(id)
    .bind(scope)
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

pub async fn list(conn: &mut AnyConnection, scope: Option<&str>) -> Result<Vec<Instance>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM mailwizz_instances WHERE ($1 IS NULL OR tenant_id = $1) \
         ORDER BY tenant_id, is_primary DESC, name, id"
    )))
    .bind(scope)
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
    .bind(instance.is_primary)
    .bind(now)
    .bind(&instance.id)
    .execute(&mut *conn)
    .await?;
    if instance.is_primary != 0 {
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
