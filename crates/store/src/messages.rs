//! The message queue: one row per recipient message, claimed under a lease by the
//! delivery workers, with the events of its life.

use crate::Scope;
use ee_core::delivery::MessageKind;
use ee_core::ids::new_id;
use sqlx::AnyConnection;

use crate::{Result, StoreError, bulk};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Message {
    pub id: String,
    pub tenant_id: String,
    pub contact_id: Option<String>,
    pub campaign_id: Option<String>,
    pub template_id: Option<String>,
    #[sqlx(try_from = "String")]
    pub kind: MessageKind,
    pub idempotency_key: Option<String>,
    pub to_email: String,
    pub to_name: Option<String>,
    pub from_email: String,
    pub from_name: Option<String>,
    pub reply_to: Option<String>,
    pub subject: String,
    pub html: Option<String>,
    pub text_body: Option<String>,
    pub language: Option<String>,
    pub headers: String,
    #[sqlx(try_from = "crate::flag::Flag")]
    pub track_opens: bool,
    #[sqlx(try_from = "crate::flag::Flag")]
    pub track_clicks: bool,
    pub links: String,
    pub message_id_header: String,
    #[sqlx(try_from = "String")]
    pub state: ee_core::delivery::MessageState,
    pub state_reason: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub lease_token: Option<String>,
    pub lease_until: Option<i64>,
    pub ip_id: Option<String>,
    pub route: Option<String>,
    pub last_code: Option<i64>,
    pub last_reply: Option<String>,
    pub queued_at: i64,
    pub sent_at: Option<i64>,
    pub updated_at: i64,
    /// A campaign message's template version: its body is rendered from it when sent.
    pub template_version: Option<i64>,
}

impl Message {
    /// Whether the body is rendered when the message is sent (none is stored).
    pub fn renders_at_send(&self) -> bool {
        self.template_version.is_some() && self.html.is_none() && self.text_body.is_none()
    }
}

pub(crate) const COLUMNS: &str = "id, tenant_id, contact_id, campaign_id, template_id, kind, idempotency_key, to_email, \
    to_name, from_email, from_name, reply_to, subject, html, text_body, language, headers, track_opens, \
    track_clicks, links, message_id_header, state, state_reason, attempts, next_attempt_at, lease_token, \
    lease_until, ip_id, route, last_code, last_reply, queued_at, sent_at, updated_at, template_version";

/// What the queue needs to know of a new message; the rest starts empty.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    pub id: String,
    pub tenant_id: String,
    pub contact_id: Option<String>,
    pub campaign_id: Option<String>,
    pub template_id: Option<String>,
    pub kind: MessageKind,
    pub idempotency_key: Option<String>,
    pub to_email: String,
    pub to_name: Option<String>,
    pub from_email: String,
    pub from_name: Option<String>,
    pub reply_to: Option<String>,
    pub subject: String,
    pub html: Option<String>,
    pub text_body: Option<String>,
    pub language: Option<String>,
    pub headers: String,
    pub track_opens: bool,
    pub track_clicks: bool,
    pub message_id_header: String,
    /// `queued`, or `suppressed` when refused at queueing.
    pub state: String,
    pub state_reason: Option<String>,
    /// When it may first be sent (`send_at`, or now).
    pub not_before: i64,
    /// Set (with no html or text) when the body is rendered at send time.
    pub template_version: Option<i64>,
}

pub const IDEMPOTENCY_TAKEN: &str = "a message with this Idempotency-Key exists already";

pub async fn insert(conn: &mut AnyConnection, new: &NewMessage, now: i64) -> Result<()> {
    write(conn, new, now, "")
        .await
        .map_err(|e| StoreError::unique(e, IDEMPOTENCY_TAKEN))?;
    Ok(())
}

