//! Queueing a message: template selection, rendering, suppression and frequency checks,
//! a Message-ID fixed for good.

use ee_store::Scope;
use std::collections::BTreeMap;

use ee_core::delivery::{MessageState, TenantDelivery};
use ee_core::template;
pub use ee_store::message_queries::MessageFilter;
use ee_store::messages::{self, NewMessage};
pub use ee_store::messages::{Event, Message};
use ee_store::{StoreError, contacts as contact_store, domains, suppressions, templates};

use crate::Services;
use crate::read::{Read, Reader};

use crate::campaigns::rendering::*;
pub use crate::delivery::QueueError;
use crate::delivery::*;

/// A message to queue: a template (by id or name, or chosen by category and language)
/// with variables, or a subject and bodies given as they are.
#[derive(Debug, Clone, Default)]
pub struct SendRequest {
    pub tenant_id: String,
    pub kind: ee_core::delivery::MessageKind,
    pub campaign_id: Option<String>,
    pub to_email: String,
    pub to_name: Option<String>,
    pub template: Option<String>,
    pub category: Option<String>,
    pub language: Option<String>,
    pub variables: BTreeMap<String, String>,
    pub subject: Option<String>,
    pub html: Option<String>,
    pub text: Option<String>,
    pub from_email: Option<String>,
    pub from_name: Option<String>,
    pub reply_to: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub idempotency_key: Option<String>,
    pub send_at: Option<i64>,
    pub track_opens: Option<bool>,
    pub track_clicks: Option<bool>,
}

/// A From address must be on one of the tenant's domains with an active DKIM key, so
/// the message goes out signed and aligned for DMARC; unless the tenant allows unsigned
/// senders, or MailWizz (which signs with its own servers) delivers.
pub(crate) async fn check_signing_domain(
    conn: &mut ee_store::AnyConnection,
    tenant_id: &str,
    settings: &TenantDelivery,
    from_email: &str,
) -> Result<(), QueueError> {
    if settings.allow_unsigned_senders || settings.mode == ee_core::delivery::Mode::Mailwizz {
        return Ok(());
    }
    let domain = domain_of(from_email);
    if domains::active_key_for(&mut *conn, tenant_id, domain)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let mut signing = Vec::new();
    for d in domains::list(&mut *conn, Scope::Tenant(tenant_id)).await? {
        if domains::active_key_for(&mut *conn, tenant_id, &d.domain_name)
            .await?
            .is_some()
        {
            signing.push(d.domain_name);
        }
    }
    let may = if signing.is_empty() {
        "the tenant has no domain with an active DKIM key yet: add one (POST /api/v1/domains)"
            .to_owned()
    } else {
        format!("senders may use {}", signing.join(", "))
    };
    Err(invalid(
        "from_email",
        format!(
            "`{domain}` is not one of the tenant's signing domains; {may} (or set allow_unsigned_senders in the tenant's delivery settings)"
        ),
    ))
}

