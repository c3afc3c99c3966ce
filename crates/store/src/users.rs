//! Accounts that log in: admins (all tenants) and tenant users.

use ee_core::auth::Role;
use ee_core::ids::new_id;
use sqlx::AnyConnection;

use crate::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct User {
    pub id: String,
    pub tenant_id: Option<String>,
    pub email: String,
    pub username: Option<String>,
    pub password_hash: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    #[sqlx(try_from = "crate::flag::Flag")]
    pub is_active: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

pub struct NewUser<'a> {
    pub tenant_id: Option<&'a str>,
    pub email: &'a str,
    pub username: Option<&'a str>,
    pub password_hash: &'a str,
    pub role: Role,
}

const COLUMNS: &str =
    "id, tenant_id, email, username, password_hash, role, is_active, created_at, updated_at";
const EMAIL_TAKEN: &str = "a user with this email already exists";

pub async fn insert(conn: &mut AnyConnection, new: NewUser<'_>, now: i64) -> Result<User> {
    let user = User {
        id: new_id(),
        tenant_id: new.tenant_id.map(str::to_owned),
        email: new.email.to_owned(),
        username: new.username.map(str::to_owned),
        password_hash: new.password_hash.to_owned(),
        role: new.role,
        is_active: true,
        created_at: now,
        updated_at: now,
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO users ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    )))
    .bind(&user.id)
    .bind(&user.tenant_id)
    .bind(&user.email)
    .bind(&user.username)
    .bind(&user.password_hash)
    .bind(user.role.as_str())
    .bind(i64::from(user.is_active))
    .bind(now)
    .bind(now)
    .execute(conn)
    .await
    .map_err(|e| StoreError::unique(e, EMAIL_TAKEN))?;
    Ok(user)
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<User> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

/// Looks a user up by e-mail, compared case-insensitively (stored lower-cased).
pub async fn get_by_email(conn: &mut AnyConnection, email: &str) -> Result<User> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE email = $1"
    )))
    .bind(email.to_lowercase())
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

pub async fn list(
    conn: &mut AnyConnection,
    tenant_id: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<User>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE ($1 IS NULL OR tenant_id = $1) \
         ORDER BY created_at, id LIMIT $2 OFFSET $3"
    )))
    .bind(tenant_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(conn)
    .await?)
}

pub async fn count(conn: &mut AnyConnection) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(conn)
        .await?)
}

/// Writes back every mutable field of `user`.
pub async fn update(conn: &mut AnyConnection, user: &User) -> Result<()> {
    let done = sqlx::query(
        "UPDATE users SET tenant_id = $1, email = $2, username = $3, password_hash = $4, \
         role = $5, is_active = $6, updated_at = $7 WHERE id = $8",
    )
    .bind(&user.tenant_id)
    .bind(&user.email)
    .bind(&user.username)
    .bind(&user.password_hash)
    .bind(user.role.as_str())
    .bind(i64::from(user.is_active))
    .bind(user.updated_at)
    .bind(&user.id)
    .execute(conn)
    .await
    .map_err(|e| StoreError::unique(e, EMAIL_TAKEN))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
