//! Autoresponder enrollments: who runs a campaign's sequence, at which step, and when the
//! next one is due. Contacts are enrolled by one `INSERT … SELECT` per trigger and pass,
//! never loaded into memory; leaving (unsubscribed, bounced, complained, suppressed, the
//! goal reached) is one `UPDATE` per pass.

use sqlx::AnyConnection;

use crate::Result;
use crate::segments::{Param, bind_all};

/// Who an enrollment pass takes: the tenant's active, unsuppressed contacts not enrolled
/// yet that meet `condition` (SQL over `contacts c`, placeholders from `$6`).
pub struct Enroll<'a> {
    pub campaign_id: &'a str,
    pub tenant_id: &'a str,
    /// `active`, or `excluded` for the members a segment trigger finds at the start.
    pub state: ee_core::campaign::EnrollmentState,
    /// When the first step is due.
    pub due: i64,
    pub condition: String,
    pub params: Vec<Param>,
}

/// The first placeholder an enrollment condition may use.
pub const FIRST_PARAM: usize = 6;

/// Enrolls the contacts `enroll` describes; how many.
pub async fn enroll(conn: &mut AnyConnection, enroll: &Enroll<'_>, now: i64) -> Result<u64> {
    let sql = format!(
        "INSERT INTO campaign_enrollments (campaign_id, contact_id, tenant_id, step, state, next_at, \
         enrolled_at, updated_at) \
         SELECT $1, c.id, c.tenant_id, 0, $3, $4, $5, $5 FROM contacts c \
         WHERE c.tenant_id = $2 AND c.status = 'active' \
         AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.tenant_id = c.tenant_id AND s.email_hash = c.email_hash) \
         AND NOT EXISTS (SELECT 1 FROM campaign_enrollments e WHERE e.campaign_id = $1 AND e.contact_id = c.id) \
         AND {}",
        enroll.condition
    );
    let q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(enroll.campaign_id)
        .bind(enroll.tenant_id)
        .bind(enroll.state.as_str())
        .bind(enroll.due)
        .bind(now);
    Ok(bind_all!(q, &enroll.params)
        .execute(conn)
        .await?
        .rows_affected())
}

/// The condition "created since `$first`".
pub fn created_since(first: usize) -> String {
    format!("c.created_at >= ${first}")
}

/// The condition "given the tag `$first` (or a descendant, `$first+1` being its prefix
/// with the slash) since `since`" (SQL: a comparison, `>= $n` or `RUN_ENDED`).
pub fn tagged_since(first: usize, since: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM contact_tags ct JOIN tags t ON t.id = ct.tag_id WHERE ct.contact_id = c.id \
         AND (t.slug = ${first} OR SUBSTR(t.slug, 1, LENGTH(${p})) = ${p}) AND ct.created_at {since})",
        p = first + 1,
    )
}

/// The condition "had the event `$first` since `since`" (`>= $n`, or `RUN_ENDED`).
pub fn event_since(first: usize, since: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM contact_events ev WHERE ev.tenant_id = c.tenant_id AND ev.contact_id = c.id \
         AND ev.event_type = ${first} AND ev.occurred_at {since})"
    )
}

/// In a condition for `rerun`: after the contact's last run of the sequence ended.
pub const RUN_ENDED: &str = "> campaign_enrollments.updated_at";

/// Contacts who completed the sequence and meet `enroll`'s condition again (written
/// against `RUN_ENDED`: the trigger fired since their run ended) run it again: the same
/// row, at the first step, its run raised; how many.
pub async fn rerun(conn: &mut AnyConnection, enroll: &Enroll<'_>, now: i64) -> Result<u64> {
    let sql = format!(
        "UPDATE campaign_enrollments SET step = 0, state = $3, run = run + 1, next_at = $4, detail = NULL, \
         enrolled_at = $5, updated_at = $5 \
         WHERE campaign_id = $1 AND state = 'completed' AND contact_id IN (SELECT c.id FROM contacts c \
         WHERE c.tenant_id = $2 AND c.status = 'active' \
         AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.tenant_id = c.tenant_id AND s.email_hash = c.email_hash) \
         AND c.id = campaign_enrollments.contact_id AND {})",
        enroll.condition
    );
    let q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(enroll.campaign_id)
        .bind(enroll.tenant_id)
        .bind(enroll.state.as_str())
        .bind(enroll.due)
        .bind(now);
    Ok(bind_all!(q, &enroll.params)
        .execute(conn)
        .await?
        .rows_affected())
}

/// Enrollments under way (active, or mirrored into MailWizz) whose contact may no longer
/// be mailed leave, with the reason (the contact's status, or `suppressed`); the contacts
/// who left.
pub async fn leave_unreachable(
    conn: &mut AnyConnection,
    campaign_id: &str,
    now: i64,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "UPDATE campaign_enrollments SET state = 'left', next_at = NULL, updated_at = $2, \
         detail = COALESCE((SELECT c.status FROM contacts c WHERE c.id = campaign_enrollments.contact_id \
             AND c.status <> 'active'), 'suppressed') \
         WHERE campaign_id = $1 AND state IN ('active', 'mirrored') AND (\
             EXISTS (SELECT 1 FROM contacts c WHERE c.id = campaign_enrollments.contact_id AND c.status <> 'active') \
             OR EXISTS (SELECT 1 FROM contacts c JOIN suppressions s ON s.tenant_id = c.tenant_id \
                 AND s.email_hash = c.email_hash WHERE c.id = campaign_enrollments.contact_id)) \
         RETURNING contact_id",
    )
    .bind(campaign_id)
    .bind(now)
    .fetch_all(conn)
    .await?)
}

