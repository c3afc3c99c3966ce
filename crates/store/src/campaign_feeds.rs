//! RSS campaigns' feeds: when each is checked next and what its last check found, its
//! runs, the keys of the items it sent, and the audience a run goes to.

use ee_core::segment::Expr;
use sqlx::AnyConnection;

use crate::Result;
use crate::campaigns::audience_sql;
use crate::segments::{Param, bind_all};

/// A feed's state.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Feed {
    pub campaign_id: String,
    pub tenant_id: String,
    pub next_check_at: i64,
    pub last_checked_at: Option<i64>,
    pub last_run_at: Option<i64>,
    pub last_error: Option<String>,
    pub runs: i64,
}

const COLUMNS: &str =
    "campaign_id, tenant_id, next_check_at, last_checked_at, last_run_at, last_error, runs";

/// One run: the new items a check found, sent to the audience.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Run {
    pub run: i64,
    pub items: i64,
    pub recipients: i64,
    /// JSON array of the items' titles.
    pub titles: String,
    pub created_at: i64,
}

/// An item a run sent.
pub struct SentItem<'a> {
    pub key: &'a str,
    pub link: &'a str,
    pub published_at: Option<i64>,
}

/// The feed of a campaign that starts: checked at `next_check_at` (kept when it exists).
pub async fn ensure(
    conn: &mut AnyConnection,
    campaign_id: &str,
    tenant_id: &str,
    next_check_at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO campaign_feeds (campaign_id, tenant_id, next_check_at, runs) \
         VALUES ($1, $2, $3, 0) ON CONFLICT (campaign_id) DO NOTHING",
    )
    .bind(campaign_id)
    .bind(tenant_id)
    .bind(next_check_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut AnyConnection, campaign_id: &str) -> Result<Option<Feed>> {
    let sql = format!("SELECT {COLUMNS} FROM campaign_feeds WHERE campaign_id = $1");
    Ok(sqlx::query_as::<_, Feed>(sqlx::AssertSqlSafe(sql))
        .bind(campaign_id)
        .fetch_optional(conn)
        .await?)
}

