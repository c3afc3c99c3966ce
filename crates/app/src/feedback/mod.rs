//! Feedback applied: one use-case takes a classified delivery event from any source,
//! finds what it refers to (the message, its tenant, contact, campaign and IP), stores it
//! once (a record seen twice counts once) and makes its effects in one transaction: the
//! message's state and events, the contact's timeline and suppression, the IP's traffic
//! (which the warm-up safety rule reads) and the campaign's counters (which its auto-pause
//! reads). An event nothing could be matched to is stored for an operator, never dropped.
pub mod dmarc;
pub mod dmarc_view;
pub mod engagement;
pub mod forwards;
pub mod intake;
pub mod report_counts;
pub mod reports;
pub mod unsubscribe;

use std::sync::Arc;

use ee_core::contacts::SuppressionReason;
use ee_core::feedback::{Class, DeliveryEvent, EventKind, Rules, Source};
use ee_core::ids::new_id;
use ee_store::delivery_events::{self as events, DeliveryEventRow};
use ee_store::messages::{self, Message};
use ee_store::{AnyConnection, Scope, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{AppError, Services};

/// The classification rules of this installation (the shipped ones, after a deployment's
/// own file when it has one).
#[derive(Debug, Clone)]
pub struct FeedbackSettings {
    pub rules: Arc<Rules>,
    /// Where receivers send DMARC aggregate reports (`dmarc@bounces.brand.example`,
    /// lower case): the `rua` of every domain's DMARC record, an address the bounce
    /// listener takes. None: records name no `rua`, and no report is taken.
    pub dmarc_address: Option<String>,
}

impl Default for FeedbackSettings {
    fn default() -> Self {
        Self {
            rules: Arc::new(Rules::shipped()),
            dmarc_address: None,
        }
    }
}

/// How far back a bounce that names only its address is matched to a message.
const MATCH_WINDOW_MS: i64 = 7 * 86_400_000;

/// An event as a source hands it over.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub event: DeliveryEvent,
    /// The tenant the source's credentials belong to; `None` when only the event can
    /// tell (a DSN to a per-message return path, the accounting file).
    pub tenant_id: Option<String>,
    /// Identifies the source's record: the same key twice is applied once.
    pub dedupe_key: Option<String>,
    /// How the event's `message_id` is known.
    pub named: Named,
}

/// How an event names its message, and so how far it is believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    /// By what we signed (a return path's tag, the `X-EE-Ref` header): that message, to
    /// its own recipient, or nothing (unmatched).
    Signed,
    /// By our Message-ID quoted back: the message must carry exactly this one (with its
    /// unguessable id, only who saw the message knows it); else nothing.
    MessageId(String),
    /// By the word of a source that speaks for its tenant (its key, its signature, our
    /// own PowerMTA's file): tried first, then the latest message to the address in
    /// that tenant.
    Claimed,
}

/// What applying an event did.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct Applied {
    /// The stored event's id.
    pub id: String,
    /// The record was seen before: nothing was done again.
    pub duplicate: bool,
    pub tenant_id: Option<String>,
    /// The message it was matched to.
    pub message_id: Option<String>,
    #[schema(value_type = String)]
    pub class: Class,
    #[schema(value_type = String)]
    pub category: ee_core::feedback::Category,
    /// The address is now suppressed (a hard bounce, a complaint, too many soft ones).
    pub suppressed: bool,
    /// Queued to be forwarded to the contact's data source (its `bounce_url`).
    pub forwarded: bool,
}

/// Applies one event in its own transaction.
pub async fn record(services: &Services, incoming: Incoming) -> Result<Applied, AppError> {
    let mut tx = services.db.begin().await?;
    let applied = apply(&mut tx, services, incoming).await?;
    tx.commit().await?;
    Ok(applied)
}