async fn write(
    conn: &mut AnyConnection,
    new: &NewMessage,
    now: i64,
    on_conflict: &str,
) -> std::result::Result<sqlx::any::AnyQueryResult, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO messages (id, tenant_id, contact_id, campaign_id, template_id, kind, idempotency_key, \
         to_email, to_name, from_email, from_name, reply_to, subject, html, text_body, language, headers, \
         track_opens, track_clicks, links, message_id_header, state, state_reason, attempts, next_attempt_at, \
         queued_at, updated_at, template_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
         $14, $15, $16, $17, $18, $19, '[]', $20, $21, $22, 0, $23, $24, $24, $25){on_conflict}"
    )))
    .bind(&new.id)
    .bind(&new.tenant_id)
    .bind(&new.contact_id)
    .bind(&new.campaign_id)
    .bind(&new.template_id)
    .bind(new.kind.as_str())
    .bind(&new.idempotency_key)
    .bind(&new.to_email)
    .bind(&new.to_name)
    .bind(&new.from_email)
    .bind(&new.from_name)
    .bind(&new.reply_to)
    .bind(&new.subject)
    .bind(&new.html)
    .bind(&new.text_body)
    .bind(&new.language)
    .bind(&new.headers)
    .bind(i64::from(new.track_opens))
    .bind(i64::from(new.track_clicks))
    .bind(&new.message_id_header)
    .bind(&new.state)
    .bind(&new.state_reason)
    .bind(new.not_before)
    .bind(now)
    .bind(new.template_version)
    .execute(conn)
    .await
}

pub async fn get(conn: &mut AnyConnection, id: &str, scope: Scope<'_>) -> Result<Message> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM messages WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)"
    )))
    .bind(id)
    .bind(scope.tenant())
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

pub async fn get_by_idempotency_key(
    conn: &mut AnyConnection,
    tenant_id: &str,
    key: &str,
) -> Result<Option<Message>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM messages WHERE tenant_id = $1 AND idempotency_key = $2"
    )))
    .bind(tenant_id)
    .bind(key)
    .fetch_optional(conn)
    .await?)
}

/// Messages to an address (any state but suppressed) queued since `since`: the frequency cap.
pub async fn count_recent_to(
    conn: &mut AnyConnection,
    tenant_id: &str,
    to_email: &str,
    since: i64,
) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM messages WHERE tenant_id = $1 AND to_email = $2 AND queued_at >= $3 \
         AND state <> 'suppressed' AND kind <> 'transactional'",
    )
    .bind(tenant_id)
    .bind(to_email)
    .bind(since)
    .fetch_one(conn)
    .await?;
    Ok(n)
}

/// A claimed message sent back to wait, unattempted: a campaign's throttle or sending
/// window holds it until `until`. Its attempt is not counted and no event is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub message_id: String,
    pub until: i64,
    pub reason: String,
}

