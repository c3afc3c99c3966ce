//! The feedback sources' front halves: what each hands over (an accounting file's lines,
//! a DSN or ARF message, a webhook's bounce) turned into classified delivery events and
//! applied by `feedback::record`, with a report of what became of each.

use ee_core::feedback::{self as rules, DeliveryEvent, Reply, Source, verp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::feedback::{Applied, Incoming, Named, record};
use crate::read::Read;
use crate::{AppError, Services};
pub use ee_store::delivery_events::{DeliveryEventRow, EventFilter};
pub use ee_store::feedback_messages::KeptMessage;

/// What a batch of feedback did.
#[derive(Debug, Default, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct IntakeReport {
    /// Records read (lines of an accounting file, recipients of a report).
    pub read: u64,
    /// Events applied for the first time.
    pub applied: u64,
    /// Records seen before: nothing done again.
    pub duplicates: u64,
    /// Stored without a tenant (listed as unmatched).
    pub unmatched: u64,
    /// Records that are no delivery outcome (PowerMTA's receptions…).
    pub skipped: u64,
    /// Addresses now suppressed.
    pub suppressed: u64,
    /// Records that could not be read, with why.
    pub errors: Vec<IntakeError>,
    /// What each applied event was matched to and classified as.
    pub events: Vec<Applied>,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct IntakeError {
    /// The line (accounting file) or recipient index (report).
    pub at: u64,
    pub error: String,
}

/// At most this many applied events are listed in a report (the counts cover all).
const LISTED: usize = 100;

impl IntakeReport {
    fn add(&mut self, applied: Applied) {
        if applied.duplicate {
            self.duplicates += 1;
            return;
        }
        self.applied += 1;
        if applied.tenant_id.is_none() {
            self.unmatched += 1;
        }
        if applied.suppressed {
            self.suppressed += 1;
        }
        if self.events.len() < LISTED {
            self.events.push(applied);
        }
    }
}

/// Records of PowerMTA's accounting file posted to us (the whole file or its new lines,
/// header line first). `file` names it in the dedupe keys: the same file posted twice
/// applies each record once.
pub async fn accounting(
    services: &Services,
    tenant_id: Option<&str>,
    csv: &[u8],
    file: &str,
) -> Result<IntakeReport, AppError> {
    let read = ee_connectors::pmta_accounting::read(
        csv,
        0,
        None,
        &services.feedback.rules,
        &services.delivery.tracking_key,
    )
    .map_err(|e| invalid("body", e.to_string()))?;
    accounting_lines(services, tenant_id, read.lines, file).await
}

/// Applies the lines read from an accounting file; `file` names it in their dedupe keys
/// (with each line's offset and digest).
pub async fn accounting_lines(
    services: &Services,
    tenant_id: Option<&str>,
    lines: Vec<ee_connectors::pmta_accounting::Line>,
    file: &str,
) -> Result<IntakeReport, AppError> {
    let mut report = IntakeReport::default();
    for line in lines {
        report.read += 1;
        match line.result {
            Err(error) => report.errors.push(IntakeError {
                at: line.line,
                error,
            }),
            Ok(None) => report.skipped += 1,
            Ok(Some(event)) => {
                let incoming = Incoming {
                    event,
                    tenant_id: tenant_id.map(str::to_owned),
                    dedupe_key: Some(format!("acct:{file}:{}:{}", line.offset, line.digest)),
                    named: Named::Claimed,
                };
                report.add(record(services, incoming).await?);
            }
        }
    }
    Ok(report)
}

/// A DSN, an ARF report or a free-text bounce, as received (by the SMTP listener, a pipe
/// from the local MTA, an upload). `envelope_to` is the address it was sent to: a
/// per-message return path names the message.
///
/// Only what we signed names a message (and so its tenant, contact and IP): the return
/// path's tag, the `X-EE-Ref` header every message carries, or our own Message-ID quoted
/// back (which the message must carry exactly). A recipient the report names that is not
/// that message's recipient is kept as unmatched, never applied; so is everything of a
/// report that names no message of ours, unless the caller speaks for a tenant (its key or
/// its signature), whose own addresses it may then name. One report acts on one recipient
/// of one message at most (RFC 5965 §2).
pub async fn report_message(
    services: &Services,
    tenant_id: Option<&str>,
    raw: &[u8],
    envelope_to: Option<&str>,
    raw_ref: &str,
) -> Result<IntakeReport, AppError> {
    let read = read_report(
        &services.feedback.rules,
        &services.delivery.tracking_key,
        raw,
        envelope_to,
        raw_ref,
        services.clock.now_ms(),
    )
    .map_err(|e| {
        let mut errors = ee_core::ValidationErrors::default();
        errors.add("message", e.to_string());
        if e.is_over_limit() {
            AppError::OverLimit(errors)
        } else {
            AppError::Invalid(errors)
        }
    })?;
    // The same report received twice (a retried SMTP transaction, a re-upload) is
    // applied once: its bytes name it.
    let digest = {
        use sha2::Digest;
        hex::encode(&sha2::Sha256::digest(raw)[..12])
    };
    let mut report = IntakeReport::default();
    if read.report.kind == ee_mail::report::ReportKind::AutoReply {
        report.skipped += 1;
        return Ok(report);
    }
    let mut acted = false;
    for (index, event) in read.events.into_iter().enumerate() {
        report.read += 1;
        let incoming = if acted {
            // One recipient of one message per report: the rest are listed, not applied.
            Incoming {
                event: DeliveryEvent {
                    message_id: None,
                    ..event
                },
                tenant_id: None,
                dedupe_key: Some(format!("report:{digest}:{index}")),
                named: Named::Claimed,
            }
        } else {
            Incoming {
                event,
                tenant_id: tenant_id.map(str::to_owned),
                dedupe_key: Some(format!("report:{digest}:{index}")),
                named: read.named.clone(),
            }
        };
        let applied = record(services, incoming).await?;
        acted |= applied.tenant_id.is_some() && !applied.duplicate;
        report.add(applied);
    }
    Ok(report)
}

/// A report read: what it is, the message of ours it names and how, and its events.
#[derive(Debug, Clone)]
pub struct ReadReport {
    pub report: ee_mail::report::Report,
    pub named: Named,
    /// One per recipient it names (an abuse report that names none: one for the message's
    /// recipient, to be found from the message); none for an auto-reply.
    pub events: Vec<DeliveryEvent>,
}

/// The message of ours a report names: from the return path it came to, the reference
/// header or the return path of its copy of the original, else our Message-ID in it.
pub fn named_message(
    verp_key: &[u8],
    report: &ee_mail::report::Report,
    envelope_to: Option<&str>,
) -> (Option<String>, Named) {
    let signed = envelope_to
        .and_then(|to| verp::message_of(verp_key, to))
        .or_else(|| {
            report
                .original_reference
                .as_deref()
                .and_then(|r| verp::message_of_reference(verp_key, r))
        })
        .or_else(|| {
            report
                .original_return_path
                .as_deref()
                .and_then(|r| verp::message_of(verp_key, r))
        });
    if let Some(id) = signed {
        return (Some(id), Named::Signed);
    }
    match report
        .original_message_id
        .as_deref()
        .and_then(|m| verp::message_of_message_id(m).map(|id| (id, m)))
    {
        Some((id, header)) => (Some(id), Named::MessageId(header.to_owned())),
        None => (None, Named::Claimed),
    }
}

/// Reads a DSN, an ARF report, a free-text bounce or an auto-reply into its events: what
/// the listener, the upload route and `email-engine bounce classify` all read a message
/// with.
pub fn read_report(
    rules: &ee_core::feedback::Rules,
    verp_key: &[u8],
    raw: &[u8],
    envelope_to: Option<&str>,
    raw_ref: &str,
    now: i64,
) -> Result<ReadReport, ee_mail::report::ReportError> {
    let parsed = ee_mail::report::parse(raw)?;
    let (message_id, named) = named_message(verp_key, &parsed, envelope_to);
    let source = match parsed.kind {
        ee_mail::report::ReportKind::Arf => Source::Arf,
        _ => Source::Dsn,
    };
    let mut recipients = parsed.recipients.clone();
    if parsed.kind == ee_mail::report::ReportKind::Arf && recipients.is_empty() {
        // Redacted: the message it names tells whose it was.
        recipients.push(ee_mail::report::Recipient {
            address: String::new(),
            kind: match parsed.feedback_type.as_deref() {
                Some("not-spam") => ee_core::feedback::EventKind::Delivered,
                _ => ee_core::feedback::EventKind::Complaint,
            },
            reply: Reply {
                diagnostic: format!(
                    "feedback report: {}",
                    parsed.feedback_type.as_deref().unwrap_or("abuse")
                ),
                ..Reply::default()
            },
            remote_mta: None,
        });
    }
    let events = recipients
        .into_iter()
        .map(|r| {
            let mut event = crate::feedback::event(rules, source, r.kind, &r.address, r.reply, now);
            event.message_id = message_id.clone();
            event.campaign_id = parsed.original_campaign_id.clone();
            event.remote_mta = r.remote_mta;
            event.raw_ref = Some(raw_ref.to_owned());
            event
        })
        .collect();
    Ok(ReadReport {
        report: parsed,
        named,
        events,
    })
}

/// A bounce as a webhook reports it: the seed's `{email, type}` and what may come with it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ReportedBounce {
    /// The recipient's address.
    #[serde(alias = "recipient", alias = "subscriber_email")]
    pub email: Option<String>,
    /// hard, soft, block, complaint (or spam, abuse), internal, delivered, deferred.
    #[serde(alias = "bounce_type")]
    pub r#type: Option<String>,
    /// The SMTP reply code (550), as a number or a string of digits (`"550"`, as many
    /// senders write it).
    #[schema(value_type = Option<u16>)]
    pub code: Option<serde_json::Value>,
    /// The server's reply or the DSN's diagnostic.
    #[serde(alias = "message", alias = "reason")]
    pub diagnostic: Option<String>,
    /// Our message id, or the Message-ID we wrote.
    pub message_id: Option<String>,
    /// Our campaign id.
    pub campaign_id: Option<String>,
    /// When it happened (RFC 3339 or epoch seconds); now when absent.
    #[schema(value_type = Option<String>)]
    pub occurred_at: Option<serde_json::Value>,
}

