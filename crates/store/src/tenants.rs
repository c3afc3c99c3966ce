//! Tenants (brands).

use ee_core::ids::new_id;
use sqlx::AnyConnection;

use crate::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub slug: String,
    /// A JSON object.
    pub settings: String,
    #[sqlx(try_from = "crate::flag::Flag")]
    pub is_active: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

pub struct NewTenant<'a> {
    pub name: &'a str,
    pub slug: &'a str,
    pub settings: &'a str,
}

const COLUMNS: &str = "id, name, slug, settings, is_active, created_at, updated_at";

pub async fn insert(conn: &mut AnyConnection, new: NewTenant<'_>, now: i64) -> Result<Tenant> {
    let tenant = Tenant {
        id: new_id(),
        name: new.name.to_owned(),
        slug: new.slug.to_owned(),
        settings: new.settings.to_owned(),
        is_active: true,
        created_at: now,
        updated_at: now,
    };
    sqlx::query(
        "INSERT INTO tenants (id, name, slug, settings, is_active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&tenant.id)
    .bind(&tenant.name)
    .bind(&tenant.slug)
    .bind(&tenant.settings)
    .bind(i64::from(tenant.is_active))
    .bind(now)
    .bind(now)
    .execute(conn)
    .await
    .map_err(|e| StoreError::unique(e, "a tenant with this slug already exists"))?;
    Ok(tenant)
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Tenant> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tenants WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

/// A tenant named by its slug or its id (clients and the CLI use either).
pub async fn get_by_slug_or_id(conn: &mut AnyConnection, key: &str) -> Result<Tenant> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tenants WHERE slug = $1 OR id = $1"
    )))
    .bind(key)
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

/// Tenants in creation order, optionally only one (a tenant user's view).
pub async fn list(
    conn: &mut AnyConnection,
    scope: crate::Scope<'_>,
    limit: i64,
    offset: i64,
) -> Result<Vec<Tenant>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tenants WHERE ($1 IS NULL OR id = $1) \
         ORDER BY created_at, id LIMIT $2 OFFSET $3"
    )))
    .bind(scope.tenant())
    .bind(limit)
    .bind(offset)
    .fetch_all(conn)
    .await?)
}

/// Writes back every mutable field of `tenant`.
pub async fn update(conn: &mut AnyConnection, tenant: &Tenant) -> Result<()> {
    let done = sqlx::query(
        "UPDATE tenants SET name = $1, slug = $2, settings = $3, is_active = $4, updated_at = $5 \
         WHERE id = $6",
    )
    .bind(&tenant.name)
    .bind(&tenant.slug)
    .bind(&tenant.settings)
    .bind(i64::from(tenant.is_active))
    .bind(tenant.updated_at)
    .bind(&tenant.id)
    .execute(conn)
    .await
    .map_err(|e| StoreError::unique(e, "a tenant with this slug already exists"))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Deletes a tenant and, by cascade, everything it owns; its campaigns' ledger (which has
/// no foreign key: see `contacts::erase`) first.
pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query(
        "DELETE FROM campaign_recipients WHERE campaign_id IN (SELECT id FROM campaigns WHERE tenant_id = $1)",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    let done = sqlx::query("DELETE FROM tenants WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