/// Returns held messages to the queue, while the lease is ours.
pub async fn hold(
    conn: &mut AnyConnection,
    lease_token: &str,
    holds: &[Hold],
    now: i64,
) -> Result<()> {
    for h in holds {
        sqlx::query(
            "UPDATE messages SET state = 'queued', state_reason = $1, next_attempt_at = $2, \
             attempts = attempts - 1, lease_token = NULL, lease_until = NULL, updated_at = $3 \
             WHERE id = $4 AND lease_token = $5",
        )
        .bind(&h.reason)
        .bind(h.until)
        .bind(now)
        .bind(&h.message_id)
        .bind(lease_token)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The end of an attempt, written only while the lease is ours.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    pub state: ee_core::delivery::MessageState,
    pub reason: Option<&'a str>,
    pub code: Option<i64>,
    pub reply: Option<&'a str>,
    pub ip_id: Option<&'a str>,
    pub route: Option<&'a str>,
    pub next_attempt_at: Option<i64>,
    /// The links of the body as sent (click tokens point into them).
    pub links: Option<&'a str>,
    /// The attempt never reached a server (no quota): it does not count.
    pub uncounted: bool,
    /// Its TLS session (`ee_mail::smtp::TlsInfo::describe`), when it had one.
    pub tls: Option<&'a str>,
    /// What the recipient domain's MTA-STS policy in `testing` mode would have refused.
    pub mta_sts: Option<&'a str>,
}

pub async fn finish(
    conn: &mut AnyConnection,
    message: &Message,
    lease_token: &str,
    attempt: &Attempt<'_>,
    now: i64,
) -> Result<bool> {
    let sent_at = (attempt.state == ee_core::delivery::MessageState::Sent).then_some(now);
    let done = sqlx::query(
        "UPDATE messages SET state = $1, state_reason = $2, last_code = $3, last_reply = $4, \
         ip_id = COALESCE($5, ip_id), route = COALESCE($6, route), next_attempt_at = COALESCE($7, next_attempt_at), \
         links = COALESCE($8, links), sent_at = COALESCE($9, sent_at), lease_token = NULL, lease_until = NULL, \
         updated_at = $10, attempts = attempts - $13 WHERE id = $11 AND lease_token = $12",
    )
    .bind(attempt.state.as_str())
    .bind(attempt.reason)
    .bind(attempt.code)
    .bind(attempt.reply)
    .bind(attempt.ip_id)
    .bind(attempt.route)
    .bind(attempt.next_attempt_at)
    .bind(attempt.links)
    .bind(sent_at)
    .bind(now)
    .bind(&message.id)
    .bind(lease_token)
    .bind(i64::from(attempt.uncounted))
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 1 {
        add_event_to(
            conn,
            &message.id,
            &message.tenant_id,
            attempt.state.as_str(),
            (attempt.code, attempt.reply.or(attempt.reason)),
            (attempt.ip_id, attempt.route, attempt.tls, attempt.mta_sts),
            now,
        )
        .await?;
    }
    Ok(done.rows_affected() == 1)
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Event {
    pub id: String,
    pub event_type: String,
    pub code: Option<i64>,
    pub detail: Option<String>,
    pub ip_id: Option<String>,
    pub occurred_at: i64,
    /// The attempt's TLS session (`TLSv1_3 TLS13_AES_256_GCM_SHA384 verified`).
    pub tls: Option<String>,
    /// What an MTA-STS policy in testing mode would have refused.
    pub mta_sts: Option<String>,
    /// Where an attempt went: `direct`, or `relay:<name>`.
    pub route: Option<String>,
}

/// Whether the message has an event of this type already (a first open, a first click).
pub async fn has_event(
    conn: &mut AnyConnection,
    message_id: &str,
    event_type: &str,
) -> Result<bool> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT id FROM message_events WHERE message_id = $1 AND event_type = $2 LIMIT 1",
    )
    .bind(message_id)
    .bind(event_type)
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

pub async fn add_event(
    conn: &mut AnyConnection,
    message: &Message,
    event_type: &str,
    code: Option<i64>,
    detail: Option<&str>,
    ip_id: Option<&str>,
    now: i64,
) -> Result<()> {
    add_event_to(
        conn,
        &message.id,
        &message.tenant_id,
        event_type,
        (code, detail),
        (ip_id, None, None, None),
        now,
    )
    .await
}

/// An event of a message known by its id: its reply (code, detail) and where it went
/// (IP, route, TLS session).
async fn add_event_to(
    conn: &mut AnyConnection,
    message_id: &str,
    tenant_id: &str,
    event_type: &str,
    (code, detail): (Option<i64>, Option<&str>),
    (ip_id, route, tls, mta_sts): (Option<&str>, Option<&str>, Option<&str>, Option<&str>),
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO message_events (id, message_id, tenant_id, event_type, code, detail, ip_id, occurred_at, tls, \
         mta_sts, route) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(new_id())
    .bind(message_id)
    .bind(tenant_id)
    .bind(event_type)
    .bind(code)
    .bind(detail)
    .bind(ip_id)
    .bind(now)
    .bind(tls)
    .bind(mta_sts)
    .bind(route)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn events(conn: &mut AnyConnection, message_id: &str) -> Result<Vec<Event>> {
    Ok(sqlx::query_as(
        "SELECT id, event_type, code, detail, ip_id, occurred_at, tls, mta_sts, route FROM message_events \
         WHERE message_id = $1 ORDER BY occurred_at, id",
    )
    .bind(message_id)
    .fetch_all(conn)
    .await?)
}

/// Counts by state, for a tenant or all.
pub async fn counts_by_state(
    conn: &mut AnyConnection,
    scope: Scope<'_>,
) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT state, COUNT(*) FROM messages WHERE ($1 IS NULL OR tenant_id = $1) GROUP BY state ORDER BY state",
    )
    .bind(scope.tenant())
    .fetch_all(conn)
    .await?)
}

