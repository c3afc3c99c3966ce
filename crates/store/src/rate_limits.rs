//! The API rate limits' counters, shared by the nodes (the rule is
//! `ee_core::rate_limit::Gcra`; the statement below is that rule in SQL).

use ee_core::rate_limit::Gcra;
use sqlx::AnyConnection;

use crate::Result;

/// Counts one request against each key at `now`, all in one statement (the keys must
/// differ); for each key, in order, `None` when it may go or the milliseconds to wait.
/// A refused request leaves its key's state as it was.
pub async fn take(
    conn: &mut AnyConnection,
    now: i64,
    keys: &[(&str, Gcra)],
) -> Result<Vec<Option<i64>>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<String> = (0..keys.len())
        .map(|i| {
            let at = 2 + 3 * i;
            format!("(${at}, $1 + ${}, 0, $1, ${}, ${})", at + 1, at + 1, at + 2)
        })
        .collect();
    // SET reads the row as it was: `refused` and `tat` both see the old TAT.
    let sql = format!(
        "INSERT INTO rate_limits (key, tat, refused, seen_at, interval_ms, tolerance_ms) VALUES {} \
         ON CONFLICT (key) DO UPDATE SET \
           refused = CASE WHEN rate_limits.tat - excluded.seen_at > excluded.tolerance_ms THEN 1 ELSE 0 END, \
           tat = CASE WHEN rate_limits.tat - excluded.seen_at > excluded.tolerance_ms THEN rate_limits.tat \
                      WHEN rate_limits.tat < excluded.seen_at THEN excluded.tat \
                      ELSE rate_limits.tat + excluded.interval_ms END, \
           seen_at = excluded.seen_at, interval_ms = excluded.interval_ms, \
           tolerance_ms = excluded.tolerance_ms \
         RETURNING key, tat, refused, tolerance_ms",
        rows.join(", ")
    );
    let mut query =
        sqlx::query_as::<_, (String, i64, i64, i64)>(sqlx::AssertSqlSafe(sql)).bind(now);
    for (key, limit) in keys {
        query = query
            .bind(*key)
            .bind(limit.interval_ms)
            .bind(limit.tolerance_ms);
    }
    let answered = query.fetch_all(conn).await?;
    Ok(keys
        .iter()
        .map(|(key, _)| {
            answered
                .iter()
                .find(|(k, ..)| k == key)
                .and_then(|&(_, tat, refused, tolerance)| {
                    (refused != 0).then(|| (tat - now - tolerance).max(1))
                })
        })
        .collect())
}

/// `take` as the API nodes call it, once per request: on PostgreSQL in a transaction that
/// does not wait for its commit to reach the disk. A crash can forget the last moment's
/// counts (the limits then allow a little more once), which is no reason to make every
/// request wait for a flush of the write-ahead log: that cost a fifth of the API's
/// throughput under load.
pub async fn take_counted(
    db: &crate::Db,
    now: i64,
    keys: &[(&str, Gcra)],
) -> Result<Vec<Option<i64>>> {
    if db.backend() != crate::Backend::Postgres {
        let mut conn = db.acquire().await?;
        return take(&mut conn, now, keys).await;
    }
    let mut tx = db.pool().begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    let waits = take(&mut tx, now, keys).await?;
    tx.commit().await?;
    Ok(waits)
}

/// Forgets keys back at their full burst (their TAT has passed): the housekeeping job.
pub async fn purge(conn: &mut AnyConnection, now: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM rate_limits WHERE tat < $1")
        .bind(now)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
