//! Campaigns and their recipient ledger. The audience is copied into the ledger by one
//! `INSERT … SELECT` in the database (never loaded into memory); a recipient's message
//! state is read from its message, so the ledger rows stay small.

use ee_core::campaign::{CampaignKind, CampaignStatus, RecipientState};
use ee_core::ids::new_id;
use ee_core::segment::Expr;
use sqlx::AnyConnection;

use crate::segments::{Param, bind_all, compile};
use crate::{Result, Scope, StoreError};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Campaign {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    #[sqlx(rename = "type", try_from = "String")]
    pub kind: CampaignKind,
    #[sqlx(try_from = "String")]
    pub status: CampaignStatus,
    pub status_reason: Option<String>,
    pub template_id: Option<String>,
    pub trigger_event: Option<String>,
    /// JSON: `{"segments": [ids], "tags": [slugs], "all": bool}`.
    pub audience: String,
    /// JSON: throttle, overrides.
    pub settings: String,
    pub scheduled_at: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub audience_count: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, tenant_id, name, type, status, status_reason, template_id, trigger_event, \
    audience, settings, scheduled_at, started_at, finished_at, audience_count, created_at, updated_at";

/// What a new campaign is made of.
pub struct NewCampaign<'a> {
    pub tenant_id: &'a str,
    pub name: &'a str,
    pub kind: CampaignKind,
    pub template_id: Option<&'a str>,
    pub trigger_event: Option<&'a str>,
    pub audience: &'a str,
    pub settings: &'a str,
}

pub async fn insert(conn: &mut AnyConnection, new: NewCampaign<'_>, now: i64) -> Result<Campaign> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO campaigns (id, tenant_id, name, type, status, template_id, trigger_event, \
         audience, settings, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
    )
    .bind(&id)
    .bind(new.tenant_id)
    .bind(new.name)
    .bind(new.kind.as_str())
    .bind(CampaignStatus::Draft.as_str())
    .bind(new.template_id)
    .bind(new.trigger_event)
    .bind(new.audience)
    .bind(new.settings)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(|e| StoreError::unique(e, "a campaign of this tenant has this name already"))?;
    get(conn, &id, Scope::All).await
}

pub async fn get(conn: &mut AnyConnection, id: &str, scope: Scope<'_>) -> Result<Campaign> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM campaigns WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)"
    )))
    .bind(id)
    .bind(scope.tenant())
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

/// What a campaign list may be narrowed to.
#[derive(Debug, Default)]
pub struct CampaignFilter {
    pub status: Option<CampaignStatus>,
    pub kind: Option<CampaignKind>,
}

/// A page of campaigns, newest first, strictly before the key-set cursor.
pub async fn list(
    conn: &mut AnyConnection,
    scope: Scope<'_>,
    filter: &CampaignFilter,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<Campaign>> {
    let (t, id) = before.map_or((None, None), |(t, id)| (Some(t), Some(id)));
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM campaigns WHERE ($1 IS NULL OR tenant_id = $1) \
         AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR type = $3) \
         AND ($4 IS NULL OR created_at < $4 OR (created_at = $4 AND id < $5)) \
         ORDER BY created_at DESC, id DESC LIMIT $6"
    )))
    .bind(scope.tenant())
    .bind(filter.status.map(CampaignStatus::as_str))
    .bind(filter.kind.map(CampaignKind::as_str))
    .bind(t)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Writes a campaign's content (name, template, trigger, audience, settings, schedule).
pub async fn update(conn: &mut AnyConnection, c: &Campaign, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE campaigns SET name = $1, template_id = $2, trigger_event = $3, audience = $4, \
         settings = $5, scheduled_at = $6, updated_at = $7 WHERE id = $8",
    )
    .bind(&c.name)
    .bind(&c.template_id)
    .bind(&c.trigger_event)
    .bind(&c.audience)
    .bind(&c.settings)
    .bind(c.scheduled_at)
    .bind(now)
    .bind(&c.id)
    .execute(conn)
    .await
    .map_err(|e| StoreError::unique(e, "a campaign of this tenant has this name already"))?;
    Ok(())
}