/// The queue's depth: messages waiting (queued, deferred) and in flight (sending), for a
/// tenant or all. Reads the partial indexes of waiting and leased messages only, so its
/// cost follows the backlog, not the history.
pub async fn backlog_counts(
    conn: &mut AnyConnection,
    scope: Scope<'_>,
) -> Result<Vec<(String, i64)>> {
    let mut rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT state, COUNT(*) FROM messages WHERE state IN ('queued', 'deferred') \
         AND ($1 IS NULL OR tenant_id = $1) GROUP BY state",
    )
    .bind(scope.tenant())
    .fetch_all(&mut *conn)
    .await?;
    let sending: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages WHERE state = 'sending' AND ($1 IS NULL OR tenant_id = $1)",
    )
    .bind(scope.tenant())
    .fetch_one(&mut *conn)
    .await?;
    rows.push(("sending".to_owned(), sending));
    Ok(rows)
}

/// Takes one send from an IP's quota for a UTC day and one from its hourly allowance
/// towards a provider, atomically; false (and nothing taken) when either is used up.
/// `daily_quota` `None` is unlimited.
pub async fn reserve_send(
    conn: &mut AnyConnection,
    ip_id: &str,
    day: i64,
    daily_quota: Option<i64>,
    provider: &str,
    hour: i64,
    hourly_limit: i64,
) -> Result<bool> {
    if daily_quota.is_some_and(|q| q <= 0) || hourly_limit <= 0 {
        return Ok(false);
    }
    let hourly = sqlx::query(
        "INSERT INTO ip_provider_hours (ip_id, provider, hour, sent) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (ip_id, provider, hour) DO UPDATE SET sent = ip_provider_hours.sent + 1 \
         WHERE ip_provider_hours.sent < $4",
    )
    .bind(ip_id)
    .bind(provider)
    .bind(hour)
    .bind(hourly_limit)
    .execute(&mut *conn)
    .await?;
    if hourly.rows_affected() == 0 {
        return Ok(false);
    }
    let daily = sqlx::query(
        "INSERT INTO ip_daily_stats (ip_id, day, sent, bounced, complained) VALUES ($1, $2, 1, 0, 0) \
         ON CONFLICT (ip_id, day) DO UPDATE SET sent = ip_daily_stats.sent + 1 \
         WHERE $3 IS NULL OR ip_daily_stats.sent < $3",
    )
    .bind(ip_id)
    .bind(day)
    .bind(daily_quota)
    .execute(&mut *conn)
    .await?;
    if daily.rows_affected() == 0 {
        release_hour(conn, ip_id, provider, hour).await?;
        return Ok(false);
    }
    Ok(true)
}

async fn release_hour(
    conn: &mut AnyConnection,
    ip_id: &str,
    provider: &str,
    hour: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE ip_provider_hours SET sent = sent - 1 WHERE ip_id = $1 AND provider = $2 AND hour = $3 AND sent > 0",
    )
    .bind(ip_id)
    .bind(provider)
    .bind(hour)
    .execute(conn)
    .await?;
    Ok(())
}

/// Gives back a reservation that was not used (the message could not be sent at all).
pub async fn release_send(
    conn: &mut AnyConnection,
    ip_id: &str,
    day: i64,
    provider: &str,
    hour: i64,
) -> Result<()> {
    release_hour(conn, ip_id, provider, hour).await?;
    sqlx::query(
        "UPDATE ip_daily_stats SET sent = sent - 1 WHERE ip_id = $1 AND day = $2 AND sent > 0",
    )
    .bind(ip_id)
    .bind(day)
    .execute(conn)
    .await?;
    Ok(())
}

/// A message accepted by the peer, for `finish_sent_many`.
pub struct Sent<'a> {
    pub message: &'a Message,
    pub code: i64,
    pub reply: &'a str,
    pub ip_id: Option<&'a str>,
    pub route: String,
    pub links: &'a str,
    pub tls: Option<&'a str>,
    pub mta_sts: Option<&'a str>,
}

