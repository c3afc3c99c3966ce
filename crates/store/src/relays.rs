//! SMTP relays (smarthosts) a tenant delivers through; passwords sealed at rest.

use crate::Scope;
use ee_core::ids::new_id;
use sqlx::AnyConnection;

use crate::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Relay {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub host: String,
    pub port: i64,
    pub username: Option<String>,
    pub password_sealed: Option<String>,
    /// `none`, `starttls` or `tls`.
    pub tls: String,
    /// PowerMTA: messages carry its directives (X-Virtual-MTA, X-Job).
    #[sqlx(try_from = "crate::flag::Flag")]
    pub powermta: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, tenant_id, name, host, port, username, password_sealed, tls, powermta, created_at, updated_at";

pub struct NewRelay<'a> {
    pub name: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub username: Option<&'a str>,
    pub password_sealed: Option<&'a str>,
    pub tls: &'a str,
    pub powermta: bool,
}

const NAME_TAKEN: &str = "this tenant has a relay with this name already";

pub async fn insert(
    conn: &mut AnyConnection,
    tenant_id: &str,
    new: &NewRelay<'_>,
    now: i64,
) -> Result<Relay> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO relays (id, tenant_id, name, host, port, username, password_sealed, tls, created_at, updated_at, \
         powermta) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)",
    )
    .bind(&id)
    .bind(tenant_id)
    .bind(new.name)
    .bind(new.host)
    .bind(i64::from(new.port))
    .bind(new.username)
    .bind(new.password_sealed)
    .bind(new.tls)
    .bind(now)
    .bind(i64::from(new.powermta))
    .execute(&mut *conn)
    .await
    .map_err(|e| StoreError::unique(e, NAME_TAKEN))?;
    get(conn, &id, Scope::All).await
}

pub async fn get(conn: &mut AnyConnection, id: &str, scope: Scope<'_>) -> Result<Relay> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM relays WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)"
    )))
    .bind(id)
    .bind(scope.tenant())
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

/// A tenant's relay by name or id.
pub async fn find(conn: &mut AnyConnection, tenant_id: &str, key: &str) -> Result<Relay> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM relays WHERE tenant_id = $1 AND (name = $2 OR id = $2)"
    )))
    .bind(tenant_id)
    .bind(key)
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

pub async fn list(conn: &mut AnyConnection, scope: Scope<'_>) -> Result<Vec<Relay>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM relays WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY name, id"
    )))
    .bind(scope.tenant())
    .fetch_all(conn)
    .await?)
}

pub async fn update(conn: &mut AnyConnection, relay: &Relay, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE relays SET name = $1, host = $2, port = $3, username = $4, password_sealed = $5, tls = $6, \
         updated_at = $7, powermta = $9 WHERE id = $8",
    )
    .bind(&relay.name)
    .bind(&relay.host)
    .bind(relay.port)
    .bind(&relay.username)
    .bind(&relay.password_sealed)
    .bind(&relay.tls)
    .bind(now)
    .bind(&relay.id)
    .bind(i64::from(relay.powermta))
    .execute(conn)
    .await
    .map_err(|e| StoreError::unique(e, NAME_TAKEN))?;
    Ok(())
}

pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM relays WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