/// Feeds due for a check whose campaign is sending, the longest waiting first.
pub async fn due(conn: &mut AnyConnection, now: i64, limit: i64) -> Result<Vec<Feed>> {
    let sql = format!(
        "SELECT {} FROM campaign_feeds f JOIN campaigns c ON c.id = f.campaign_id \
         WHERE f.next_check_at <= $1 AND c.type = 'rss' AND c.status = 'sending' \
         ORDER BY f.next_check_at, f.campaign_id LIMIT $2",
        COLUMNS
            .split(", ")
            .map(|c| format!("f.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(sqlx::query_as::<_, Feed>(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(limit)
        .fetch_all(conn)
        .await?)
}

/// Takes a due check (moves its next check on); false when another node took it first.
pub async fn claim(
    conn: &mut AnyConnection,
    campaign_id: &str,
    was_due_at: i64,
    next_check_at: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE campaign_feeds SET next_check_at = $1 WHERE campaign_id = $2 AND next_check_at = $3",
    )
    .bind(next_check_at)
    .bind(campaign_id)
    .bind(was_due_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What a check found: nothing wrong (`None`) or why the feed was not read.
pub async fn checked(
    conn: &mut AnyConnection,
    campaign_id: &str,
    error: Option<&str>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE campaign_feeds SET last_checked_at = $1, last_error = $2 WHERE campaign_id = $3",
    )
    .bind(now)
    .bind(error)
    .bind(campaign_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The keys of the items the campaign sent.
pub async fn sent_keys(conn: &mut AnyConnection, campaign_id: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar::<_, String>(
        "SELECT item_key FROM campaign_feed_items WHERE campaign_id = $1",
    )
    .bind(campaign_id)
    .fetch_all(conn)
    .await?)
}

/// Records a run and its items; the run's number.
pub async fn add_run(
    conn: &mut AnyConnection,
    campaign_id: &str,
    items: &[SentItem<'_>],
    titles: &str,
    now: i64,
) -> Result<i64> {
    let run: i64 = sqlx::query_scalar(
        "UPDATE campaign_feeds SET runs = runs + 1, last_run_at = $1 WHERE campaign_id = $2 \
         RETURNING runs",
    )
    .bind(now)
    .bind(campaign_id)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO campaign_feed_runs (campaign_id, run, items, recipients, titles, created_at) \
         VALUES ($1, $2, $3, 0, $4, $5)",
    )
    .bind(campaign_id)
    .bind(run)
    .bind(i64::try_from(items.len()).unwrap_or(i64::MAX))
    .bind(titles)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    for item in items {
        sqlx::query(
            "INSERT INTO campaign_feed_items (campaign_id, item_key, link, published_at, run) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (campaign_id, item_key) DO NOTHING",
        )
        .bind(campaign_id)
        .bind(item.key)
        .bind(item.link)
        .bind(item.published_at)
        .bind(run)
        .execute(&mut *conn)
        .await?;
    }
    Ok(run)
}

/// How many messages a run queued.
pub async fn set_recipients(
    conn: &mut AnyConnection,
    campaign_id: &str,
    run: i64,
    recipients: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE campaign_feed_runs SET recipients = $1 WHERE campaign_id = $2 AND run = $3",
    )
    .bind(recipients)
    .bind(campaign_id)
    .bind(run)
    .execute(conn)
    .await?;
    Ok(())
}

/// The campaign's runs, the latest first.
pub async fn runs(conn: &mut AnyConnection, campaign_id: &str, limit: i64) -> Result<Vec<Run>> {
    Ok(sqlx::query_as::<_, Run>(
        "SELECT run, items, recipients, titles, created_at FROM campaign_feed_runs \
         WHERE campaign_id = $1 ORDER BY run DESC LIMIT $2",
    )
    .bind(campaign_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// A contact a run goes to.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Recipient {
    pub id: String,
    pub email: String,
}

/// The audience now, in id order after `after`, `limit` at a time.
pub async fn audience_page(
    conn: &mut AnyConnection,
    tenant_id: &str,
    expr: Option<&Expr>,
    after: &str,
    limit: i64,
    now: i64,
) -> Result<Vec<Recipient>> {
    let (from, params) = audience_sql(expr, 3, now, crate::Backend::of(conn))?;
    let sql = format!("SELECT c.id, c.email {from} AND c.id > $1 ORDER BY c.id LIMIT $2");
    let q = sqlx::query_as::<_, Recipient>(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(limit)
        .bind(tenant_id);
    Ok(bind_all!(q, &params).fetch_all(conn).await?)
}

/// Forgets all but the newest `keep_items` item keys and `keep_runs` runs of each
/// campaign; (keys, runs) removed. A feed is read up to `ee_core::rss::MAX_ITEMS` items,
/// newest first as feeds list them, so a key with thousands of newer ones after it no
/// longer comes back; and every check reads the campaign's keys, which stay bounded so.
pub async fn prune(
    conn: &mut AnyConnection,
    keep_items: i64,
    keep_runs: i64,
) -> Result<(u64, u64)> {
    let items = sqlx::query(
        "DELETE FROM campaign_feed_items WHERE (campaign_id, item_key) IN \
         (SELECT campaign_id, item_key FROM (SELECT campaign_id, item_key, ROW_NUMBER() OVER \
         (PARTITION BY campaign_id ORDER BY run DESC, item_key) AS n FROM campaign_feed_items) ranked \
         WHERE n > $1)",
    )
    .bind(keep_items)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let runs = sqlx::query(
        "DELETE FROM campaign_feed_runs WHERE (campaign_id, run) IN \
         (SELECT campaign_id, run FROM (SELECT campaign_id, run, ROW_NUMBER() OVER \
         (PARTITION BY campaign_id ORDER BY run DESC) AS n FROM campaign_feed_runs) ranked \
         WHERE n > $1)",
    )
    .bind(keep_runs)
    .execute(conn)
    .await?
    .rows_affected();
    Ok((items, runs))
}