/// Moves a campaign from `from` to `to` (with its reason); false when it was no longer in
/// `from` (another node moved it first).
pub async fn set_status(
    conn: &mut AnyConnection,
    id: &str,
    from: CampaignStatus,
    to: CampaignStatus,
    reason: Option<&str>,
    now: i64,
) -> Result<bool> {
    let started = (to == CampaignStatus::Sending).then_some(now);
    let finished = to.is_final().then_some(now);
    let done = sqlx::query(
        "UPDATE campaigns SET status = $1, status_reason = $2, updated_at = $3, \
         started_at = COALESCE(started_at, $4), finished_at = COALESCE(finished_at, $5) \
         WHERE id = $6 AND status = $7",
    )
    .bind(to.as_str())
    .bind(reason)
    .bind(now)
    .bind(started)
    .bind(finished)
    .bind(id)
    .bind(from.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_schedule(
    conn: &mut AnyConnection,
    id: &str,
    at: Option<i64>,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE campaigns SET scheduled_at = $1, updated_at = $2 WHERE id = $3")
        .bind(at)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes a campaign with its ledger (which has no foreign key: see `contacts::erase`).
pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM campaign_recipients WHERE campaign_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query("DELETE FROM campaigns WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Scheduled campaigns whose time has come, oldest first.
pub async fn due(conn: &mut AnyConnection, now: i64, limit: i64) -> Result<Vec<Campaign>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM campaigns WHERE status = 'scheduled' AND scheduled_at <= $1 \
         ORDER BY scheduled_at, id LIMIT $2"
    )))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Campaigns handing their recipients over, the least recently served first (so several
/// campaigns share the node fairly).
pub async fn sending(conn: &mut AnyConnection, limit: i64) -> Result<Vec<Campaign>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM campaigns WHERE status = 'sending' ORDER BY updated_at, id LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// The part of a query that chooses the audience among `contacts c`: the tenant's active
/// contacts, not suppressed, matching `expr` (all of them when `None`). Placeholders:
/// `$tenant` is `$first`, the expression's follow.
pub(crate) fn audience_sql(
    expr: Option<&Expr>,
    first: usize,
    now: i64,
    backend: crate::Backend,
) -> Result<(String, Vec<Param>)> {
    let (matching, params) = match expr {
        Some(e) => {
            let compiled = compile(e, first + 1, now, backend).map_err(StoreError::Conflict)?;
            (format!(" AND {}", compiled.sql), compiled.params)
        }
        None => (String::new(), Vec::new()),
    };
    Ok((
        format!(
            "FROM contacts c WHERE c.tenant_id = ${first} AND c.status = 'active' \
             AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.tenant_id = c.tenant_id \
             AND s.email_hash = c.email_hash){matching}"
        ),
        params,
    ))
}

/// How many contacts the audience holds now.
pub async fn count_audience(
    conn: &mut AnyConnection,
    tenant_id: &str,
    expr: Option<&Expr>,
    now: i64,
) -> Result<i64> {
    let (from, params) = audience_sql(expr, 1, now, crate::Backend::of(conn))?;
    let sql = format!("SELECT COUNT(*) {from}");
    let q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).bind(tenant_id);
    Ok(bind_all!(q, &params).fetch_one(conn).await?)
}

/// Copies the audience into the ledger in one statement, in key order; the number of
/// recipients.
pub async fn snapshot_audience(
    conn: &mut AnyConnection,
    campaign: &Campaign,
    expr: Option<&Expr>,
    now: i64,
) -> Result<i64> {
    let (from, params) = audience_sql(expr, 3, now, crate::Backend::of(conn))?;
    // PostgreSQL's semi-join hands contacts over in hash order: sorted, each index of the
    // ledger grows at its right edge instead of taking rows at random places, which
    // halves the copy of a large audience (the sort spills to disk past `work_mem`).
    // SQLite walks the tenant's contacts in row order, which is creation order and so id
    // order (UUIDv7): the same effect without a sort, whose temporary b-tree would grow
    // the process's memory with the audience.
    let order = if crate::bulk::is_sqlite(conn) {
        ""
    } else {
        " ORDER BY c.id"
    };
    let sql = format!(
        "INSERT INTO campaign_recipients (campaign_id, contact_id, tenant_id, state, created_at, updated_at) \
         SELECT $1, c.id, c.tenant_id, 'pending', $2, $2 {from}{order}"
    );
    let q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&campaign.id)
        .bind(now)
        .bind(&campaign.tenant_id);
    let done = bind_all!(q, &params).execute(&mut *conn).await?;
    let count = i64::try_from(done.rows_affected()).unwrap_or(i64::MAX);
    sqlx::query("UPDATE campaigns SET audience_count = $1 WHERE id = $2")
        .bind(count)
        .bind(&campaign.id)
        .execute(conn)
        .await?;
    Ok(count)
}