/// Where an event's message stands when it is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recorded {
    /// Reported from outside (a bounce, a complaint, a webhook): the message's state,
    /// events and counter follow from it.
    Not,
    /// The delivery engine's own transport was refused and already set the message's
    /// state, events and counter: only the rest follows.
    OnMessage,
}

/// Applies one event reported from outside, within the caller's transaction.
pub async fn apply(
    conn: &mut AnyConnection,
    services: &Services,
    incoming: Incoming,
) -> Result<Applied, AppError> {
    apply_as(conn, services, incoming, Recorded::Not).await
}

/// Applies the refusal our own SMTP session met, within the caller's transaction (the
/// delivery engine has recorded it on the message already).
pub async fn apply_own_refusal(
    conn: &mut AnyConnection,
    services: &Services,
    incoming: Incoming,
) -> Result<Applied, AppError> {
    apply_as(conn, services, incoming, Recorded::OnMessage).await
}

async fn apply_as(
    conn: &mut AnyConnection,
    services: &Services,
    incoming: Incoming,
    recorded: Recorded,
) -> Result<Applied, AppError> {
    let Incoming {
        event,
        tenant_id,
        dedupe_key,
        named,
    } = incoming;
    let now = services.clock.now_ms();
    let mut recipient = ee_core::contacts::normalize(&event.recipient, Default::default())
        .unwrap_or_else(|_| event.recipient.trim().to_ascii_lowercase());
    let message = match find_message(conn, &event, tenant_id.as_deref(), &recipient, &named).await?
    {
        Found::Message(m) => Some(*m),
        Found::Nothing => None,
        Found::Unmatched => return store_unmatched(conn, event, recipient, dedupe_key, now).await,
    };
    if let Some(m) = &message
        && recipient.is_empty()
    {
        // A report that redacts the address: the message we signed tells whose it was.
        recipient = m.to_email.to_ascii_lowercase();
    }
    // No message and no tenant (a record of mail our PowerMTA sent for MailWizz): the
    // sending IP tells whose it is. Only our own MTA's records say which IP sent: what a
    // report's writer says (ARF's `Source-IP`) chooses nothing.
    let ip_tenant = match (&message, &tenant_id, &event.ip_address) {
        (None, None, Some(address)) if event.source == Source::PmtaAccounting => {
            match ee_store::ips::get_by_address(&mut *conn, address).await {
                Ok(ip) => ip.tenant_id,
                Err(StoreError::NotFound) => None,
                Err(e) => return Err(e.into()),
            }
        }
        _ => None,
    };
    let tenant_id = message
        .as_ref()
        .map(|m| m.tenant_id.clone())
        .or(tenant_id)
        .or(ip_tenant);
    let contact_id = match (&message, &tenant_id) {
        (Some(m), _) if m.contact_id.is_some() => m.contact_id.clone(),
        (_, Some(t)) => ee_store::contacts::get_by_email(&mut *conn, t, &recipient)
            .await?
            .map(|c| c.id),
        _ => None,
    };
    let campaign_id = match (&message, &tenant_id, &event.campaign_id) {
        (Some(m), _, _) => m.campaign_id.clone(),
        (None, Some(t), Some(c)) => ee_store::campaigns::get(&mut *conn, c, Scope::Tenant(t))
            .await
            .ok()
            .map(|c| c.id),
        _ => None,
    };
    let ip = find_ip(conn, &event, message.as_ref(), tenant_id.as_deref()).await?;
    let row = DeliveryEventRow {
        tenant_id: tenant_id.clone(),
        message_id: message.as_ref().map(|m| m.id.clone()),
        campaign_id: campaign_id.clone(),
        contact_id: contact_id.clone(),
        ip_id: ip.as_ref().map(|i| i.id.clone()),
        ..row_of(&event, recipient.clone(), dedupe_key, now)
    };
    let mut applied = Applied {
        id: row.id.clone(),
        duplicate: false,
        tenant_id: tenant_id.clone(),
        message_id: row.message_id.clone(),
        class: event.class,
        category: event.category,
        suppressed: false,
        forwarded: false,
    };
    if !events::insert(&mut *conn, &row).await? {
        applied.duplicate = true;
        return Ok(applied);
    }
    let Some(tenant_id) = tenant_id else {
        return Ok(applied);
    };
    let detail = serde_json::json!({
        "message_id": row.message_id,
        "class": event.class,
        "category": event.category,
        "source": event.source,
        "reply": event.reply.diagnostic,
        "status": event.reply.status,
    });
    if let Some(message) = &message
        && recorded == Recorded::Not
    {
        on_message(conn, message, &event, &detail, now).await?;
    }
    // A campaign's bounce class, for its own messages (a campaign mirrored in MailWizz
    // has its figures read back from there: counting its webhook too would count twice).
    if message.is_some()
        && event.kind == EventKind::Bounced
        && let Some(campaign) = &campaign_id
    {
        ee_store::campaigns::count(&mut *conn, campaign, report_name(event.class), 1, now).await?;
    }
    applied.suppressed = on_contact(
        conn,
        &tenant_id,
        &recipient,
        contact_id.as_deref(),
        campaign_id.as_deref(),
        &event,
        &detail,
        now,
    )
    .await?;
    let key = match &message {
        Some(m) => crate::feedback::report_counts::key_of_message(
            m,
            row.ip_id.as_deref(),
            event.occurred_at,
        ),
        None => crate::feedback::report_counts::key_of_recipient(
            &tenant_id,
            &recipient,
            row.ip_id.as_deref(),
            campaign_id.as_deref(),
            event.occurred_at,
        ),
    };
    let domain = key.domain.clone();
    let mut counts: Vec<(ee_store::report_counters::CounterKey, String, i64)> = Vec::new();
    match event.kind {
        EventKind::Bounced => {
            counts.push((key.clone(), report_name(event.class).into(), 1));
            counts.push((
                key.clone(),
                format!(
                    "{}{}",
                    crate::feedback::report_counts::CATEGORY,
                    event.category
                ),
                1,
            ));
            if recorded == Recorded::OnMessage {
                // Refused during our own SMTP session: never handed over.
                counts.push((key, "refused".into(), 1));
            }
        }
        EventKind::Complaint => counts.push((key, "complained".into(), 1)),
        EventKind::Delivered => counts.push((key, "delivered".into(), 1)),
        EventKind::Deferred => counts.push((key, "deferred".into(), 1)),
    }
    crate::feedback::report_counts::add(&mut *conn, counts).await?;
    if !domain.is_empty()
        && (event.class == Class::Complaint
            || event.kind == EventKind::Bounced
                && matches!(event.class, Class::Hard | Class::Soft | Class::Block))
    {
        check_domain_rates(conn, &tenant_id, &domain, now).await?;
    }
    if let Some(contact) = &contact_id
        && matches!(event.kind, EventKind::Bounced | EventKind::Complaint)
    {
        applied.forwarded = crate::feedback::forwards::enqueue(
            conn,
            &tenant_id,
            contact,
            &row.id,
            &recipient,
            event.class,
            now,
        )
        .await?
        .is_some();
    }
    if let Some(ip) = &ip {
        let delta = ee_core::warmup::Traffic {
            // Traffic an IP carried for others (PowerMTA fed by MailWizz): ours was counted
            // when it was handed over.
            sent: i64::from(event.kind == EventKind::Delivered && message.is_none()),
            bounced: i64::from(
                event.kind == EventKind::Bounced
                    && matches!(event.class, Class::Hard | Class::Soft | Class::Block),
            ),
            complained: i64::from(event.class == Class::Complaint),
        };
        if delta.sent + delta.bounced + delta.complained > 0 {
            crate::infra::record_traffic(&mut *conn, ip, delta, &services.infra, now).await?;
        }
    }
    Ok(applied)
}

