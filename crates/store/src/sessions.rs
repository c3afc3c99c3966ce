//! Login sessions and their rotating refresh tokens.
//!
//! A session lives from login to logout (or expiry). Each refresh token is used once:
//! using it marks it and issues the next. Presenting a token that was already used means
//! it leaked, so the whole session is revoked (refresh-token reuse detection).

use ee_core::ids::new_id;
use sqlx::AnyConnection;

use crate::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

pub async fn create(
    conn: &mut AnyConnection,
    user_id: &str,
    expires_at: i64,
    ip: Option<&str>,
    user_agent: Option<&str>,
    now: i64,
) -> Result<Session> {
    let session = Session {
        id: new_id(),
        user_id: user_id.to_owned(),
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    sqlx::query(
        "INSERT INTO sessions (id, user_id, created_at, expires_at, ip_address, user_agent) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&session.id)
    .bind(user_id)
    .bind(now)
    .bind(expires_at)
    .bind(ip)
    .bind(user_agent)
    .execute(conn)
    .await?;
    Ok(session)
}

/// The session if it is neither revoked nor expired.
pub async fn get_live(conn: &mut AnyConnection, id: &str, now: i64) -> Result<Session> {
    sqlx::query_as(
        "SELECT id, user_id, created_at, expires_at, revoked_at FROM sessions \
         WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

pub async fn revoke(conn: &mut AnyConnection, id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Revokes every session of a user (deactivation, password change).
pub async fn revoke_all_for_user(conn: &mut AnyConnection, user_id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn add_refresh_token(
    conn: &mut AnyConnection,
    session_id: &str,
    token_hash: &str,
    expires_at: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(session_id)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was live and is now used: issue the next one in this session.
    Rotated { session_id: String, user_id: String },
    /// The token had been used before: its session is now revoked.
    Reused,
    /// Unknown, expired, or its session is over.
    Invalid,
}

/// Spends a refresh token. The `UPDATE … WHERE used_at IS NULL` is the one atomic step:
/// of two concurrent uses, exactly one wins.
pub async fn use_refresh_token(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: i64,
) -> Result<RefreshOutcome> {
    let spent: Option<String> = sqlx::query_scalar(
        "UPDATE refresh_tokens SET used_at = $1 \
         WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING session_id",
    )
    .bind(now)
    .bind(token_hash)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(session_id) = spent {
        return match get_live(conn, &session_id, now).await {
            Ok(session) => Ok(RefreshOutcome::Rotated {
                session_id,
                user_id: session.user_id,
            }),
            Err(StoreError::NotFound) => Ok(RefreshOutcome::Invalid),
            Err(e) => Err(e),
        };
    }
    let used_session: Option<(String, Option<i64>)> =
        sqlx::query_as("SELECT session_id, used_at FROM refresh_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&mut *conn)
            .await?;
    match used_session {
        Some((session_id, Some(_))) => {
            revoke(conn, &session_id, now).await?;
            Ok(RefreshOutcome::Reused)
        }
        _ => Ok(RefreshOutcome::Invalid),
    }
}

/// The session a refresh token belongs to, used or not (logout by refresh token).
pub async fn session_of_refresh_token(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT session_id FROM refresh_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(conn)
            .await?,
    )
}

/// Removes sessions that ended more than `keep_ms` ago, with their tokens.
pub async fn purge_ended(conn: &mut AnyConnection, now: i64, keep_ms: i64) -> Result<u64> {
    let cutoff = now - keep_ms;
    let done = sqlx::query(
        "DELETE FROM sessions WHERE expires_at < $1 OR (revoked_at IS NOT NULL AND revoked_at < $1)",
    )
    .bind(cutoff)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