/// A recipient waiting for its message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    pub contact_id: String,
    pub email: String,
    /// How many times the recipient was made pending again after a failure.
    pub attempt: i64,
    /// Its A/B variant, once it has one.
    pub variant: Option<String>,
}

/// The next recipients to hand over, in a stable order.
/// `with_variant`: only those with a variant (an A/B test's share, before the winner).
pub async fn pending(
    conn: &mut AnyConnection,
    campaign_id: &str,
    limit: i64,
    with_variant: bool,
) -> Result<Vec<Pending>> {
    Ok(sqlx::query_as(
        "SELECT r.contact_id, c.email, r.attempt, r.variant FROM campaign_recipients r \
         JOIN contacts c ON c.id = r.contact_id \
         WHERE r.campaign_id = $1 AND r.state = 'pending' AND ($3 = 0 OR r.variant IS NOT NULL) \
         ORDER BY r.contact_id LIMIT $2",
    )
    .bind(campaign_id)
    .bind(limit)
    .bind(i64::from(with_variant))
    .fetch_all(conn)
    .await?)
}

/// The ids of a campaign's recipients after `after`, in contact order (to assign variants
/// a page at a time).
pub async fn recipient_ids(
    conn: &mut AnyConnection,
    campaign_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT contact_id FROM campaign_recipients WHERE campaign_id = $1 AND contact_id > $2 \
         ORDER BY contact_id LIMIT $3",
    )
    .bind(campaign_id)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Gives these recipients a variant.
pub async fn set_variant(
    conn: &mut AnyConnection,
    campaign_id: &str,
    variant: &str,
    contact_ids: &[String],
) -> Result<()> {
    for chunk in contact_ids.chunks(500) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "UPDATE campaign_recipients SET variant = $1 WHERE campaign_id = $2 AND contact_id IN ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(variant)
            .bind(campaign_id);
        for id in chunk {
            q = q.bind(id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Gives every waiting recipient without a variant this one (an A/B test's winner); how
/// many.
pub async fn set_variant_of_rest(
    conn: &mut AnyConnection,
    campaign_id: &str,
    variant: &str,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE campaign_recipients SET variant = $1 WHERE campaign_id = $2 AND variant IS NULL",
    )
    .bind(variant)
    .bind(campaign_id)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Per variant, how many of its recipients' messages had an event of this type (unique
/// opens, unique clicks): the A/B test's judge.
pub async fn variant_engagement(
    conn: &mut AnyConnection,
    campaign_id: &str,
    event_type: &str,
) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT r.variant, COUNT(DISTINCT r.contact_id) FROM campaign_recipients r \
         JOIN message_events e ON e.message_id = r.message_id \
         WHERE r.campaign_id = $1 AND r.variant IS NOT NULL AND e.event_type = $2 GROUP BY r.variant",
    )
    .bind(campaign_id)
    .bind(event_type)
    .fetch_all(conn)
    .await?)
}

/// When the last recipient with a variant was handed over.
pub async fn last_variant_queued_at(
    conn: &mut AnyConnection,
    campaign_id: &str,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT MAX(queued_at) FROM campaign_recipients WHERE campaign_id = $1 AND variant IS NOT NULL",
    )
    .bind(campaign_id)
    .fetch_one(conn)
    .await?)
}