/// Marks many messages sent at once, with their `sent` events and their contacts' `SENT`
/// timeline events, while the lease is ours; returns how many were marked. The bulk of a
/// batch goes this way: three statements instead of three per message.
pub async fn finish_sent_many(
    conn: &mut AnyConnection,
    lease_token: &str,
    sent: &[Sent<'_>],
    now: i64,
) -> Result<u64> {
    if sent.is_empty() {
        return Ok(0);
    }
    let rows: Vec<serde_json::Value> = sent
        .iter()
        .map(|s| serde_json::json!([s.message.id, s.code, s.reply, s.ip_id, s.route, s.links]))
        .collect();
    let sql = format!(
        "UPDATE messages SET state = 'sent', state_reason = NULL, last_code = CAST(value ->> 1 AS BIGINT), \
         last_reply = value ->> 2, ip_id = COALESCE(value ->> 3, messages.ip_id), route = value ->> 4, \
         links = value ->> 5, sent_at = $2, lease_token = NULL, lease_until = NULL, updated_at = $2 \
         FROM {} WHERE messages.id = value ->> 0 AND messages.lease_token = $3 RETURNING messages.id",
        bulk::rows(conn, "$1")
    );
    // Rarely, a lease was lost (another node took an expired one): events only for ours.
    let mine: std::collections::HashSet<String> =
        sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
            .bind(bulk::encode(&rows))
            .bind(now)
            .bind(lease_token)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    let events: Vec<serde_json::Value> = sent
        .iter()
        .filter(|s| mine.contains(&s.message.id))
        .map(|s| {
            let m = s.message;
            serde_json::json!([
                new_id(),
                m.id,
                m.tenant_id,
                s.code,
                s.reply,
                s.ip_id,
                s.tls,
                s.mta_sts,
                s.route
            ])
        })
        .collect();
    let sql = format!(
        "INSERT INTO message_events (id, message_id, tenant_id, event_type, code, detail, ip_id, occurred_at, tls, \
         mta_sts, route) SELECT value ->> 0, value ->> 1, value ->> 2, 'sent', CAST(value ->> 3 AS BIGINT), \
         value ->> 4, value ->> 5, $2, value ->> 6, value ->> 7, value ->> 8 FROM {}",
        bulk::rows(conn, "$1")
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(bulk::encode(&events))
        .bind(now)
        .execute(&mut *conn)
        .await?;
    // The contacts' timelines: SENT, as one message's recording writes it.
    let timeline: Vec<serde_json::Value> = sent
        .iter()
        .filter(|s| mine.contains(&s.message.id))
        .filter_map(|s| {
            let m = s.message;
            let detail =
                serde_json::json!({"message_id": m.id, "reply": s.reply, "ip_id": s.ip_id});
            Some(serde_json::json!([
                new_id(),
                m.tenant_id,
                m.contact_id.as_ref()?,
                m.campaign_id,
                detail.to_string()
            ]))
        })
        .collect();
    if !timeline.is_empty() {
        let sql = format!(
            "INSERT INTO contact_events (id, tenant_id, contact_id, event_type, campaign_id, metadata, occurred_at) \
             SELECT value ->> 0, value ->> 1, value ->> 2, 'SENT', value ->> 3, value ->> 4, $2 FROM {}",
            bulk::rows(conn, "$1")
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(bulk::encode(&timeline))
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(mine.len() as u64)
}

/// A message handed over as sent that its relay (or the receiving server, later) reports
/// bounced: its state becomes `bounced` with the reply. False when it was not `sent`.
pub async fn bounce_after_send(
    conn: &mut AnyConnection,
    id: &str,
    code: Option<i64>,
    reply: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE messages SET state = 'bounced', state_reason = 'bounced after it was handed over', \
         last_code = COALESCE($2, last_code), last_reply = $3, updated_at = $4 WHERE id = $1 AND state = 'sent'",
    )
    .bind(id)
    .bind(code)
    .bind(reply)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The latest message sent (or bounced) to an address in a tenant since a time: what a
/// bounce naming only the address refers to.
pub async fn latest_to(
    conn: &mut AnyConnection,
    tenant_id: &str,
    to_email: &str,
    since: i64,
) -> Result<Option<Message>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM messages WHERE tenant_id = $1 AND to_email = $2 AND queued_at >= $3 \
         AND state IN ('sent', 'bounced') ORDER BY queued_at DESC, id DESC LIMIT 1"
    )))
    .bind(tenant_id)
    .bind(to_email)
    .bind(since)
    .fetch_optional(conn)
    .await?)
}
