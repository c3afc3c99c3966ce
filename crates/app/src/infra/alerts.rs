//! Raising alerts (inside the transaction of what caused them) and sending them through
//! the job queue, one job per channel, so a channel that fails is retried alone.

use ee_connectors::alerts::{AlertChannels, AlertMessage, Channel};
pub use ee_store::alerts::Alert;
use ee_store::alerts::{self as store_alerts, NewAlert, Raised};
use ee_store::jobs::{self, NewJob};
use ee_store::{AnyConnection, Db, Job, StoreError};
use serde_json::{Value, json};

use crate::JobError;

/// Repeats of a cause within this window are merged into the first alert.
pub const MERGE_WINDOW_MS: i64 = 6 * 3_600_000;

pub const DELIVER: &str = "alert.deliver";
pub const SEND: &str = "alert.send";

pub struct AlertSpec<'a> {
    pub tenant_id: Option<&'a str>,
    pub cause: &'a str,
    pub severity: ee_core::alert::Severity,
    pub title: &'a str,
    pub message: &'a str,
}

/// Records the alert; a new one (not a merged repeat) is queued for sending.
pub async fn raise(
    conn: &mut AnyConnection,
    spec: AlertSpec<'_>,
    now: i64,
) -> Result<Raised, StoreError> {
    let raised = store_alerts::raise(
        &mut *conn,
        NewAlert {
            tenant_id: spec.tenant_id,
            cause: spec.cause,
            severity: spec.severity,
            title: spec.title,
            message: spec.message,
        },
        MERGE_WINDOW_MS,
        now,
    )
    .await?;
    if let Raised::New(alert) = &raised {
        let job = NewJob::new(DELIVER, json!({"alert_id": alert.id}), now)
            .unique_key(format!("{DELIVER}:{}", alert.id));
        jobs::enqueue(conn, &job, now).await?;
        tracing::warn!(cause = %alert.cause, title = %alert.title, "alert raised");
    }
    Ok(raised)
}

fn alert_id(job: &Job) -> Result<String, JobError> {
    let payload: Value = serde_json::from_str(&job.payload).map_err(|e| JobError(e.to_string()))?;
    payload["alert_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| JobError("payload has no alert_id".into()))
}

/// Fans an alert out to one send job per configured channel.
pub async fn deliver(
    db: &Db,
    channels: &AlertChannels,
    job: &Job,
    now: i64,
) -> Result<Value, JobError> {
    let id = alert_id(job)?;
    let mut conn = db
        .pool()
        .acquire()
        .await
        .map_err(|e| JobError(e.to_string()))?;
    let configured = channels.configured();
    for channel in &configured {
        let send = NewJob::new(
            SEND,
            json!({"alert_id": id, "channel": channel.as_str()}),
            now,
        )
        .unique_key(format!("{SEND}:{id}:{}", channel.as_str()))
        .max_attempts(8);
        jobs::enqueue(&mut conn, &send, now).await?;
    }
    if configured.is_empty() {
        return Ok(
            json!({"channels": [], "note": "no alert channel is configured; the alert is only in the database"}),
        );
    }
    Ok(json!({ "channels": configured }))
}

/// Sends one alert through one channel.
pub async fn send(
    db: &Db,
    channels: &AlertChannels,
    job: &Job,
    now: i64,
) -> Result<Value, JobError> {
    let id = alert_id(job)?;
    let payload: Value = serde_json::from_str(&job.payload).map_err(|e| JobError(e.to_string()))?;
    let channel = payload["channel"]
        .as_str()
        .and_then(Channel::parse)
        .ok_or_else(|| JobError("payload has no valid channel".into()))?;
    let mut conn = db
        .pool()
        .acquire()
        .await
        .map_err(|e| JobError(e.to_string()))?;
    let alert = store_alerts::get(&mut conn, &id).await?;
    let message = AlertMessage {
        id: alert.id.clone(),
        tenant_id: alert.tenant_id.clone(),
        severity: alert.severity,
        title: alert.title.clone(),
        message: alert.message.clone(),
        occurrences: alert.occurrences,
        first_at: ee_core::timefmt::to_rfc3339(alert.first_at),
    };
    channels
        .send(channel, &message, now / 1000)
        .await
        .map_err(|e| JobError(e.to_string()))?;
    store_alerts::mark_notified(&mut conn, &id, now).await?;
    Ok(json!({ "sent": channel.as_str() }))
}

/// Alerts the caller may see (a tenant's own; an administrator's, all), newest first: a
/// page of `limit` from `offset`.
pub async fn list(
    read: &mut crate::read::Read,
    limit: i64,
    offset: i64,
) -> Result<Vec<Alert>, crate::AppError> {
    let (conn, scope) = read.parts();
    Ok(store_alerts::list(conn, scope, limit, offset).await?)
}
