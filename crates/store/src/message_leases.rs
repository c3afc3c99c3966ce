//! A claimed batch's lease, renewed by its node's heartbeat while the batch is in hand
//! (`ee_jobs::delivery`): claims themselves are `messages::claim_due`.

use sqlx::AnyConnection;

use crate::Result;

/// Extends a batch's lease to `until` (its node's heartbeat), for what is still being
/// sent under it; the number of messages still held.
pub async fn extend_lease(conn: &mut AnyConnection, lease_token: &str, until: i64) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE messages SET lease_until = $1 WHERE lease_token = $2 AND state = 'sending'",
    )
    .bind(until)
    .bind(lease_token)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
