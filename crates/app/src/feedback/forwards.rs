//! Forwarding bounces and complaints to the data source a contact came from: Scraper-Pro's
//! contract `POST <bounce_url> {email, type, source}`, HMAC-signed with the source's
//! secret (its scheme: timestamped by default, the body alone when the source is set so).
//! Queued in the same transaction as the event (`feedback_forwards`), sent by the
//! 2-minute retry-queue job with back-off until delivered or out of attempts.

use std::time::Duration;

use ee_core::feedback::Class;
use ee_core::jobs::{AfterFailure, Backoff, after_failure};
use ee_store::forwards;
pub use ee_store::forwards::Forward;
use ee_store::{AnyConnection, Scope, StoreError};
use serde::Serialize;
use serde_json::json;

use crate::{JobError, Services};

/// Attempts before a forward is dead (2, 4, 8 … minutes apart, at most 6 hours: about
/// two days in all).
pub const MAX_ATTEMPTS: i64 = 12;
pub const BACKOFF: Backoff = Backoff {
    base_ms: 2 * 60_000,
    max_ms: 6 * 3_600_000,
};
/// Forwards sent per run of the job.
const PER_RUN: i64 = 500;

/// What a forwarded event's `type` says; `None`: not forwarded (a block is about the
/// sender, not the address; a delivery is no news to the source).
fn forwarded_type(class: Class) -> Option<&'static str> {
    match class {
        Class::Hard => Some("hard"),
        Class::Soft => Some("soft"),
        Class::Complaint => Some("complaint"),
        _ => None,
    }
}

/// Queues the forward of an event about a contact to its data source, when that source
/// has a `bounce_url`. Returns the forward's id.
pub async fn enqueue(
    conn: &mut AnyConnection,
    tenant_id: &str,
    contact_id: &str,
    event_id: &str,
    recipient: &str,
    class: Class,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let Some(kind) = forwarded_type(class) else {
        return Ok(None);
    };
    let contact =
        match ee_store::contacts::get(&mut *conn, contact_id, Scope::Tenant(tenant_id)).await {
            Ok(c) => c,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
    let Some(source_id) = contact.source_id else {
        return Ok(None);
    };
    let source =
        match ee_store::sources::get(&mut *conn, &source_id, Scope::Tenant(tenant_id)).await {
            Ok(s) => s,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
    let Some(url) = bounce_url(&source.config) else {
        return Ok(None);
    };
    let body = json!({"email": recipient, "type": kind, "source": source.slug}).to_string();
    let id = forwards::insert(conn, tenant_id, &source.id, event_id, &url, &body, now).await?;
    Ok(Some(id))
}

/// A data source's `bounce_url` setting.
pub fn bounce_url(config: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(config)
        .ok()?
        .get("bounce_url")?
        .as_str()
        .map(str::to_owned)
}

#[derive(Debug, Default, Serialize)]
pub struct SendReport {
    pub attempted: u64,
    pub delivered: u64,
    pub failed: u64,
    pub dead: u64,
}

/// Sends every forward due now (the retry-queue job).
pub async fn send_due(services: &Services) -> Result<SendReport, JobError> {
    let now = services.clock.now_ms();
    let mut conn = services.db.pool().acquire().await?;
    let due = forwards::due(&mut conn, now, PER_RUN).await?;
    drop(conn);
    let mut report = SendReport::default();
    if due.is_empty() {
        return Ok(report);
    }
    let client = ee_connectors::outbound::http_client(&services.outbound, Duration::from_secs(15))
        .map_err(|e| JobError(format!("HTTP client: {e}")))?;
    for forward in due {
        report.attempted += 1;
        let outcome = attempt(services, &client, &forward).await;
        let now = services.clock.now_ms();
        let (delivered, status, error) = match &outcome {
            Ok(status) => (true, Some(*status), None),
            Err((status, error)) => (false, *status, Some(error.as_str())),
        };
        let next = if delivered {
            None
        } else {
            match after_failure(forward.attempts + 1, MAX_ATTEMPTS, now, BACKOFF) {
                AfterFailure::RetryAt(at) => Some(at),
                AfterFailure::DeadLetter => None,
            }
        };
        let mut conn = services.db.pool().acquire().await?;
        if forwards::record_attempt(&mut conn, &forward, delivered, status, error, next, now)
            .await?
        {
            match (delivered, next) {
                (true, _) => report.delivered += 1,
                (false, Some(_)) => report.failed += 1,
                (false, None) => report.dead += 1,
            }
        }
    }
    Ok(report)
}

/// One attempt: the HTTP status of a 2xx answer, or the status (if any) and why not.
async fn attempt(
    services: &Services,
    client: &ee_connectors::outbound::HttpClient,
    forward: &Forward,
) -> Result<i64, (Option<i64>, String)> {
    let fail = |e: String| (None, e);
    let mut conn = services
        .db
        .pool()
        .acquire()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let source = ee_store::sources::get(&mut conn, &forward.source_id, Scope::All)
        .await
        .map_err(|e| fail(format!("data source: {e}")))?;
    drop(conn);
    ee_connectors::outbound::check_url(&services.outbound, &forward.url)
        .map_err(|e| fail(format!("bounce_url: {e}")))?;
    let secret = source
        .secret_sealed
        .as_deref()
        .and_then(|sealed| {
            services
                .delivery
                .sealer
                .as_ref()?
                .open(crate::sources::SECRET_PURPOSE, sealed)
                .ok()
        })
        .ok_or_else(|| fail("the data source's secret cannot be opened".into()))?;
    let body = forward.body.as_bytes();
    let mut headers = vec![("x-ee-source", source.slug.clone())];
    if crate::sources::signs_body_only(&source.config) {
        headers.push(("signature", ee_core::signing::sign_body(&secret, body)));
    } else {
        let ts = services.clock.now_ms() / 1000;
        headers.push(("x-ee-timestamp", ts.to_string()));
        headers.push(("x-ee-signature", ee_core::signing::sign(&secret, ts, body)));
    }
    let status =
        ee_connectors::outbound::post_json(client, &forward.url, forward.body.clone(), &headers)
            .await
            .map_err(fail)?;
    if (200..300).contains(&status) {
        Ok(i64::from(status))
    } else {
        Err((Some(i64::from(status)), format!("answered {status}")))
    }
}

/// Makes a pending or dead forward the caller may see due now (audited); `NotFound`
/// otherwise.
pub async fn retry(w: &mut crate::write::Write, id: &str) -> Result<Forward, crate::AppError> {
    let now = w.now;
    let forward = forwards::retry_now(&mut w.tx, w.scope.as_deref(), id, now)
        .await?
        .ok_or(crate::AppError::NotFound("forward"))?;
    w.record(crate::audit::Change {
        action: "feedback_forward.retry",
        resource_type: "feedback_forward",
        resource_id: Some(id),
        tenant_id: Some(&forward.tenant_id),
        before: None,
        after: Some(json!({"state": "pending", "next_attempt_at": now})),
    })
    .await?;
    Ok(forward)
}

/// Forwards (of one tenant, or all: an administrator naming none; of a state), newest
/// first, strictly before the key-set cursor.
pub async fn page(
    read: &mut crate::read::Read,
    tenant_id: Option<&str>,
    state: Option<&str>,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<Forward>, crate::AppError> {
    Ok(forwards::page(read.conn(), tenant_id, state, before, limit).await?)
}
