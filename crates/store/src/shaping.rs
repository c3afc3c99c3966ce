//! Traffic-shaping states and the hit counts of counted rules (`ee_core::shaping`), shared
//! by the nodes.

use ee_core::ids::new_id;
use sqlx::AnyConnection;

use crate::{Result, Scope, StoreError};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct State {
    pub id: String,
    pub provider: String,
    /// `ip`, `relay`, `host`, `tenant` or `campaign` (`ee_core::shaping::Scope`).
    pub scope: String,
    pub subject: String,
    /// The IP's address or the relay's name, for people.
    pub subject_label: Option<String>,
    pub tenant_id: Option<String>,
    /// `ee_core::shaping::ActionKind`.
    pub action: String,
    pub value_count: Option<i64>,
    pub value_secs: Option<i64>,
    pub rule_key: String,
    pub rule_text: String,
    pub reply: String,
    /// How many times its rule fired while it held.
    pub fired: i64,
    pub started_at: i64,
    pub until_at: i64,
    pub lifted_at: Option<i64>,
    pub lifted_by: Option<String>,
}

impl State {
    pub fn is_active(&self, now: i64) -> bool {
        self.lifted_at.is_none() && self.until_at > now
    }
}

const COLUMNS: &str = "id, provider, scope, subject, subject_label, tenant_id, action, value_count, value_secs, \
     rule_key, rule_text, reply, fired, started_at, until_at, lifted_at, lifted_by";

/// What a rule's firing sets.
pub struct Firing<'a> {
    pub provider: &'a str,
    pub scope: &'a str,
    pub subject: &'a str,
    pub subject_label: Option<&'a str>,
    pub tenant_id: Option<&'a str>,
    pub action: &'a str,
    pub value_count: Option<i64>,
    pub value_secs: Option<i64>,
    pub rule_key: &'a str,
    pub rule_text: &'a str,
    pub reply: &'a str,
    pub until: i64,
}

/// Sets a state, or extends the one in force (its end is the later of the two; the rule
/// and reply are the latest). A state over or lifted starts again. Returns the state and
/// whether it was new (none was in force).
pub async fn fire(conn: &mut AnyConnection, f: &Firing<'_>, now: i64) -> Result<(State, bool)> {
    let row: State = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO shaping_states ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $14, $5, $6, $7, $8, $9, $10, $11, 1, $12, $13, NULL, NULL) \
         ON CONFLICT (provider, scope, subject, action) DO UPDATE SET \
           started_at = CASE WHEN shaping_states.lifted_at IS NULL AND shaping_states.until_at > $12 \
                        THEN shaping_states.started_at ELSE $12 END, \
           fired = CASE WHEN shaping_states.lifted_at IS NULL AND shaping_states.until_at > $12 \
                   THEN shaping_states.fired + 1 ELSE 1 END, \
           until_at = CASE WHEN shaping_states.lifted_at IS NULL AND shaping_states.until_at > $13 \
                      THEN shaping_states.until_at ELSE $13 END, \
           tenant_id = excluded.tenant_id, subject_label = excluded.subject_label, value_count = excluded.value_count, \
           value_secs = excluded.value_secs, rule_key = excluded.rule_key, \
           rule_text = excluded.rule_text, reply = excluded.reply, \
           lifted_at = NULL, lifted_by = NULL \
         RETURNING {COLUMNS}"
    )))
    .bind(new_id())
    .bind(f.provider)
    .bind(f.scope)
    .bind(f.subject)
    .bind(f.tenant_id)
    .bind(f.action)
    .bind(f.value_count)
    .bind(f.value_secs)
    .bind(f.rule_key)
    .bind(f.rule_text)
    .bind(f.reply)
    .bind(now)
    .bind(f.until)
    .bind(f.subject_label)
    .fetch_one(conn)
    .await?;
    let new = row.fired == 1;
    Ok((row, new))
}

/// Counts one reply a counted rule met on a path this hour; the count so far.
pub async fn hit(
    conn: &mut AnyConnection,
    rule_key: &str,
    provider: &str,
    scope: &str,
    subject: &str,
    hour: i64,
) -> Result<i64> {
    let (hits,): (i64,) = sqlx::query_as(
        "INSERT INTO shaping_hits (rule_key, provider, scope, subject, hour, hits) \
         VALUES ($1, $2, $3, $4, $5, 1) \
         ON CONFLICT (rule_key, provider, scope, subject, hour) \
         DO UPDATE SET hits = shaping_hits.hits + 1 RETURNING hits",
    )
    .bind(rule_key)
    .bind(provider)
    .bind(scope)
    .bind(subject)
    .bind(hour)
    .fetch_one(conn)
    .await?;
    Ok(hits)
}

/// The states in force at `now`, every tenant's (what the engine reads).
pub async fn active(conn: &mut AnyConnection, now: i64) -> Result<Vec<State>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM shaping_states WHERE until_at > $1 AND lifted_at IS NULL \
         ORDER BY until_at DESC, id"
    )))
    .bind(now)
    .fetch_all(conn)
    .await?)
}

/// What a caller may see: the states in force at `now`, or with `all` every state kept
/// (over and lifted ones too), newest first.
pub async fn list(
    conn: &mut AnyConnection,
    scope: Scope<'_>,
    now: i64,
    all: bool,
) -> Result<Vec<State>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM shaping_states WHERE ($1 IS NULL OR tenant_id = $1) \
         AND ($3 OR (until_at > $2 AND lifted_at IS NULL)) ORDER BY started_at DESC, id"
    )))
    .bind(scope.tenant())
    .bind(now)
    .bind(all)
    .fetch_all(conn)
    .await?)
}

pub async fn get(conn: &mut AnyConnection, id: &str, scope: Scope<'_>) -> Result<State> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM shaping_states WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)"
    )))
    .bind(id)
    .bind(scope.tenant())
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

/// Ends a state early; false when it was not in force.
pub async fn lift(conn: &mut AnyConnection, id: &str, by: &str, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE shaping_states SET lifted_at = $2, lifted_by = $3 \
         WHERE id = $1 AND lifted_at IS NULL AND until_at > $2",
    )
    .bind(id)
    .bind(now)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Makes due now the messages a state held back (deferred with `reason_prefix`, of the
/// tenant and campaign when given, due later): a lifted state lets them go at once.
pub async fn release_held(
    conn: &mut AnyConnection,
    tenant_id: Option<&str>,
    campaign_id: Option<&str>,
    reason_prefix: &str,
    now: i64,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE messages SET next_attempt_at = $1 WHERE state = 'deferred' \
         AND next_attempt_at > $1 AND ($2 IS NULL OR tenant_id = $2) \
         AND ($3 IS NULL OR campaign_id = $3) AND state_reason LIKE $4",
    )
    .bind(now)
    .bind(tenant_id)
    .bind(campaign_id)
    .bind(format!("{}%", reason_prefix.replace(['%', '_'], "")))
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Forgets hit counts of hours before `before_hour` and states over for a week (the
/// housekeeping job).
pub async fn purge(conn: &mut AnyConnection, before_hour: i64, now: i64) -> Result<u64> {
    let hits = sqlx::query("DELETE FROM shaping_hits WHERE hour < $1")
        .bind(before_hour)
        .execute(&mut *conn)
        .await?;
    let states = sqlx::query("DELETE FROM shaping_states WHERE until_at < $1")
        .bind(now - 7 * 86_400_000)
        .execute(conn)
        .await?;
    Ok(hits.rows_affected() + states.rows_affected())
}