/// Days a sending domain's rates are judged over.
const DOMAIN_WINDOW_DAYS: i64 = 3;

/// A sending domain whose bounce or complaint rate over the last days passes the tenant's
/// thresholds (its `campaign_auto_pause`) raises an alert (repeats merged).
async fn check_domain_rates(
    conn: &mut AnyConnection,
    tenant_id: &str,
    domain: &str,
    now: i64,
) -> Result<(), StoreError> {
    let today = now.div_euclid(86_400_000);
    let sums = ee_store::report_counters::domain_sums(
        &mut *conn,
        tenant_id,
        domain,
        today - DOMAIN_WINDOW_DAYS + 1,
        today,
    )
    .await?;
    let get = |name: &str| sums.iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v);
    let handed = get("sent") + get("refused");
    let bounced = get("bounced_hard") + get("bounced_soft") + get("bounced_block");
    let tenant = ee_store::tenants::get(&mut *conn, tenant_id).await?;
    let thresholds = crate::delivery::tenant_delivery(&tenant).campaign_auto_pause;
    if let Some(reason) = thresholds.breached(handed, bounced, get("complained")) {
        let message = format!(
            "Mail from {domain} over the last {DOMAIN_WINDOW_DAYS} days: {reason}. Look at \
             its lists and content before its reputation suffers."
        );
        crate::infra::alerts::raise(
            conn,
            crate::infra::alerts::AlertSpec {
                tenant_id: Some(tenant_id),
                cause: &format!("domain_rates:{domain}"),
                severity: ee_core::alert::Severity::Warning,
                title: "Sending domain over its bounce or complaint threshold",
                message: &message,
            },
            now,
        )
        .await?;
    }
    Ok(())
}

