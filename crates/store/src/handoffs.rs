//! A campaign's messages handed to a transport, counted per minute: the ledger its
//! throttle reads when the delivery engine claims a batch.

use ee_core::campaign::{Throttle, frees_at, minute_of, window_start};
use sqlx::AnyConnection;

use crate::{Backend, Result};

/// What a reservation got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserved {
    /// How many of the messages asked for may be handed over now.
    pub granted: i64,
    /// When the rest may be tried again (the sliding hour next has room).
    pub retry_at: i64,
}

/// Reserves up to `want` hand-offs for the campaign within its throttle over the sliding
/// hour ending at `now`. Run it in a transaction: on PostgreSQL the campaign's row is
/// locked first, so two nodes reserving at once are counted one after the other (SQLite's
/// write transaction holds the whole database).
pub async fn reserve(
    conn: &mut AnyConnection,
    backend: Backend,
    campaign_id: &str,
    throttle: Throttle,
    want: i64,
    now: i64,
) -> Result<Reserved> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT id FROM campaigns WHERE id = $1 FOR UPDATE")
            .bind(campaign_id)
            .execute(&mut *conn)
            .await?;
    }
    let start = window_start(now);
    sqlx::query("DELETE FROM campaign_handoffs WHERE campaign_id = $1 AND minute < $2")
        .bind(campaign_id)
        .bind(start)
        .execute(&mut *conn)
        .await?;
    let mut buckets: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT minute, value FROM campaign_handoffs WHERE campaign_id = $1 ORDER BY minute",
    )
    .bind(campaign_id)
    .fetch_all(&mut *conn)
    .await?;
    let used: i64 = buckets.iter().map(|(_, n)| n).sum();
    let granted = throttle.allowance(used).min(want.max(0));
    if granted > 0 {
        let minute = minute_of(now);
        sqlx::query(
            "INSERT INTO campaign_handoffs (campaign_id, minute, value) VALUES ($1, $2, $3) \
             ON CONFLICT (campaign_id, minute) DO UPDATE SET value = campaign_handoffs.value + excluded.value",
        )
        .bind(campaign_id)
        .bind(minute)
        .bind(granted)
        .execute(&mut *conn)
        .await?;
        match buckets.last_mut() {
            Some((m, n)) if *m == minute => *n += granted,
            _ => buckets.push((minute, granted)),
        }
    }
    Ok(Reserved {
        granted,
        retry_at: frees_at(&buckets, now),
    })
}

/// The campaign's messages in the queue or being sent, and how many of them are due or
/// being sent (the others wait for the campaign's window or throttle): what the
/// dispatcher keeps small, so the queue holds a few batches of a campaign, never its whole
/// audience.
pub async fn backlog(conn: &mut AnyConnection, campaign_id: &str, now: i64) -> Result<(i64, i64)> {
    let (total, due): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN state = 'sending' OR next_attempt_at <= $2 \
         THEN 1 ELSE 0 END), 0) AS BIGINT) FROM messages \
         WHERE campaign_id = $1 AND state IN ('queued', 'sending')",
    )
    .bind(campaign_id)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok((total, due))
}