/// Enrollments under way whose contact had the goal event since enrolling leave; the
/// contacts who left.
pub async fn leave_on_goal(
    conn: &mut AnyConnection,
    campaign_id: &str,
    event_type: &str,
    now: i64,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "UPDATE campaign_enrollments SET state = 'left', detail = 'goal reached', next_at = NULL, updated_at = $3 \
         WHERE campaign_id = $1 AND state IN ('active', 'mirrored') AND EXISTS (SELECT 1 FROM contact_events ev \
             WHERE ev.contact_id = campaign_enrollments.contact_id AND ev.event_type = $2 \
             AND ev.occurred_at >= campaign_enrollments.enrolled_at) \
         RETURNING contact_id",
    )
    .bind(campaign_id)
    .bind(event_type)
    .bind(now)
    .fetch_all(conn)
    .await?)
}

/// Enrollments that have not started yet (active, at their first step, due or not), for
/// a sequence MailWizz runs: the contacts it is handed, at most `limit`.
pub async fn fresh(conn: &mut AnyConnection, campaign_id: &str, limit: i64) -> Result<Vec<Due>> {
    Ok(sqlx::query_as(
        "SELECT e.contact_id, c.email, e.step, e.run FROM campaign_enrollments e JOIN contacts c ON c.id = e.contact_id \
         WHERE e.campaign_id = $1 AND e.state = 'active' AND e.step = 0 \
         ORDER BY e.enrolled_at, e.contact_id LIMIT $2",
    )
    .bind(campaign_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// An enrollment handed to MailWizz, which runs its steps from now on (`detail`: where).
pub async fn mark_mirrored(
    conn: &mut AnyConnection,
    campaign_id: &str,
    contact_id: &str,
    detail: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE campaign_enrollments SET state = 'mirrored', next_at = NULL, detail = $1, updated_at = $2 \
         WHERE campaign_id = $3 AND contact_id = $4 AND state = 'active'",
    )
    .bind(detail)
    .bind(now)
    .bind(campaign_id)
    .bind(contact_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// An enrollment whose next step is due.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    pub contact_id: String,
    pub email: String,
    pub step: i64,
    /// How many runs of the sequence the contact completed before this one.
    pub run: i64,
}

pub async fn due(
    conn: &mut AnyConnection,
    campaign_id: &str,
    now: i64,
    limit: i64,
) -> Result<Vec<Due>> {
    Ok(sqlx::query_as(
        "SELECT e.contact_id, c.email, e.step, e.run FROM campaign_enrollments e JOIN contacts c ON c.id = e.contact_id \
         WHERE e.campaign_id = $1 AND e.state = 'active' AND e.next_at <= $2 \
         ORDER BY e.next_at, e.contact_id LIMIT $3",
    )
    .bind(campaign_id)
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Where an enrollment goes after its step `from`.
pub struct Advance<'a> {
    pub step: i64,
    pub state: ee_core::campaign::EnrollmentState,
    pub next_at: Option<i64>,
    pub detail: Option<&'a str>,
}

/// Moves an enrollment on from step `from` (unless another node did first).
pub async fn advance(
    conn: &mut AnyConnection,
    campaign_id: &str,
    contact_id: &str,
    from: i64,
    to: &Advance<'_>,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE campaign_enrollments SET step = $1, state = $2, next_at = $3, detail = $4, updated_at = $5 \
         WHERE campaign_id = $6 AND contact_id = $7 AND step = $8 AND state = 'active'",
    )
    .bind(to.step)
    .bind(to.state.as_str())
    .bind(to.next_at)
    .bind(to.detail)
    .bind(now)
    .bind(campaign_id)
    .bind(contact_id)
    .bind(from)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One line of the enrollment list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Enrollment {
    pub contact_id: String,
    pub email: Option<String>,
    pub step: i64,
    pub run: i64,
    #[sqlx(try_from = "String")]
    pub state: ee_core::campaign::EnrollmentState,
    pub detail: Option<String>,
    pub next_at: Option<i64>,
    pub enrolled_at: i64,
    pub updated_at: i64,
}

/// A page of a campaign's enrollments in contact order after the cursor.
pub async fn list(
    conn: &mut AnyConnection,
    campaign_id: &str,
    state: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Enrollment>> {
    Ok(sqlx::query_as(
        "SELECT e.contact_id, c.email, e.step, e.run, e.state, e.detail, e.next_at, e.enrolled_at, e.updated_at \
         FROM campaign_enrollments e LEFT JOIN contacts c ON c.id = e.contact_id \
         WHERE e.campaign_id = $1 AND ($2 IS NULL OR e.state = $2) AND ($3 IS NULL OR e.contact_id > $3) \
         ORDER BY e.contact_id LIMIT $4",
    )
    .bind(campaign_id)
    .bind(state)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// How many enrollments are in each state.
pub async fn counts(conn: &mut AnyConnection, campaign_id: &str) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT state, COUNT(*) FROM campaign_enrollments WHERE campaign_id = $1 GROUP BY state ORDER BY state",
    )
    .bind(campaign_id)
    .fetch_all(conn)
    .await?)
}