/// The report counter of a bounce of this class.
fn report_name(class: Class) -> &'static str {
    match class {
        Class::Hard => "bounced_hard",
        Class::Soft => "bounced_soft",
        Class::Block => "bounced_block",
        _ => "bounced_other",
    }
}

/// What an event was matched to.
enum Found {
    Message(Box<Message>),
    /// No message; the source's tenant (if any) stands.
    Nothing,
    /// It names a message that is not its recipient's, or none it may: kept for an
    /// operator, applied to nobody.
    Unmatched,
}

/// The message an event refers to: by our id (a per-message return path, our reference
/// header or Message-ID, a header column), else — for a source that speaks for its
/// tenant — the latest one sent to the address in that tenant. A message of another
/// tenant than the source's, or to another address, is not it.
async fn find_message(
    conn: &mut AnyConnection,
    event: &DeliveryEvent,
    tenant_id: Option<&str>,
    recipient: &str,
    named: &Named,
) -> Result<Found, StoreError> {
    if let Some(id) = &event.message_id {
        let scope = tenant_id.map_or(Scope::All, Scope::Tenant);
        let found = match messages::get(&mut *conn, id, scope).await {
            Ok(m) => Some(m),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e),
        };
        let trusted = |m: &Message| match named {
            Named::MessageId(header) => m
                .message_id_header
                .trim()
                .trim_matches(['<', '>'])
                .eq_ignore_ascii_case(header.trim().trim_matches(['<', '>'])),
            Named::Signed | Named::Claimed => true,
        };
        let to_it = |m: &Message| {
            m.to_email.eq_ignore_ascii_case(recipient)
                || recipient.is_empty() && *named != Named::Claimed
        };
        match found {
            Some(m) if trusted(&m) && to_it(&m) => return Ok(Found::Message(Box::new(m))),
            _ if *named != Named::Claimed => return Ok(Found::Unmatched),
            _ => {}
        }
    } else if *named != Named::Claimed || recipient.is_empty() {
        return Ok(Found::Unmatched);
    }
    match tenant_id {
        Some(t) if event.kind != EventKind::Delivered => Ok(
            match messages::latest_to(conn, t, recipient, event.occurred_at - MATCH_WINDOW_MS)
                .await?
            {
                Some(m) => Found::Message(Box::new(m)),
                None => Found::Nothing,
            },
        ),
        _ => Ok(Found::Nothing),
    }
}