/// Queues one message. Returns it and whether it existed already (same Idempotency-Key).
pub async fn queue(services: &Services, req: SendRequest) -> Result<(Message, bool), QueueError> {
    let now = services.clock.now_ms();
    let mut conn = services.db.acquire().await?;
    if let Some(key) = &req.idempotency_key
        && let Some(existing) =
            messages::get_by_idempotency_key(&mut conn, &req.tenant_id, key).await?
    {
        return Ok((existing, true));
    }
    let tenant = ee_store::tenants::get(&mut conn, &req.tenant_id).await?;
    let settings = tenant_delivery(&tenant);
    let to_email = ee_core::contacts::normalize(&req.to_email, Default::default())
        .map_err(|e| invalid("to", format!("not a valid address: {e}")))?;
    let contact = contact_store::get_by_email(&mut conn, &tenant.id, &to_email).await?;
    let language = req
        .language
        .as_deref()
        .or(contact.as_ref().and_then(|c| c.language.as_deref()))
        .and_then(template::language)
        .unwrap_or(template::DEFAULT_LANGUAGE);
    if let Some(given) = &req.language
        && template::language(given).is_none()
    {
        return Err(invalid(
            "language",
            format!("`{given}` is not one of {}", template::LANGUAGES.join(", ")),
        ));
    }

    // The template: named, or chosen by category and language; else the given bodies.
    let chosen = match (&req.template, &req.category) {
        (Some(key), _) => Some(
            match templates::get(&mut conn, key, Scope::Tenant(&tenant.id)).await {
                Ok(t) => t,
                Err(StoreError::NotFound) => templates::get_by_name(&mut conn, &tenant.id, key)
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound => QueueError::NotFound("template"),
                        other => other.into(),
                    })?,
                Err(e) => return Err(e.into()),
            },
        ),
        (None, Some(category)) => Some(
            select_template(&mut conn, &tenant.id, language, Some(category))
                .await?
                .ok_or(QueueError::NotFound("template"))?
                .0,
        ),
        (None, None) => None,
    };
    let id = ee_core::ids::new_id();
    let mut values = recipient_values(
        contact.as_ref(),
        &req.variables,
        unsubscribe_url(&services.delivery, &id),
        now,
    );
    values.insert("EMAIL".into(), to_email.clone());
    // A campaign message keeps no rendered body: it is rendered when sent, from the
    // template's version of now (`message_bodies`); its subject is rendered here.
    let at_send = req.kind == ee_core::delivery::MessageKind::Campaign && chosen.is_some();
    let (rendered, template_language) = match &chosen {
        Some(t) => (
            render(
                // A subject given with a template replaces the template's (an A/B variant).
                req.subject
                    .as_deref()
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or(&t.subject),
                (!at_send).then_some(t.html_content.as_str()),
                t.text_content.as_deref().filter(|_| !at_send),
                &t.language,
                &declared_variables(&t.variables),
                &values,
            )?,
            t.language.clone(),
        ),
        None => {
            let subject = req
                .subject
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| invalid("subject", "a template or a subject is required"))?;
            if req.html.is_none() && req.text.is_none() {
                return Err(invalid("html", "a template, html or text is required"));
            }
            (
                render(
                    subject,
                    req.html.as_deref(),
                    req.text.as_deref(),
                    language,
                    &BTreeMap::new(),
                    &values,
                )?,
                language.to_owned(),
            )
        }
    };
    let from_email = req
        .from_email
        .clone()
        .or_else(|| chosen.as_ref().and_then(|t| t.from_email.clone()))
        .or_else(|| settings.default_from_email.clone())
        .ok_or_else(|| {
            invalid(
                "from_email",
                "no sender: give from_email, set it on the template, or set the tenant's default_from_email",
            )
        })?;
    let from_email = ee_core::contacts::normalize(&from_email, Default::default())
        .map_err(|e| invalid("from_email", format!("not a valid address: {e}")))?;
    check_signing_domain(&mut conn, &tenant.id, &settings, &from_email).await?;
    for (name, value) in &req.headers {
        ee_core::delivery::check_custom_header(name, value)
            .map_err(|message| invalid("headers", message))?;
    }

    // Refused before queueing: suppressed addresses, and campaign mail over the cap.
    let hash = ee_core::contacts::address_hash(&to_email);
    let suppressed = suppressions::reasons_for(&mut conn, &tenant.id, &[hash]).await?;
    let mut state = MessageState::Queued;
    let mut reason = suppressed
        .values()
        .next()
        .map(|r| format!("suppressed ({r})"));
    if reason.is_none()
        && !matches!(
            req.kind,
            ee_core::delivery::MessageKind::Transactional | ee_core::delivery::MessageKind::Test
        )
        && let Some(cap) = settings.frequency_cap
    {
        let since = now - i64::from(cap.hours) * 3_600_000;
        let recent = messages::count_recent_to(&mut conn, &tenant.id, &to_email, since).await?;
        if recent >= i64::from(cap.max) {
            reason = Some(format!(
                "frequency cap: {recent} messages in the last {} h",
                cap.hours
            ));
        }
    }
    if reason.is_some() {
        state = MessageState::Suppressed;
    }
    let new = NewMessage {
        id: id.clone(),
        tenant_id: tenant.id.clone(),
        contact_id: contact.as_ref().map(|c| c.id.clone()),
        campaign_id: req.campaign_id.clone(),
        template_id: chosen.as_ref().map(|t| t.id.clone()),
        kind: req.kind,
        idempotency_key: req.idempotency_key.clone(),
        to_name: req
            .to_name
            .clone()
            .or_else(|| contact.as_ref().and_then(|c| c.first_name.clone())),
        to_email,
        message_id_header: format!("{id}@{}", domain_of(&from_email)),
        from_name: req
            .from_name
            .clone()
            .or_else(|| chosen.as_ref().and_then(|t| t.from_name.clone()))
            .or_else(|| settings.default_from_name.clone()),
        reply_to: req
            .reply_to
            .clone()
            .or_else(|| chosen.as_ref().and_then(|t| t.reply_to.clone()))
            .or_else(|| settings.default_reply_to.clone()),
        from_email,
        subject: rendered.subject,
        html: rendered.html,
        text_body: rendered.text,
        language: Some(template_language),
        headers: serde_json::to_string(&req.headers).unwrap_or_else(|_| "{}".into()),
        track_opens: req.track_opens.unwrap_or(settings.track_opens),
        track_clicks: req.track_clicks.unwrap_or(settings.track_clicks),
        state: state.as_str().to_owned(),
        state_reason: reason.clone(),
        not_before: req.send_at.unwrap_or(now).max(now),
        template_version: chosen.as_ref().filter(|_| at_send).map(|t| t.version),
    };
    // The message and its first event, in one transaction. The reads' connection goes
    // back first: holding it while waiting for another let 32 concurrent sends take the
    // whole pool and wait on each other until the acquire time-out.
    drop(conn);
    let mut tx = services.db.begin().await?;
    match messages::insert(&mut tx, &new, now).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            drop(tx);
            let mut conn = services.db.acquire().await?;
            // A concurrent request with the same key won: answer with its message.
            if let Some(key) = &req.idempotency_key
                && let Some(existing) =
                    messages::get_by_idempotency_key(&mut conn, &tenant.id, key).await?
            {
                return Ok((existing, true));
            }
            return Err(QueueError::Store(StoreError::Conflict("message".into())));
        }
        Err(e) => return Err(e.into()),
    }
    let message = messages::get(&mut tx, &id, Scope::All).await?;
    messages::add_event(
        &mut tx,
        &message,
        state.as_str(),
        None,
        reason.as_deref(),
        None,
        now,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok((message, false))
}

/// A message's life, oldest first.
pub async fn events(r: &mut impl Reader, m: &Message) -> Result<Vec<Event>, crate::AppError> {
    Ok(messages::events(r.connection(), &m.id).await?)
}

/// A page of messages, newest first, filtered (the filter's tenant: one a request named and
/// `Read::tenant` resolved, or the caller's own), strictly before the key-set cursor.
pub async fn page(
    read: &mut Read,
    filter: &MessageFilter<'_>,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<Message>, crate::AppError> {
    Ok(ee_store::message_queries::page(read.conn(), filter, before, limit).await?)
}

/// The queue's depth by state (queued, deferred, sending), of one tenant or all.
pub async fn backlog(
    read: &mut Read,
    tenant_id: Option<&str>,
) -> Result<Vec<(String, i64)>, crate::AppError> {
    Ok(messages::backlog_counts(read.conn(), Scope::from(tenant_id)).await?)
}
