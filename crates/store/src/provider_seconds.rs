//! A provider's sends per second across IPs and nodes (its rate), counted in the database
//! so that every node sees the same count.

use sqlx::AnyConnection;

use crate::Result;

/// Takes one send of `provider`'s `second`; false (nothing taken) when `rate` are taken.
pub async fn reserve(
    conn: &mut AnyConnection,
    provider: &str,
    second: i64,
    rate: i64,
) -> Result<bool> {
    if rate <= 0 {
        return Ok(false);
    }
    let done = sqlx::query(
        "INSERT INTO provider_seconds (provider, second, sent) VALUES ($1, $2, 1) \
         ON CONFLICT (provider, second) DO UPDATE SET sent = provider_seconds.sent + 1 \
         WHERE provider_seconds.sent < $3",
    )
    .bind(provider)
    .bind(second)
    .bind(rate)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives back a send taken but not made (no IP could take the message).
pub async fn release(conn: &mut AnyConnection, provider: &str, second: i64) -> Result<()> {
    sqlx::query(
        "UPDATE provider_seconds SET sent = sent - 1 WHERE provider = $1 AND second = $2 AND sent > 0",
    )
    .bind(provider)
    .bind(second)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sends counted in a second, for a report or a test.
pub async fn sent(conn: &mut AnyConnection, provider: &str, second: i64) -> Result<i64> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT sent FROM provider_seconds WHERE provider = $1 AND second = $2")
            .bind(provider)
            .bind(second)
            .fetch_optional(conn)
            .await?;
    Ok(row.map_or(0, |r| r.0))
}

/// Each provider's most sends in one second from `since` (a second number) on; a
/// provider with none is absent.
pub async fn peaks_since(
    conn: &mut AnyConnection,
    since: i64,
) -> Result<std::collections::BTreeMap<String, i64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT provider, MAX(sent) FROM provider_seconds WHERE second >= $1 GROUP BY provider",
    )
    .bind(since)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Deletes the counts of seconds before `second`; returns how many.
pub async fn forget_before(conn: &mut AnyConnection, second: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM provider_seconds WHERE second < $1")
        .bind(second)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