/// Writes a campaign's settings (an A/B test's winner).
pub async fn set_settings(
    conn: &mut AnyConnection,
    id: &str,
    settings: &str,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE campaigns SET settings = $1, updated_at = $2 WHERE id = $3")
        .bind(settings)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records what became of a pending recipient: its message (`queued`), or why it has none
/// (`skipped`, `failed`).
pub async fn settle(
    conn: &mut AnyConnection,
    campaign_id: &str,
    contact_id: &str,
    state: RecipientState,
    message_id: Option<&str>,
    detail: Option<&str>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE campaign_recipients SET state = $1, message_id = $2, detail = $3, \
         queued_at = CASE WHEN $2 IS NULL THEN queued_at ELSE $4 END, updated_at = $4 \
         WHERE campaign_id = $5 AND contact_id = $6 AND state = 'pending'",
    )
    .bind(state.as_str())
    .bind(message_id)
    .bind(detail)
    .bind(now)
    .bind(campaign_id)
    .bind(contact_id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn has_pending(conn: &mut AnyConnection, campaign_id: &str) -> Result<bool> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT contact_id FROM campaign_recipients WHERE campaign_id = $1 AND state = 'pending' LIMIT 1",
    )
    .bind(campaign_id)
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// A cancelled campaign's recipients still waiting are cancelled, and its messages not
/// yet sent fail with the reason; how many of each.
pub async fn cancel_remaining(
    conn: &mut AnyConnection,
    campaign_id: &str,
    now: i64,
) -> Result<(u64, u64)> {
    let recipients = sqlx::query(
        "UPDATE campaign_recipients SET state = 'cancelled', updated_at = $1 \
         WHERE campaign_id = $2 AND state = 'pending'",
    )
    .bind(now)
    .bind(campaign_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let messages = sqlx::query(
        "UPDATE messages SET state = 'failed', state_reason = 'campaign cancelled', updated_at = $1 \
         WHERE campaign_id = $2 AND state IN ('queued', 'deferred')",
    )
    .bind(now)
    .bind(campaign_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok((recipients, messages))
}

/// One line of the ledger: the recipient, and its message if it has one.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Recipient {
    pub contact_id: String,
    pub email: Option<String>,
    pub variant: Option<String>,
    #[sqlx(try_from = "String")]
    pub state: RecipientState,
    pub detail: Option<String>,
    pub message_id: Option<String>,
    pub message_state: Option<String>,
    pub last_code: Option<i64>,
    pub last_reply: Option<String>,
    pub queued_at: Option<i64>,
    pub sent_at: Option<i64>,
    /// The later of the line's change and its message's (its state is the message's).
    pub updated_at: i64,
    /// When its waiting message is tried (a window's opening), and why it waits.
    pub next_attempt_at: Option<i64>,
    pub state_reason: Option<String>,
    /// The contact's own zone and country (its local time).
    pub time_zone: Option<String>,
    pub country: Option<String>,
}

/// The ledger's state of a recipient: its own before it has a message, its message's after.
const LEDGER_STATE: &str = "CASE WHEN m.state IS NULL THEN r.state \
    WHEN m.state IN ('queued', 'sending') THEN 'queued' \
    WHEN m.state = 'expired' THEN 'failed' WHEN m.state = 'suppressed' THEN 'skipped' \
    ELSE m.state END";

/// A page of the ledger in contact order after the cursor, optionally in one state.
pub async fn recipients(
    conn: &mut AnyConnection,
    campaign_id: &str,
    state: Option<RecipientState>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Recipient>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT r.contact_id, c.email, r.variant, {LEDGER_STATE} AS state, r.detail, r.message_id, \
         m.state AS message_state, m.last_code, m.last_reply, r.queued_at, m.sent_at, \
         CASE WHEN m.updated_at > r.updated_at THEN m.updated_at ELSE r.updated_at END AS updated_at, \
         CASE WHEN m.state IN ('queued', 'deferred') THEN m.next_attempt_at END AS next_attempt_at, \
         m.state_reason, c.time_zone, c.country \
         FROM campaign_recipients r LEFT JOIN messages m ON m.id = r.message_id \
         LEFT JOIN contacts c ON c.id = r.contact_id \
         WHERE r.campaign_id = $1 AND ($2 IS NULL OR r.contact_id > $2) \
         AND ($3 IS NULL OR {LEDGER_STATE} = $3) ORDER BY r.contact_id LIMIT $4"
    )))
    .bind(campaign_id)
    .bind(after)
    .bind(state.map(RecipientState::as_str))
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// How many recipients are in each ledger state.
pub async fn recipient_counts(
    conn: &mut AnyConnection,
    campaign_id: &str,
) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {LEDGER_STATE} AS state, COUNT(*) FROM campaign_recipients r \
         LEFT JOIN messages m ON m.id = r.message_id WHERE r.campaign_id = $1 GROUP BY 1"
    )))
    .bind(campaign_id)
    .fetch_all(conn)
    .await?)
}

