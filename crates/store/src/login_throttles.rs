//! The failed-login counters the login throttle reads and writes (the rule itself is
//! `ee_core::login_throttle`).

use ee_core::login_throttle::State;
use sqlx::AnyConnection;

use crate::Result;

/// The state of a key; a key never seen is the default (no failures).
pub async fn get(conn: &mut AnyConnection, key: &str) -> Result<State> {
    let row: Option<(i64, i64, i64)> = sqlx::query_as(
        "SELECT failures, locked_until, last_failure FROM login_throttles WHERE key = $1",
    )
    .bind(key)
    .fetch_optional(conn)
    .await?;
    Ok(
        row.map_or_else(State::default, |(failures, locked_until, last_failure)| {
            State {
                failures,
                locked_until,
                last_failure,
            }
        }),
    )
}

/// The state of a key, its row held until the transaction ends: a failure counted on
/// two nodes at once is counted twice, not once (on PostgreSQL the upsert below locks the
/// row; a SQLite write transaction holds the whole database).
pub async fn get_for_update(conn: &mut AnyConnection, key: &str) -> Result<State> {
    sqlx::query(
        "INSERT INTO login_throttles (key, failures, locked_until, last_failure) \
         VALUES ($1, 0, 0, 0) ON CONFLICT (key) DO UPDATE SET failures = login_throttles.failures",
    )
    .bind(key)
    .execute(&mut *conn)
    .await?;
    get(conn, key).await
}

pub async fn put(conn: &mut AnyConnection, key: &str, state: State) -> Result<()> {
    sqlx::query(
        "INSERT INTO login_throttles (key, failures, locked_until, last_failure) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO UPDATE SET \
         failures = excluded.failures, locked_until = excluded.locked_until, \
         last_failure = excluded.last_failure",
    )
    .bind(key)
    .bind(state.failures)
    .bind(state.locked_until)
    .bind(state.last_failure)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn clear(conn: &mut AnyConnection, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM login_throttles WHERE key = $1")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets keys whose last failure is older than `before` (the housekeeping job).
pub async fn purge(conn: &mut AnyConnection, before: i64) -> Result<u64> {
    let done =
        sqlx::query("DELETE FROM login_throttles WHERE last_failure < $1 AND locked_until < $1")
            .bind(before)
            .execute(conn)
            .await?;
    Ok(done.rows_affected())
}