/// A webhook's bounce (PowerMTA's or MailWizz's), checked field by field.
pub async fn reported(
    services: &Services,
    tenant_id: &str,
    source: Source,
    body: &ReportedBounce,
    dedupe_key: Option<String>,
) -> Result<Applied, AppError> {
    let event = reported_event(
        &services.feedback.rules,
        services.clock.now_ms(),
        source,
        body,
    )?;
    record(
        services,
        Incoming {
            event,
            tenant_id: Some(tenant_id.to_owned()),
            dedupe_key,
            named: Named::Claimed,
        },
    )
    .await
}

/// A webhook's bounce checked field by field and classified: pure, so that what a sender
/// writes can be tried in any shape (property tests) without a database.
pub fn reported_event(
    rules: &ee_core::feedback::Rules,
    now: i64,
    source: Source,
    body: &ReportedBounce,
) -> Result<DeliveryEvent, AppError> {
    let email = body
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| invalid("email", "is required"))?;
    ee_core::contacts::normalize(email, Default::default())
        .map_err(|_| invalid("email", "is not an email address"))?;
    let type_text = body
        .r#type
        .as_deref()
        .ok_or_else(|| invalid("type", "is required"))?;
    let (kind, claimed) = rules::reported_type(type_text).ok_or_else(|| {
        invalid(
            "type",
            "must be hard, soft, block, complaint, internal, delivered or deferred",
        )
    })?;
    let code = reply_code(body.code.as_ref())
        .map_err(|()| invalid("code", "must be an SMTP reply code (200 to 599)"))?;
    let occurred_at = match &body.occurred_at {
        None => now,
        Some(v) => time_of(v)
            .ok_or_else(|| invalid("occurred_at", "must be an RFC 3339 time or epoch seconds"))?,
    };
    let reply = Reply::from_smtp(code, body.diagnostic.as_deref().unwrap_or(""));
    let (class, category) = rules::classify_reported(rules, kind, claimed, &reply);
    let message_id = body
        .message_id
        .as_deref()
        .map(|m| verp::message_of_message_id(m).unwrap_or_else(|| m.trim().to_ascii_lowercase()));
    Ok(DeliveryEvent {
        kind,
        class,
        category,
        source,
        recipient: email.to_owned(),
        reply,
        message_id,
        campaign_id: body.campaign_id.clone(),
        ip_address: None,
        remote_mta: None,
        occurred_at,
        raw_ref: None,
    })
}