/// Keeps an event no tenant may be charged with: listed for an admin, applied to nobody.
async fn store_unmatched(
    conn: &mut AnyConnection,
    event: DeliveryEvent,
    recipient: String,
    dedupe_key: Option<String>,
    now: i64,
) -> Result<Applied, AppError> {
    let row = row_of(&event, recipient, dedupe_key, now);
    let duplicate = !events::insert(&mut *conn, &row).await?;
    if !duplicate {
        events::cap_unmatched(&mut *conn, UNMATCHED_KEPT).await?;
    }
    Ok(Applied {
        id: row.id,
        duplicate,
        tenant_id: None,
        message_id: None,
        class: event.class,
        category: event.category,
        suppressed: false,
        forwarded: false,
    })
}

/// An event's stored row, matched to nothing (the caller fills in what it found).
fn row_of(
    event: &DeliveryEvent,
    recipient: String,
    dedupe_key: Option<String>,
    now: i64,
) -> DeliveryEventRow {
    DeliveryEventRow {
        id: new_id(),
        tenant_id: None,
        message_id: None,
        campaign_id: None,
        contact_id: None,
        ip_id: None,
        recipient,
        kind: event.kind,
        class: event.class,
        category: event.category,
        source: event.source,
        code: event.reply.code.map(i64::from),
        status: event.reply.status.clone(),
        diagnostic: Some(event.reply.diagnostic.clone()).filter(|d| !d.is_empty()),
        remote_mta: event.remote_mta.clone(),
        ip_address: event.ip_address.clone(),
        raw_ref: event.raw_ref.clone(),
        dedupe_key,
        occurred_at: event.occurred_at,
        received_at: now,
    }
}

/// Unmatched events kept at most (the oldest go first): strangers write them.
pub const UNMATCHED_KEPT: i64 = 10_000;

