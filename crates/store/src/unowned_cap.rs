//! Rows strangers write (no tenant yet: unmatched feedback events, unattributed DMARC
//! reports) kept to the newest `keep`, so they cannot grow without bound.

use sqlx::AnyConnection;

use crate::Result;

/// Tables with `tenant_id`, `received_at` and `id` whose tenant-less rows are capped.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unowned {
    DeliveryEvents,
    DmarcReports,
}

impl Unowned {
    fn table(self) -> &'static str {
        match self {
            Self::DeliveryEvents => "delivery_events",
            Self::DmarcReports => "dmarc_reports",
        }
    }
}

/// Deletes all but the newest `keep` tenant-less rows of `rows`; how many were deleted.
pub(crate) async fn keep_newest(conn: &mut AnyConnection, rows: Unowned, keep: i64) -> Result<u64> {
    let table = rows.table();
    let edge: Option<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT received_at, id FROM {table} WHERE tenant_id IS NULL \
         ORDER BY received_at DESC, id DESC LIMIT 1 OFFSET $1"
    )))
    .bind(keep)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((at, id)) = edge else {
        return Ok(0);
    };
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {table} WHERE tenant_id IS NULL \
         AND (received_at < $1 OR (received_at = $1 AND id <= $2))"
    )))
    .bind(at)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
