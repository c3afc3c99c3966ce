//! Connections open at once on a sending path to a provider, counted across the nodes:
//! one row per connection slot, held by a node's connection until it closes (or until
//! the row's time runs out, if its node died).

use sqlx::AnyConnection;

use crate::Result;

/// Takes a free slot of `key` below `limit` for `holder` until `until`; its number, or
/// `None` when all are held.
pub async fn acquire(
    conn: &mut AnyConnection,
    key: &str,
    limit: i64,
    holder: &str,
    until: i64,
    now: i64,
) -> Result<Option<i64>> {
    for slot in 0..limit.max(1) {
        let taken = sqlx::query(
            "INSERT INTO connection_slots (key, slot, holder, until_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key, slot) DO UPDATE SET holder = excluded.holder, until_at = excluded.until_at \
             WHERE connection_slots.until_at < $5",
        )
        .bind(key)
        .bind(slot)
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        if taken.rows_affected() == 1 {
            return Ok(Some(slot));
        }
    }
    Ok(None)
}

/// Frees a slot (if `holder` still holds it).
pub async fn release(conn: &mut AnyConnection, key: &str, slot: i64, holder: &str) -> Result<()> {
    sqlx::query("DELETE FROM connection_slots WHERE key = $1 AND slot = $2 AND holder = $3")
        .bind(key)
        .bind(slot)
        .bind(holder)
        .execute(conn)
        .await?;
    Ok(())
}

/// Extends every slot of the holders whose name starts with `prefix` (a node's).
pub async fn renew(conn: &mut AnyConnection, prefix: &str, until: i64) -> Result<u64> {
    let escaped = prefix
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let pattern = format!("{escaped}%");
    let done =
        sqlx::query("UPDATE connection_slots SET until_at = $1 WHERE holder LIKE $2 ESCAPE '\\'")
            .bind(until)
            .bind(pattern)
            .execute(conn)
            .await?;
    Ok(done.rows_affected())
}

/// Slots of `key` held at `now`.
pub async fn held(conn: &mut AnyConnection, key: &str, now: i64) -> Result<i64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM connection_slots WHERE key = $1 AND until_at >= $2")
            .bind(key)
            .bind(now)
            .fetch_one(conn)
            .await?;
    Ok(n)
}