/// The sending IP: the message's, else the address the source reports, in the tenant.
async fn find_ip(
    conn: &mut AnyConnection,
    event: &DeliveryEvent,
    message: Option<&Message>,
    tenant_id: Option<&str>,
) -> Result<Option<ee_store::ips::Ip>, StoreError> {
    if let Some(id) = message.and_then(|m| m.ip_id.as_deref()) {
        return match ee_store::ips::get(&mut *conn, id, Scope::All).await {
            Ok(ip) => Ok(Some(ip)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        };
    }
    let (Some(address), Some(tenant)) = (&event.ip_address, tenant_id) else {
        return Ok(None);
    };
    match ee_store::ips::get_by_address(conn, address).await {
        Ok(ip) if ip.tenant_id.as_deref() == Some(tenant) => Ok(Some(ip)),
        Ok(_) | Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The message's side: a message handed over and bounced later becomes bounced (its
/// campaign's `sent` becomes `bounced`); each event is added to its history and counted.
async fn on_message(
    conn: &mut AnyConnection,
    message: &Message,
    event: &DeliveryEvent,
    detail: &serde_json::Value,
    now: i64,
) -> Result<(), StoreError> {
    let code = event.reply.code.map(i64::from);
    let (event_type, counter) = match event.kind {
        EventKind::Bounced => {
            let moved = messages::bounce_after_send(
                &mut *conn,
                &message.id,
                code,
                &event.reply.diagnostic,
                now,
            )
            .await?;
            if moved && let Some(campaign) = &message.campaign_id {
                ee_store::campaigns::count(&mut *conn, campaign, "sent", -1, now).await?;
                ee_store::campaigns::count(&mut *conn, campaign, "bounced", 1, now).await?;
            }
            ("bounced", None)
        }
        EventKind::Complaint => ("complained", Some("complained")),
        EventKind::Delivered => ("delivered", Some("delivered")),
        EventKind::Deferred => ("deferred", None),
    };
    if let (Some(campaign), Some(counter)) = (&message.campaign_id, counter) {
        ee_store::campaigns::count(&mut *conn, campaign, counter, 1, now).await?;
    }
    messages::add_event(
        conn,
        message,
        event_type,
        code,
        Some(&detail.to_string()),
        message.ip_id.as_deref(),
        now,
    )
    .await
}

/// The contact's side: a hard bounce or a complaint suppresses the address at once; soft
/// bounces do after the tenant's limit within its days since the last delivery; the rest
/// goes on the timeline. Whether the address is now suppressed.
#[allow(clippy::too_many_arguments)]
async fn on_contact(
    conn: &mut AnyConnection,
    tenant_id: &str,
    recipient: &str,
    contact_id: Option<&str>,
    campaign_id: Option<&str>,
    event: &DeliveryEvent,
    detail: &serde_json::Value,
    now: i64,
) -> Result<bool, StoreError> {
    // What to suppress the address for (with what detail), else the timeline's event.
    let (to_suppress, event_name): (Option<(SuppressionReason, serde_json::Value)>, Option<&str>) =
        match (event.kind, event.class) {
            (_, Class::Hard) => (Some((SuppressionReason::Bounced, detail.clone())), None),
            (_, Class::Complaint) => (Some((SuppressionReason::Complained, detail.clone())), None),
            (EventKind::Bounced, Class::Soft) => {
                let tenant = ee_store::tenants::get(&mut *conn, tenant_id).await?;
                let rule = crate::delivery::tenant_delivery(&tenant).soft_bounces;
                let last = events::last_delivery(&mut *conn, tenant_id, recipient).await?;
                let since = rule.counted_from(now, last);
                let count =
                    events::soft_bounces_since(&mut *conn, tenant_id, recipient, since).await?;
                if rule.suppresses(count) {
                    let mut detail = detail.clone();
                    detail["soft_bounces"] = count.into();
                    (Some((SuppressionReason::Bounced, detail)), None)
                } else {
                    (None, Some("BOUNCED"))
                }
            }
            (EventKind::Bounced, _) => (None, Some("BOUNCED")),
            (EventKind::Delivered, _) => (None, Some("DELIVERED")),
            _ => (None, None),
        };
    if let Some((reason, detail)) = to_suppress {
        let source = Some(event.source.as_str());
        suppress(conn, tenant_id, recipient, reason, source, &detail, now).await?;
        return Ok(true);
    }
    if let (Some(name), Some(contact)) = (event_name, contact_id) {
        ee_store::contacts::add_event(conn, tenant_id, contact, name, campaign_id, detail, now)
            .await?;
    }
    Ok(false)
}

/// Suppresses `recipient` for its tenant, for `reason` (`bounced`, `complained`,
/// `unsubscribed`) as `source` reported it; whether the address was not suppressed before.
async fn suppress(
    conn: &mut AnyConnection,
    tenant_id: &str,
    recipient: &str,
    reason: SuppressionReason,
    source: Option<&str>,
    detail: &serde_json::Value,
    now: i64,
) -> Result<bool, StoreError> {
    ee_store::suppressions::suppress_address(
        conn, tenant_id, recipient, reason, source, detail, now,
    )
    .await
}

/// Classifies what a source reports and builds the event.
pub fn event(
    rules: &Rules,
    source: Source,
    kind: EventKind,
    recipient: &str,
    reply: ee_core::feedback::Reply,
    occurred_at: i64,
) -> DeliveryEvent {
    let (class, category) = ee_core::feedback::classify(rules, kind, &reply);
    DeliveryEvent {
        kind,
        class,
        category,
        source,
        recipient: recipient.to_owned(),
        reply,
        message_id: None,
        campaign_id: None,
        ip_address: None,
        remote_mta: None,
        occurred_at,
        raw_ref: None,
    }
}