/// A reply code given as a number or as a string of digits; `Err` for anything else.
fn reply_code(value: Option<&serde_json::Value>) -> Result<Option<u16>, ()> {
    let code = match value {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|c| u16::try_from(c).ok()),
        Some(serde_json::Value::String(s)) => s.trim().parse::<u16>().ok(),
        Some(_) => None,
    };
    code.filter(|c| (200..600).contains(c)).map(Some).ok_or(())
}

fn time_of(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64().and_then(|s| s.checked_mul(1000)),
        serde_json::Value::String(s) => s
            .parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_millisecond())
            .or_else(|| s.parse::<i64>().ok().and_then(|s| s.checked_mul(1000))),
        _ => None,
    }
}

fn invalid(field: &str, message: impl Into<String>) -> AppError {
    let mut errors = ee_core::ValidationErrors::default();
    errors.add(field, message);
    AppError::Invalid(errors)
}

/// Delivery events, newest first, filtered (the filter's tenant: one a request named and
/// `Read::tenant` resolved, the caller's own, or for an administrator none or the
/// unmatched), strictly before the key-set cursor.
pub async fn events(
    read: &mut Read,
    filter: &EventFilter<'_>,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<DeliveryEventRow>, AppError> {
    Ok(ee_store::delivery_events::page(read.conn(), filter, before, limit).await?)
}

/// Mail the bounce listener kept because it could not read it as a report, newest first,
/// strictly before the key-set cursor (an administrator's read).
pub async fn unread(
    read: &mut Read,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<KeptMessage>, AppError> {
    Ok(ee_store::feedback_messages::page(read.conn(), before, limit).await?)
}
