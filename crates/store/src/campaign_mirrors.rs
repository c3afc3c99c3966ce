//! Campaigns mirrored into a tenant's MailWizz: per template (and, for a sequence, per
//! step), the list made there, the MailWizz campaign, and the figures last read back.

use sqlx::AnyConnection;

use crate::Result;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Mirror {
    pub campaign_id: String,
    /// A sequence's step (0 for a regular campaign).
    pub step: i64,
    pub template_id: String,
    pub language: String,
    pub instance_id: String,
    pub list_uid: Option<String>,
    pub campaign_uid: Option<String>,
    pub subscribers: i64,
    pub status: Option<String>,
    /// JSON: MailWizz's figures as last read.
    pub stats: String,
    pub synced_at: Option<i64>,
}

const COLUMNS: &str = "campaign_id, step, template_id, language, instance_id, list_uid, campaign_uid, \
    subscribers, status, stats, synced_at";

/// The mirror of a campaign's template at a step, made if it is not there yet.
pub async fn ensure(
    conn: &mut AnyConnection,
    campaign_id: &str,
    step: i64,
    template_id: &str,
    language: &str,
    instance_id: &str,
    now: i64,
) -> Result<Mirror> {
    sqlx::query(
        "INSERT INTO campaign_mirrors (campaign_id, template_id, language, instance_id, created_at, updated_at, step) \
         VALUES ($1, $2, $3, $4, $5, $5, $6) ON CONFLICT (campaign_id, step, template_id) DO NOTHING",
    )
    .bind(campaign_id)
    .bind(template_id)
    .bind(language)
    .bind(instance_id)
    .bind(now)
    .bind(step)
    .execute(&mut *conn)
    .await?;
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM campaign_mirrors WHERE campaign_id = $1 AND template_id = $2 AND step = $3"
    )))
    .bind(campaign_id)
    .bind(template_id)
    .bind(step)
    .fetch_one(conn)
    .await?)
}

/// A campaign's mirrors, in step and template order.
pub async fn of_campaign(conn: &mut AnyConnection, campaign_id: &str) -> Result<Vec<Mirror>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM campaign_mirrors WHERE campaign_id = $1 ORDER BY step, template_id"
    )))
    .bind(campaign_id)
    .fetch_all(conn)
    .await?)
}

/// What changed on a mirror: only the fields given are written.
#[derive(Debug, Default)]
pub struct Change<'a> {
    pub list_uid: Option<&'a str>,
    pub campaign_uid: Option<&'a str>,
    pub added_subscribers: i64,
    pub status: Option<&'a str>,
    pub stats: Option<&'a str>,
    pub synced: bool,
}

pub async fn update(
    conn: &mut AnyConnection,
    mirror: &Mirror,
    change: &Change<'_>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE campaign_mirrors SET list_uid = COALESCE($1, list_uid), \
         campaign_uid = COALESCE($2, campaign_uid), subscribers = subscribers + $3, \
         status = COALESCE($4, status), stats = COALESCE($5, stats), \
         synced_at = CASE WHEN $6 = 1 THEN $7 ELSE synced_at END, updated_at = $7 \
         WHERE campaign_id = $8 AND template_id = $9 AND step = $10",
    )
    .bind(change.list_uid)
    .bind(change.campaign_uid)
    .bind(change.added_subscribers)
    .bind(change.status)
    .bind(change.stats)
    .bind(i64::from(change.synced))
    .bind(now)
    .bind(&mirror.campaign_id)
    .bind(&mirror.template_id)
    .bind(mirror.step)
    .execute(conn)
    .await?;
    Ok(())
}

/// Campaigns whose MailWizz side disagrees with their own status: paused, auto-paused or
/// cancelled here while a mirror still sends there, or sending here while a mirror is
/// paused there (ids, at most `limit`).
pub async fn out_of_step(conn: &mut AnyConnection, limit: i64) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT c.id FROM campaigns c JOIN campaign_mirrors m ON m.campaign_id = c.id \
         WHERE m.campaign_uid IS NOT NULL AND \
         ((c.status IN ('paused', 'auto_paused', 'cancelled') AND m.status = 'sending') \
          OR (c.status = 'sending' AND m.status = 'paused')) \
         ORDER BY c.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Our campaign that a MailWizz campaign (by its uid) mirrors, within a tenant.
pub async fn campaign_of_uid(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign_uid: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT m.campaign_id FROM campaign_mirrors m JOIN campaigns c ON c.id = m.campaign_id \
         WHERE m.campaign_uid = $1 AND c.tenant_id = $2 LIMIT 1",
    )
    .bind(campaign_uid)
    .bind(tenant_id)
    .fetch_optional(conn)
    .await?)
}
