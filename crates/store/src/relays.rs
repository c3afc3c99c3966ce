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
    /// Its share when the tenant spreads its mail by weight (1 to 1000).
    pub weight: i64,
    /// At most this many messages an hour through it (none: no limit of its own).
    pub max_per_hour: Option<i64>,
    /// At most this many connections open to it at once, below the `relay` limit.
    pub max_connections: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, tenant_id, name, host, port, username, password_sealed, tls, powermta, weight, \
                       max_per_hour, max_connections, created_at, updated_at";

pub struct NewRelay<'a> {
    pub name: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub username: Option<&'a str>,
    pub password_sealed: Option<&'a str>,
    pub tls: &'a str,
    pub powermta: bool,
    pub weight: i64,
    pub max_per_hour: Option<i64>,
    pub max_connections: Option<i64>,
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
         powermta, weight, max_per_hour, max_connections) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11, $12, $13)",
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
    .bind(new.weight)
    .bind(new.max_per_hour)
    .bind(new.max_connections)
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
         updated_at = $7, powermta = $9, weight = $10, max_per_hour = $11, max_connections = $12 WHERE id = $8",
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
    .bind(relay.weight)
    .bind(relay.max_per_hour)
    .bind(relay.max_connections)
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

/// Takes one send of a relay's hour; false (nothing taken) when `limit` are taken.
pub async fn reserve_hour(
    conn: &mut AnyConnection,
    relay_id: &str,
    hour: i64,
    limit: i64,
) -> Result<bool> {
    if limit <= 0 {
        return Ok(false);
    }
    let done = sqlx::query(
        "INSERT INTO relay_hours (relay_id, hour, sent) VALUES ($1, $2, 1) \
         ON CONFLICT (relay_id, hour) DO UPDATE SET sent = relay_hours.sent + 1 \
         WHERE relay_hours.sent < $3",
    )
    .bind(relay_id)
    .bind(hour)
    .bind(limit)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives back a send of a relay's hour that did not reach it.
pub async fn release_hour(conn: &mut AnyConnection, relay_id: &str, hour: i64) -> Result<()> {
    sqlx::query(
        "UPDATE relay_hours SET sent = sent - 1 WHERE relay_id = $1 AND hour = $2 AND sent > 0",
    )
    .bind(relay_id)
    .bind(hour)
    .execute(conn)
    .await?;
    Ok(())
}