/// An A/B test's recipients per variant and ledger state.
pub async fn variant_states(
    conn: &mut AnyConnection,
    campaign_id: &str,
) -> Result<Vec<(String, String, i64)>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT r.variant, {LEDGER_STATE} AS state, COUNT(*) FROM campaign_recipients r \
         LEFT JOIN messages m ON m.id = r.message_id \
         WHERE r.campaign_id = $1 AND r.variant IS NOT NULL GROUP BY 1, 2"
    )))
    .bind(campaign_id)
    .fetch_all(conn)
    .await?)
}

/// Failed recipients made pending again (their failed message stays as it was); how many.
pub async fn retry_failed(conn: &mut AnyConnection, campaign_id: &str, now: i64) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE campaign_recipients SET state = 'pending', message_id = NULL, detail = NULL, \
         queued_at = NULL, attempt = attempt + 1, updated_at = $1 WHERE campaign_id = $2 AND (state = 'failed' OR \
         message_id IN (SELECT id FROM messages WHERE campaign_id = $2 AND state IN ('failed', 'expired')))",
    )
    .bind(now)
    .bind(campaign_id)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Notes that the dispatcher served the campaign: the least recently served goes first.
pub async fn touch(conn: &mut AnyConnection, id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE campaigns SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

const HOUR_MS: i64 = 3_600_000;

/// Adds `n` to a campaign's counter `name` in the hour of `now`.
pub async fn count(
    conn: &mut AnyConnection,
    campaign_id: &str,
    name: &str,
    n: i64,
    now: i64,
) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO campaign_counters (campaign_id, name, hour, value) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (campaign_id, name, hour) DO UPDATE SET value = campaign_counters.value + excluded.value",
    )
    .bind(campaign_id)
    .bind(name)
    .bind(now - now.rem_euclid(HOUR_MS))
    .bind(n)
    .execute(conn)
    .await?;
    Ok(())
}

/// A campaign's counters over its whole life.
pub async fn totals(conn: &mut AnyConnection, campaign_id: &str) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT name, CAST(SUM(value) AS BIGINT) FROM campaign_counters WHERE campaign_id = $1 \
         GROUP BY name ORDER BY name",
    )
    .bind(campaign_id)
    .fetch_all(conn)
    .await?)
}

/// A campaign's counters hour by hour: (hour, name, value), oldest first.
pub async fn hourly(
    conn: &mut AnyConnection,
    campaign_id: &str,
) -> Result<Vec<(i64, String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT hour, name, value FROM campaign_counters WHERE campaign_id = $1 ORDER BY hour, name",
    )
    .bind(campaign_id)
    .fetch_all(conn)
    .await?)
}

/// Whether any message of the campaign is still waiting or being sent.
pub async fn in_flight(conn: &mut AnyConnection, campaign_id: &str) -> Result<bool> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT id FROM messages WHERE campaign_id = $1 AND state IN ('queued', 'sending', 'deferred') LIMIT 1",
    )
    .bind(campaign_id)
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}
