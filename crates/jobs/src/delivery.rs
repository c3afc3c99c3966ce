//! The message pipeline: queueing a message (template selection, rendering, suppression
//! and frequency checks, a Message-ID fixed for good) and delivering the queue (IP choice
//! within warm-up quotas and per-provider limits, tracking, DKIM, SMTP by relay or direct
//! to MX over reused connections, retries, bounces).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ee_core::delivery::{
    self as rules, DestinationLimits, IpCandidate, Mode, Outcome, Provider, RetryPolicy,
    TenantDelivery,
};
use ee_core::secrets::Sealer;
use ee_core::template::{self, Candidate, Values};
use ee_core::tracking::{self, Kind};
use ee_mail::message::{Outgoing, Signer};
use ee_mail::smtp::{Connection, Endpoint, Security, SmtpError};
use ee_store::messages::{self, Attempt, Message, NewMessage};
use ee_store::{StoreError, contacts as contact_store, domains, relays, suppressions, templates};
use serde_json::{Value, json};
use tokio::sync::{Mutex, Semaphore};

use crate::Services;
use crate::contacts::mx_outcome;
use ee_core::contacts::MxOutcome;

/// Sealing purpose of relay passwords.
pub const RELAY_PASSWORD_PURPOSE: &str = "relay-password";

/// How the pipeline runs; one per node.
#[derive(Clone)]
pub struct DeliverySettings {
    /// Where tracking and unsubscribe links point (`EE_PUBLIC_URL`).
    pub public_url: String,
    /// Signs tracking and unsubscribe tokens.
    pub tracking_key: Vec<u8>,
    /// Opens DKIM keys and relay passwords.
    pub sealer: Option<Sealer>,
    pub retry: RetryPolicy,
    pub limits: DestinationLimits,
    /// The port MX hosts are reached on: 25, tests use another.
    pub mx_port: u16,
    pub timeout: Duration,
    /// Messages claimed at once, and sent at once.
    pub batch: i64,
    pub concurrency: usize,
    /// How long a claimed message is ours before another worker may take it over.
    pub lease_ms: i64,
    /// Accept any certificate from relays (self-signed smarthosts, tests).
    pub allow_invalid_certs: bool,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        let mut key = vec![0u8; 32];
        rand::fill(&mut key[..]);
        Self {
            public_url: "http://localhost:8080".into(),
            tracking_key: key,
            sealer: None,
            retry: RetryPolicy::default(),
            limits: DestinationLimits::default(),
            mx_port: 25,
            timeout: Duration::from_secs(60),
            batch: 200,
            concurrency: 16,
            lease_ms: 5 * 60_000,
            allow_invalid_certs: false,
        }
    }
}

impl std::fmt::Debug for DeliverySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliverySettings")
            .field("public_url", &self.public_url)
            .field("mx_port", &self.mx_port)
            .field("batch", &self.batch)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// A field of the request is wrong.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
        details: Value,
    },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, message: impl Into<String>) -> QueueError {
    QueueError::Invalid {
        field,
        message: message.into(),
        details: Value::Null,
    }
}

/// A message to queue: a template (by id or name, or chosen by category and language)
/// with variables, or a subject and bodies given as they are.
#[derive(Debug, Clone, Default)]
pub struct SendRequest {
    pub tenant_id: String,
    pub kind: String,
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

/// A tenant's delivery settings (key `delivery` of its settings).
pub fn tenant_delivery(settings: &str) -> TenantDelivery {
    serde_json::from_str::<Value>(settings)
        .ok()
        .and_then(|s| serde_json::from_value(s.get("delivery")?.clone()).ok())
        .unwrap_or_default()
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

fn contact_values(contact: &contact_store::Contact) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    if let Ok(Value::Object(custom)) = serde_json::from_str::<Value>(&contact.metadata) {
        for (key, value) in custom {
            let shown = match value {
                Value::String(s) => s,
                Value::Null => continue,
                other => other.to_string(),
            };
            values.insert(key.to_ascii_uppercase(), shown);
        }
    }
    let fields = [
        ("EMAIL", Some(&contact.email)),
        ("FNAME", contact.first_name.as_ref()),
        ("LNAME", contact.last_name.as_ref()),
        ("COMPANY", contact.company.as_ref()),
        ("PHONE", contact.phone.as_ref()),
        ("CITY", contact.city.as_ref()),
        ("COUNTRY", contact.country.as_ref()),
        ("LANGUAGE", contact.language.as_ref()),
        ("ADDRESS", contact.address.as_ref()),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            values.insert(name.to_owned(), v.clone());
        }
    }
    values
}

/// The values of a recipient's variables: the contact's fields and custom fields, the
/// caller's values over them, then the system's (`UNSUBSCRIBE_URL`, `CURRENT_YEAR`),
/// which a caller cannot replace.
pub fn recipient_values(
    contact: Option<&contact_store::Contact>,
    given: &BTreeMap<String, String>,
    unsubscribe_url: String,
    now: i64,
) -> BTreeMap<String, String> {
    let mut values = contact.map(contact_values).unwrap_or_default();
    for (k, v) in given {
        values.insert(k.to_ascii_uppercase(), v.clone());
    }
    values.insert("UNSUBSCRIBE_URL".into(), unsubscribe_url);
    values.insert(
        "CURRENT_YEAR".into(),
        ee_core::timefmt::year_of(now).to_string(),
    );
    values
}

/// A tenant's active template for a language and category, by seed 000 §4.3's fallback:
/// category + language, the language's general one, then the English general one.
pub async fn select_template(
    conn: &mut ee_store::AnyConnection,
    tenant_id: &str,
    language: &str,
    category: Option<&str>,
) -> Result<Option<(templates::Template, template::Level)>, StoreError> {
    let all = templates::list(
        conn,
        &templates::Filter {
            tenant_id: Some(tenant_id),
            active: true,
            ..Default::default()
        },
    )
    .await?;
    let candidates: Vec<Candidate<'_>> = all
        .iter()
        .map(|t| Candidate {
            id: &t.id,
            category: t.category.as_deref(),
            language: &t.language,
        })
        .collect();
    let Some((id, level)) = template::select(&candidates, language, category) else {
        return Ok(None);
    };
    let id = id.to_owned();
    Ok(all.into_iter().find(|t| t.id == id).map(|t| (t, level)))
}

/// Declared variables of a template: a JSON object name → default, or a list of names.
pub fn declared_variables(json: &str) -> BTreeMap<String, Option<String>> {
    match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map(str::to_owned)))
            .collect(),
        Ok(Value::Array(names)) => names
            .into_iter()
            .filter_map(|n| n.as_str().map(|s| (s.to_owned(), None)))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The rendered parts of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
}

/// Renders subject, HTML (right to left for Arabic) and text (from the HTML when the
/// template has none).
pub fn render(
    subject: &str,
    html: Option<&str>,
    text: Option<&str>,
    language: &str,
    declared: &BTreeMap<String, Option<String>>,
    values: &BTreeMap<String, String>,
) -> Result<Rendered, QueueError> {
    let problems = template::check(
        [
            ("subject", subject),
            ("html", html.unwrap_or("")),
            ("text", text.unwrap_or("")),
        ],
        declared,
    );
    if !problems.is_empty() {
        return Err(QueueError::Invalid {
            field: "template",
            message: describe(&problems),
            details: json!({
                "unknown_variables": problems.unknown,
                "syntax": problems.syntax.iter().map(|(p, m)| json!({"part": p, "error": m})).collect::<Vec<_>>(),
            }),
        });
    }
    let v = Values {
        values,
        defaults: declared,
    };
    fn parse(s: &str) -> Vec<template::Segment<'_>> {
        template::parse(s).unwrap_or_default()
    }
    let subject = template::render(&parse(subject), &v, false)
        .replace(['\r', '\n'], " ")
        .trim()
        .to_owned();
    let html = html
        .filter(|h| !h.trim().is_empty())
        .map(|h| template::apply_direction(&template::render(&parse(h), &v, true), language));
    let text = match text.filter(|t| !t.trim().is_empty()) {
        Some(t) => Some(template::render(&parse(t), &v, false)),
        None => html.as_deref().map(template::html_to_text),
    };
    Ok(Rendered {
        subject,
        html,
        text,
    })
}

/// One line naming what is wrong with a template.
pub fn describe(problems: &template::Problems) -> String {
    let mut parts = Vec::new();
    if !problems.unknown.is_empty() {
        parts.push(format!(
            "unknown variables: {}",
            problems
                .unknown
                .iter()
                .map(|u| format!("[{u}]"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for (part, message) in &problems.syntax {
        parts.push(format!("{part}: {message}"));
    }
    parts.join("; ")
}

fn unsubscribe_url(settings: &DeliverySettings, message_id: &str) -> String {
    format!(
        "{}/u/{}",
        settings.public_url.trim_end_matches('/'),
        tracking::sign(&settings.tracking_key, Kind::Unsubscribe, message_id, 0)
    )
}

/// A From address must be on one of the tenant's domains with an active DKIM key, so
/// the message goes out signed and aligned for DMARC; unless the tenant allows unsigned
/// senders, or MailWizz (which signs with its own servers) delivers.
async fn check_signing_domain(
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
    for d in domains::list(&mut *conn, Some(tenant_id)).await? {
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
    let mut conn = services
        .db
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    if let Some(key) = &req.idempotency_key
        && let Some(existing) =
            messages::get_by_idempotency_key(&mut conn, &req.tenant_id, key).await?
    {
        return Ok((existing, true));
    }
    let tenant = ee_store::tenants::get(&mut conn, &req.tenant_id).await?;
    let settings = tenant_delivery(&tenant.settings);
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
            match templates::get(&mut conn, key, Some(&tenant.id)).await {
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
    let (rendered, template_language) = match &chosen {
        Some(t) => (
            render(
                &t.subject,
                Some(&t.html_content),
                t.text_content.as_deref(),
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
    let mut state = "queued";
    let mut reason = suppressed
        .values()
        .next()
        .map(|r| format!("suppressed ({r})"));
    if reason.is_none()
        && req.kind != "transactional"
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
        state = "suppressed";
    }
    let new = NewMessage {
        id: id.clone(),
        tenant_id: tenant.id.clone(),
        contact_id: contact.as_ref().map(|c| c.id.clone()),
        campaign_id: req.campaign_id.clone(),
        template_id: chosen.as_ref().map(|t| t.id.clone()),
        kind: req.kind.clone(),
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
        state: state.to_owned(),
        state_reason: reason.clone(),
        not_before: req.send_at.unwrap_or(now).max(now),
    };
    match messages::insert(&mut conn, &new, now).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            // A concurrent request with the same key won: answer with its message.
            if let Some(key) = &req.idempotency_key
                && let Some(existing) =
                    messages::get_by_idempotency_key(&mut conn, &tenant.id, key).await?
            {
                return Ok((existing, true));
            }
        }
        Err(e) => return Err(e.into()),
    }
    let message = messages::get(&mut conn, &id, None).await?;
    messages::add_event(
        &mut conn,
        &message,
        state,
        None,
        reason.as_deref(),
        None,
        now,
    )
    .await?;
    Ok((message, false))
}

type PoolKey = (String, String);

/// What a tenant's messages need, read once per batch.
struct TenantContext {
    tenant: ee_store::tenants::Tenant,
    settings: TenantDelivery,
    /// The relay in relay mode; `Err` names why the tenant cannot send.
    relay: Result<Option<relays::Relay>, String>,
    /// The MailWizz instance (and a client for it) in MailWizz mode.
    mailwizz: Result<
        Option<(
            ee_store::mailwizz::Instance,
            ee_connectors::mailwizz::Client,
        )>,
        String,
    >,
}

impl TenantContext {
    async fn load(
        services: &Services,
        conn: &mut ee_store::AnyConnection,
        tenant_id: &str,
    ) -> Result<Self, StoreError> {
        let tenant = ee_store::tenants::get(&mut *conn, tenant_id).await?;
        let settings = tenant_delivery(&tenant.settings);
        let relay = match (&settings.mode, &settings.relay) {
            (Mode::Relay, Some(key)) => match relays::find(&mut *conn, &tenant.id, key).await {
                Ok(r) => Ok(Some(r)),
                Err(StoreError::NotFound) => {
                    Err(format!("the tenant's relay `{key}` does not exist"))
                }
                Err(e) => return Err(e),
            },
            (Mode::Relay, None) => Err("relay mode without a relay".into()),
            (Mode::Direct | Mode::Mailwizz, _) => Ok(None),
        };
        let mailwizz = if settings.mode == Mode::Mailwizz {
            match ee_store::mailwizz::find(&mut *conn, &tenant.id, settings.mailwizz.as_deref())
                .await
            {
                Ok(instance) => crate::mailwizz::client(services, &instance)
                    .map(|client| Some((instance, client)))
                    .map_err(|e| e.to_string()),
                Err(StoreError::NotFound) => Err(format!(
                    "MailWizz mode, but the MailWizz instance `{}` does not exist",
                    settings.mailwizz.as_deref().unwrap_or("(primary)")
                )),
                Err(e) => return Err(e),
            }
        } else {
            Ok(None)
        };
        Ok(Self {
            tenant,
            settings,
            relay,
            mailwizz,
        })
    }
}

/// Read once for a claimed batch: its tenants, which of its addresses are suppressed,
/// and the MX answers of its domains as they are looked up.
struct BatchContext {
    tenants: HashMap<String, Arc<TenantContext>>,
    /// (tenant, address) → reason.
    suppressed: HashMap<(String, String), String>,
    mx: Mutex<HashMap<String, (MxOutcome, Vec<String>)>>,
    /// Per tenant: its IPs that may send, with what they have left today.
    quotas: Mutex<HashMap<String, Vec<IpQuota>>>,
}

#[derive(Clone)]
struct IpQuota {
    ip: ee_store::ips::Ip,
    daily_quota: Option<i64>,
    remaining: Option<i64>,
}

impl BatchContext {
    async fn load(
        services: &Services,
        conn: &mut ee_store::AnyConnection,
        batch: &[Message],
    ) -> Result<Self, StoreError> {
        let mut by_tenant: HashMap<&str, Vec<&Message>> = HashMap::new();
        for m in batch {
            by_tenant.entry(&m.tenant_id).or_default().push(m);
        }
        let mut tenants = HashMap::new();
        let mut suppressed = HashMap::new();
        for (tenant_id, messages) in by_tenant {
            match TenantContext::load(services, &mut *conn, tenant_id).await {
                Ok(t) => {
                    tenants.insert(tenant_id.to_owned(), Arc::new(t));
                }
                Err(StoreError::NotFound) => continue,
                Err(e) => return Err(e),
            }
            let hashes: Vec<String> = messages
                .iter()
                .map(|m| ee_core::contacts::address_hash(&m.to_email))
                .collect();
            let reasons = suppressions::reasons_for(&mut *conn, tenant_id, &hashes).await?;
            for (m, hash) in messages.iter().zip(&hashes) {
                if let Some(reason) = reasons.get(hash) {
                    suppressed.insert((tenant_id.to_owned(), m.to_email.clone()), reason.clone());
                }
            }
        }
        Ok(Self {
            tenants,
            suppressed,
            mx: Mutex::new(HashMap::new()),
            quotas: Mutex::new(HashMap::new()),
        })
    }

    /// A tenant's IPs as the batch sees them (read on first use); empty when it has none
    /// at all, `None`-free: IPs that may not send are left out.
    async fn ips(
        &self,
        services: &Services,
        tenant_id: &str,
        now: i64,
    ) -> Result<Vec<ee_store::ips::Ip>, StoreError> {
        let mut quotas = self.quotas.lock().await;
        if !quotas.contains_key(tenant_id) {
            let mut conn = services.db.pool().acquire().await?;
            let all = ee_store::ips::list(
                &mut conn,
                &ee_store::ips::IpFilter {
                    scope: Some(tenant_id),
                    ..Default::default()
                },
            )
            .await?;
            let mut list = Vec::new();
            for ip in &all {
                if !ip.state().selectable() {
                    continue;
                }
                match crate::infra::quota(&mut conn, ip, now).await {
                    Ok(q) => list.push(IpQuota {
                        ip: ip.clone(),
                        daily_quota: q.daily_quota,
                        remaining: q.remaining,
                    }),
                    Err(e) => tracing::warn!(ip = %ip.ip_address, error = %e, "quota unknown"),
                }
            }
            // A tenant whose IPs all may not send must not fall back to the host address.
            if !all.is_empty() && list.is_empty() {
                list.push(IpQuota {
                    ip: all[0].clone(),
                    daily_quota: Some(0),
                    remaining: Some(0),
                });
            }
            quotas.insert(tenant_id.to_owned(), list);
        }
        Ok(quotas[tenant_id].iter().map(|q| q.ip.clone()).collect())
    }

    /// A domain's MX answer, looked up (cache, then DNS) once per batch.
    async fn mx(
        &self,
        services: &Services,
        domain: &str,
        now: i64,
    ) -> Result<(MxOutcome, Vec<String>), StoreError> {
        if let Some(found) = self.mx.lock().await.get(domain) {
            return Ok(found.clone());
        }
        let found = mx_outcome(services, domain, now).await?;
        if found.0 != MxOutcome::Error {
            self.mx
                .lock()
                .await
                .insert(domain.to_owned(), found.clone());
        }
        Ok(found)
    }
}
/// DKIM signers by (tenant, domain): the active key's id (`None`: the domain has no key),
/// its signer, and when the database was last asked.
type SignerCache = HashMap<(String, String), (Option<String>, Option<Arc<Signer>>, i64)>;

/// How long (ms) a node signs with a key before asking which key is active (rotation).
const SIGNER_RECHECK_MS: i64 = 60_000;

/// How long an idle connection is kept for reuse: less than the idle time-outs of common
/// MTAs (Postfix's smtpd waits 300 s), so a kept connection is rarely found closed.
const IDLE_MAX: Duration = Duration::from_secs(30);

/// Delivers the queue: one per node, shared by its delivery loop.
pub struct Engine {
    services: Services,
    /// Messages being sent at once, across the batches in flight.
    gate: Arc<Semaphore>,
    /// Idle connections by (route, source IP / destination), with when each was last used.
    idle: Mutex<HashMap<PoolKey, Vec<(Connection, std::time::Instant)>>>,
    /// Concurrent connections by (IP, provider).
    slots: Mutex<HashMap<(String, Provider), Arc<Semaphore>>>,
    signers: Mutex<SignerCache>,
    spin: AtomicUsize,
}

/// A batch claimed under a lease, with what its messages need.
struct Claimed {
    lease: String,
    batch: Vec<Message>,
    context: Arc<BatchContext>,
}

/// What one attempt came to.
struct Result1 {
    state: &'static str,
    reason: Option<String>,
    code: Option<i64>,
    reply: Option<String>,
    ip_id: Option<String>,
    route: Option<String>,
    next_attempt_at: Option<i64>,
    links: Option<String>,
    /// The attempt did not reach a server (no quota): not counted.
    uncounted: bool,
    /// A connection was made: the send counts against the IP's quota.
    reached_server: bool,
}

impl Result1 {
    fn new(state: &'static str) -> Self {
        Self {
            state,
            reason: None,
            code: None,
            reply: None,
            ip_id: None,
            route: None,
            next_attempt_at: None,
            links: None,
            uncounted: false,
            reached_server: false,
        }
    }
}

struct Chosen {
    ip_id: Option<String>,
    address: Option<IpAddr>,
    hostname: Option<String>,
    ip_text: Option<String>,
    provider: Provider,
    day: i64,
    hour: i64,
}

impl Engine {
    pub fn new(services: Services) -> Arc<Self> {
        Arc::new(Self {
            gate: Arc::new(Semaphore::new(services.delivery.concurrency.max(1))),
            services,
            idle: Mutex::new(HashMap::new()),
            slots: Mutex::new(HashMap::new()),
            signers: Mutex::new(HashMap::new()),
            spin: AtomicUsize::new(0),
        })
    }

    /// Claims one batch of due messages and delivers it; the number handled.
    pub async fn run_once(self: &Arc<Self>) -> Result<usize, StoreError> {
        match self.claim().await? {
            Some(claimed) => self.clone().deliver(claimed).await,
            None => Ok(0),
        }
    }

    /// Claims a batch of due messages under a lease, with what it needs read once.
    async fn claim(&self) -> Result<Option<Claimed>, StoreError> {
        let settings = &self.services.delivery;
        let now = self.services.clock.now_ms();
        let mut conn = self.services.db.pool().acquire().await?;
        let (lease, batch) = messages::claim_due(
            &mut conn,
            self.services.db.backend(),
            settings.batch,
            settings.lease_ms,
            now,
        )
        .await?;
        if batch.is_empty() {
            return Ok(None);
        }
        let context = Arc::new(BatchContext::load(&self.services, &mut conn, &batch).await?);
        Ok(Some(Claimed {
            lease,
            batch,
            context,
        }))
    }

    /// Delivers a claimed batch and records it; the number handled.
    async fn deliver(self: Arc<Self>, claimed: Claimed) -> Result<usize, StoreError> {
        self.close_stale().await;
        let Claimed {
            lease,
            batch,
            context,
        } = claimed;
        let count = batch.len();
        let mut tasks = tokio::task::JoinSet::new();
        for message in batch {
            let engine = self.clone();
            let context = context.clone();
            let permit = self.gate.clone().acquire_owned().await;
            tasks.spawn(async move {
                let _permit = permit;
                let started = std::time::Instant::now();
                let result = engine.attempt(&context, &message).await;
                if let Ok(r) = &result {
                    // One structured line per attempt, to follow sending in the logs (the
                    // recipient's domain only: the address is personal data).
                    tracing::info!(
                        message_id = %message.id,
                        recipient_domain = domain_of(&message.to_email),
                        ip_id = r.ip_id.as_deref().unwrap_or(""),
                        route = r.route.as_deref().unwrap_or(""),
                        code = r.code.unwrap_or(0),
                        state = r.state,
                        duration_ms = started.elapsed().as_millis() as u64,
                        "delivery attempt"
                    );
                }
                (message, result)
            });
        }
        let mut done = Vec::with_capacity(count);
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((message, Ok(result))) => done.push((message, result)),
                Ok((message, Err(e))) => {
                    // Left under its lease: taken up again when the lease runs out.
                    tracing::warn!(message = %message.id, error = %e, "delivery attempt failed");
                }
                Err(e) => tracing::error!(error = %e, "a delivery task panicked"),
            }
        }
        // One transaction records the whole batch: states, events and what follows; plain
        // successes (no contact to update) in bulk.
        let now = self.services.clock.now_ms();
        let (plain, rest): (Vec<_>, Vec<_>) = done.iter().partition(|(message, result)| {
            result.state == "sent" && message.contact_id.is_none() && result.code.is_some()
        });
        let sent: Vec<messages::Sent<'_>> = plain
            .iter()
            .map(|(message, result)| messages::Sent {
                message,
                code: result.code.unwrap_or(250),
                reply: result.reply.as_deref().unwrap_or(""),
                ip_id: result.ip_id.as_deref(),
                route: result.route.as_deref().unwrap_or(""),
                links: result.links.as_deref().unwrap_or("[]"),
            })
            .collect();
        let mut tx = self.services.db.begin_bulk().await?;
        messages::finish_sent_many(&mut tx, &lease, &sent, now).await?;
        for (message, result) in rest {
            self.record(&mut tx, message, &lease, result, now).await?;
        }
        tx.commit().await?;
        Ok(count)
    }

    /// Claims and delivers batches until nothing is due (`stop` aside); the number handled.
    /// Two batches overlap: the next is claimed and starts sending while the previous one
    /// finishes and is recorded, so the database work does not stall the connections. A
    /// crash can therefore leave up to two batches accepted but not recorded (re-sent with
    /// the same Message-ID after the lease).
    async fn pipeline(
        self: &Arc<Self>,
        stop: Option<&tokio::sync::watch::Receiver<bool>>,
    ) -> Result<usize, StoreError> {
        let mut total = 0;
        let mut in_flight: Option<tokio::task::JoinHandle<Result<usize, StoreError>>> = None;
        let finish = |handle: tokio::task::JoinHandle<Result<usize, StoreError>>| async move {
            match handle.await {
                Ok(result) => result,
                Err(e) => {
                    tracing::error!(error = %e, "a delivery batch panicked");
                    Ok(0)
                }
            }
        };
        loop {
            let stopping = stop.is_some_and(|s| *s.borrow());
            let claimed = if stopping { None } else { self.claim().await? };
            match claimed {
                Some(claimed) => {
                    let next = tokio::spawn(self.clone().deliver(claimed));
                    if let Some(previous) = in_flight.replace(next) {
                        total += finish(previous).await?;
                    }
                }
                None => match in_flight.take() {
                    // What the last batch deferred may be due again: look once more.
                    Some(previous) if !stopping => total += finish(previous).await?,
                    Some(previous) => {
                        total += finish(previous).await?;
                        return Ok(total);
                    }
                    None => return Ok(total),
                },
            }
        }
    }

    /// Runs batches until nothing is due; the number handled.
    pub async fn run_until_idle(self: &Arc<Self>) -> Result<usize, StoreError> {
        self.pipeline(None).await
    }

    /// The node's delivery loop, until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.pipeline(Some(&stop)).await {
                tracing::error!(error = %e, "delivery batch failed");
            }
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.changed() => {}
            }
        }
        self.close_idle().await;
    }

    /// Closes the idle connections (QUIT).
    pub async fn close_idle(&self) {
        let all: Vec<Connection> = self
            .idle
            .lock()
            .await
            .drain()
            .flat_map(|(_, v)| v.into_iter().map(|(c, _)| c))
            .collect();
        for c in all {
            c.quit().await;
        }
    }

    /// Closes connections idle for longer than `IDLE_MAX`: peers drop idle sessions (and
    /// a dropped one would sit in CLOSE-WAIT here until reused).
    async fn close_stale(&self) {
        let mut stale = Vec::new();
        {
            let mut idle = self.idle.lock().await;
            for list in idle.values_mut() {
                let (keep, old): (Vec<_>, Vec<_>) = list
                    .drain(..)
                    .partition(|(_, since)| since.elapsed() < IDLE_MAX);
                *list = keep;
                stale.extend(old.into_iter().map(|(c, _)| c));
            }
            idle.retain(|_, list| !list.is_empty());
        }
        for c in stale {
            c.quit().await;
        }
    }

    /// An idle connection of `key` used recently enough to be worth trying.
    async fn take_idle(&self, key: &PoolKey) -> Option<Connection> {
        let mut idle = self.idle.lock().await;
        let list = idle.get_mut(key)?;
        while let Some((connection, since)) = list.pop() {
            if since.elapsed() < IDLE_MAX {
                return Some(connection);
            }
        }
        None
    }

    async fn put_idle(&self, key: &PoolKey, connection: Connection) {
        self.idle
            .lock()
            .await
            .entry(key.clone())
            .or_default()
            .push((connection, std::time::Instant::now()));
    }

    async fn record(
        &self,
        conn: &mut ee_store::AnyConnection,
        message: &Message,
        lease: &str,
        result: &Result1,
        now: i64,
    ) -> Result<(), StoreError> {
        let attempt = Attempt {
            state: result.state,
            reason: result.reason.as_deref(),
            code: result.code,
            reply: result.reply.as_deref(),
            ip_id: result.ip_id.as_deref(),
            route: result.route.as_deref(),
            next_attempt_at: result.next_attempt_at,
            links: result.links.as_deref(),
            uncounted: result.uncounted,
        };
        if !messages::finish(conn, message, lease, &attempt, now).await? {
            return Ok(());
        }
        let detail =
            json!({"message_id": message.id, "reply": result.reply, "ip_id": result.ip_id});
        match result.state {
            "sent" => {
                if let Some(contact) = &message.contact_id {
                    contact_store::add_event(
                        &mut *conn,
                        &message.tenant_id,
                        contact,
                        "SENT",
                        message.campaign_id.as_deref(),
                        &detail,
                        now,
                    )
                    .await?;
                }
            }
            "bounced" => {
                if let Some(ip_id) = &result.ip_id
                    && let Ok(ip) = ee_store::ips::get(&mut *conn, ip_id, None).await
                {
                    let delta = ee_core::warmup::Traffic {
                        sent: 0,
                        bounced: 1,
                        complained: 0,
                    };
                    if let Err(e) = crate::infra::record_traffic(
                        &mut *conn,
                        &ip,
                        delta,
                        &self.services.infra,
                        now,
                    )
                    .await
                    {
                        tracing::warn!(error = %e, "bounce not counted for the IP");
                    }
                }
                let code = result.code.unwrap_or(0) as u16;
                if rules::is_address_failure(code, result.reply.as_deref().unwrap_or("")) {
                    suppressions::suppress_address(
                        &mut *conn,
                        &message.tenant_id,
                        &message.to_email,
                        "bounced",
                        Some("smtp"),
                        &detail,
                        now,
                    )
                    .await?;
                } else if let Some(contact) = &message.contact_id {
                    contact_store::add_event(
                        &mut *conn,
                        &message.tenant_id,
                        contact,
                        "BOUNCED",
                        message.campaign_id.as_deref(),
                        &detail,
                        now,
                    )
                    .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn retry(&self, message: &Message, mut result: Result1) -> Result1 {
        let now = self.services.clock.now_ms();
        match self.services.delivery.retry.next_attempt(
            message.attempts.max(1) as u32,
            message.queued_at,
            now,
        ) {
            Some(at) => {
                result.state = "deferred";
                result.next_attempt_at = Some(at);
            }
            None => {
                result.state = "expired";
                result.reason = Some(format!(
                    "not delivered within {} h",
                    self.services.delivery.retry.max_age_secs / 3600
                ));
            }
        }
        result
    }

    async fn attempt(
        &self,
        context: &BatchContext,
        message: &Message,
    ) -> Result<Result1, StoreError> {
        let services = &self.services;
        let now = services.clock.now_ms();
        if now - message.queued_at > services.delivery.retry.max_age_secs * 1000 {
            let mut r = Result1::new("expired");
            r.reason = Some("older than the maximum age".into());
            return Ok(r);
        }
        // Suppression is checked again: the address may have bounced or unsubscribed since.
        if let Some(reason) = context
            .suppressed
            .get(&(message.tenant_id.clone(), message.to_email.clone()))
        {
            let mut r = Result1::new("suppressed");
            r.reason = Some(format!("suppressed ({reason})"));
            return Ok(r);
        }
        let Some(tenant_context) = context.tenants.get(&message.tenant_id) else {
            let mut r = Result1::new("failed");
            r.reason = Some("the tenant is gone".into());
            return Ok(r);
        };
        let tenant = &tenant_context.tenant;
        let settings = &tenant_context.settings;
        let relay = match &tenant_context.relay {
            Ok(relay) => relay.clone(),
            Err(reason) => {
                let mut r = Result1::new("failed");
                r.reason = Some(reason.clone());
                return Ok(r);
            }
        };
        match &tenant_context.mailwizz {
            Ok(Some((instance, client))) => {
                return Ok(self
                    .send_by_mailwizz(message, tenant_context, instance, client)
                    .await);
            }
            Ok(None) => {}
            Err(reason) => {
                let mut r = Result1::new("failed");
                r.reason = Some(reason.clone());
                return Ok(r);
            }
        }

        // Where it goes: the recipient domain's MX hosts (also for the relay: it names
        // the provider whose limits apply).
        let domain = domain_of(&message.to_email).to_owned();
        let (outcome, hosts) = context.mx(services, &domain, now).await?;
        match outcome {
            MxOutcome::NullMx | MxOutcome::None if relay.is_none() => {
                // RFC 7505 §4.1: 556 5.1.10 for a domain that declares it takes no mail.
                let why = if outcome == MxOutcome::NullMx {
                    "has a null MX"
                } else {
                    "has no MX and no address"
                };
                let mut r = Result1::new("bounced");
                r.code = Some(556);
                r.reply = Some(format!("556 5.1.10 {domain} {why}: it accepts no mail"));
                return Ok(r);
            }
            MxOutcome::Error if relay.is_none() => {
                let mut r = self.retry(message, Result1::new("deferred"));
                r.reason = Some(format!("MX look-up for {domain} failed"));
                return Ok(r);
            }
            _ => {}
        }
        let provider = hosts
            .first()
            .map_or(Provider::Other, |h| Provider::of_mx(h));

        let Some(chosen) = self.choose_ip(context, &tenant.id, provider).await? else {
            let mut r = Result1::new("deferred");
            r.uncounted = true;
            r.reason = Some("no sending IP with quota left: waiting for the next hour".into());
            r.next_attempt_at = Some((now / 3_600_000 + 1) * 3_600_000);
            return Ok(r);
        };

        // The message as it goes out: tracking, headers, DKIM.
        let (data, links) = match self
            .build(message, tenant_context, relay.is_some(), &chosen)
            .await
        {
            Ok(built) => built,
            Err(reason) => {
                self.release(&chosen).await?;
                let mut r = Result1::new("failed");
                r.reason = Some(reason);
                return Ok(r);
            }
        };
        let return_path = settings
            .return_path
            .clone()
            .unwrap_or_else(|| message.from_email.clone());

        let mut refused_mx: Option<String> = None;
        let (pool_key, endpoints, route) = match &relay {
            Some(relay) => {
                let credentials = match (&relay.username, &relay.password_sealed) {
                    (Some(user), Some(sealed)) => {
                        let password = services
                            .delivery
                            .sealer
                            .as_ref()
                            .and_then(|s| s.open(RELAY_PASSWORD_PURPOSE, sealed).ok())
                            .and_then(|p| String::from_utf8(p).ok());
                        let Some(password) = password else {
                            self.release(&chosen).await?;
                            let mut r = Result1::new("failed");
                            r.reason = Some("the relay password cannot be opened".into());
                            return Ok(r);
                        };
                        Some((user.clone(), password))
                    }
                    _ => None,
                };
                let address = match relay_address(&services.outbound, &relay.host, relay.port).await
                {
                    Ok(address) => address,
                    Err(reason) => {
                        self.release(&chosen).await?;
                        let mut r = Result1::new("failed");
                        r.reason = Some(reason);
                        return Ok(r);
                    }
                };
                let endpoint = Endpoint {
                    address,
                    port: relay.port as u16,
                    tls_name: relay.host.clone(),
                    security: Security::parse(&relay.tls).unwrap_or(Security::Starttls),
                    credentials,
                    local_ip: None,
                    helo: chosen
                        .hostname
                        .clone()
                        .unwrap_or_else(|| helo_default(&services.delivery.public_url)),
                    timeout: services.delivery.timeout,
                    allow_invalid_certs: services.delivery.allow_invalid_certs,
                };
                (
                    ("relay".to_owned(), relay.id.clone()),
                    vec![endpoint],
                    format!("relay:{}", relay.name),
                )
            }
            None => {
                let mut endpoints = Vec::new();
                let mut refused = None;
                for host in hosts.iter().take(3) {
                    let addresses = services.resolver.addresses(host).await.unwrap_or_default();
                    let family_ok = |a: &IpAddr| {
                        chosen
                            .address
                            .is_none_or(|local| local.is_ipv4() == a.is_ipv4())
                    };
                    // A recipient's domain may point its MX anywhere, this machine included
                    // (where a local MTA might relay for it): the outbound policy applies.
                    let mut allowed = |a: &IpAddr| match services.outbound.check_ip(*a) {
                        Ok(()) => true,
                        Err(e) => {
                            refused =
                                Some(format!("MX host {} is at {e}", host.trim_end_matches('.')));
                            false
                        }
                    };
                    if let Some(address) = addresses
                        .into_iter()
                        .filter(|a| family_ok(a))
                        .find(|a| allowed(a))
                    {
                        endpoints.push(Endpoint {
                            address: address.to_string(),
                            port: services.delivery.mx_port,
                            tls_name: host.trim_end_matches('.').to_owned(),
                            security: Security::Opportunistic,
                            credentials: None,
                            local_ip: chosen.address,
                            helo: chosen.hostname.clone().unwrap_or_else(|| {
                                chosen.ip_text.as_ref().map_or_else(
                                    || helo_default(&services.delivery.public_url),
                                    |ip| format!("[{ip}]"),
                                )
                            }),
                            timeout: services.delivery.timeout,
                            allow_invalid_certs: true,
                        });
                    }
                }
                refused_mx = refused;
                (
                    (
                        format!("direct:{}", chosen.ip_id.clone().unwrap_or_default()),
                        domain.clone(),
                    ),
                    endpoints,
                    "direct".to_owned(),
                )
            }
        };
        if endpoints.is_empty() {
            self.release(&chosen).await?;
            if let Some(reason) = refused_mx {
                let mut r = Result1::new("failed");
                r.reason = Some(reason);
                return Ok(r);
            }
            let mut r = self.retry(message, Result1::new("deferred"));
            r.reason = Some(format!("no address for the MX hosts of {domain}"));
            return Ok(r);
        }

        let slot = self.slot(&chosen, provider).await;
        let _connection_permit = slot.acquire_owned().await;
        let mut result = self
            .send_over(
                &pool_key,
                &endpoints,
                &return_path,
                &message.to_email,
                &data,
            )
            .await;
        result.ip_id = chosen.ip_id.clone();
        result.route = Some(route);
        result.links = Some(serde_json::to_string(&links).unwrap_or_else(|_| "[]".into()));
        if result.state == "deferred" {
            let reason = result.reason.take();
            let reached = result.reached_server;
            result = self.retry(message, result);
            result.reason = result.reason.or(reason);
            if !reached {
                // Nothing reached a server: the send does not count against the quota.
                self.release(&chosen).await?;
            }
        }
        Ok(result)
    }

    /// Sends over an idle connection of `key` or a new one to the first endpoint that
    /// answers. A pooled connection that turns out closed before the message left (the
    /// peer dropped it while idle, or restarted) is replaced at once by a new one, within
    /// the same attempt: nothing was delivered, so nothing is sent twice.
    async fn send_over(
        &self,
        key: &PoolKey,
        endpoints: &[Endpoint],
        from: &str,
        to: &str,
        data: &[u8],
    ) -> Result1 {
        let mut connection = self.take_idle(key).await;
        let mut reused = connection.is_some();
        loop {
            let mut last_error = String::new();
            if connection.is_none() {
                for endpoint in endpoints {
                    match Connection::open(endpoint).await {
                        Ok(c) => {
                            connection = Some(c);
                            break;
                        }
                        Err(SmtpError::Rejected(reply)) => {
                            // Refused at greeting or EHLO: the reply says what to do.
                            let mut r = reply_result(reply.code, reply.text);
                            r.reached_server = true;
                            return r;
                        }
                        Err(SmtpError::Network(e) | SmtpError::Unsent(e)) => {
                            last_error = format!("{}:{}: {e}", endpoint.address, endpoint.port);
                        }
                    }
                }
            }
            let Some(mut c) = connection.take() else {
                let mut r = Result1::new("deferred");
                r.reason = Some(format!("cannot connect: {last_error}"));
                return r;
            };
            let mut result = match c.send(from, to, data).await {
                Ok(reply) => {
                    self.put_idle(key, c).await;
                    let mut r = Result1::new("sent");
                    r.code = Some(i64::from(reply.code));
                    r.reply = Some(reply.text);
                    r
                }
                Err(SmtpError::Rejected(reply)) => {
                    self.put_idle(key, c).await;
                    reply_result(reply.code, reply.text)
                }
                Err(SmtpError::Unsent(e)) if reused => {
                    tracing::debug!(error = %e, "a pooled connection was closed; sending on a new one");
                    reused = false;
                    continue;
                }
                Err(SmtpError::Network(e) | SmtpError::Unsent(e)) => {
                    let mut r = Result1::new("deferred");
                    r.reason = Some(format!("connection lost: {e}"));
                    r
                }
            };
            result.reached_server = true;
            return result;
        }
    }

    async fn slot(&self, chosen: &Chosen, provider: Provider) -> Arc<Semaphore> {
        let limit = self
            .services
            .delivery
            .limits
            .of(provider)
            .connections
            .max(1) as usize;
        self.slots
            .lock()
            .await
            .entry((chosen.ip_id.clone().unwrap_or_default(), provider))
            .or_insert_with(|| Arc::new(Semaphore::new(limit)))
            .clone()
    }

    /// The tenant's IP with the most quota left that can take one more message towards
    /// this provider this hour; the send is counted at once.
    async fn choose_ip(
        &self,
        context: &BatchContext,
        tenant_id: &str,
        provider: Provider,
    ) -> Result<Option<Chosen>, StoreError> {
        let services = &self.services;
        let now = services.clock.now_ms();
        let day = ee_core::timefmt::epoch_day(now);
        let hour = now / 3_600_000;
        let ips = context.ips(services, tenant_id, now).await?;
        if ips.is_empty() {
            // A tenant without IPs of its own sends from the host's address, unshaped.
            return Ok(Some(Chosen {
                ip_id: None,
                address: None,
                hostname: None,
                ip_text: None,
                provider,
                day,
                hour,
            }));
        }
        let hourly = i64::from(services.delivery.limits.of(provider).per_hour);
        let mut tried: Vec<String> = Vec::new();
        let spin = self.spin.fetch_add(1, Ordering::Relaxed);
        loop {
            // The order comes from what is left as this batch sees it; the reservation in
            // the database is what counts.
            let pick = {
                let quotas = context.quotas.lock().await;
                let list = &quotas[tenant_id];
                let candidates: Vec<IpCandidate<'_>> = list
                    .iter()
                    .filter(|q| !tried.contains(&q.ip.id))
                    .map(|q| IpCandidate {
                        id: &q.ip.id,
                        remaining: q.remaining,
                    })
                    .collect();
                rules::pick_ip(&candidates, spin)
                    .and_then(|id| list.iter().find(|q| q.ip.id == id).cloned())
            };
            let Some(quota) = pick else {
                return Ok(None);
            };
            let mut conn = services.db.pool().acquire().await?;
            let reserved = messages::reserve_send(
                &mut conn,
                &quota.ip.id,
                day,
                quota.daily_quota,
                provider.as_str(),
                hour,
                hourly,
            )
            .await?;
            drop(conn);
            let mut quotas = context.quotas.lock().await;
            if let Some(entry) = quotas
                .get_mut(tenant_id)
                .and_then(|list| list.iter_mut().find(|q| q.ip.id == quota.ip.id))
            {
                entry.remaining = if reserved {
                    entry.remaining.map(|r| r - 1)
                } else if entry.daily_quota.is_some() {
                    Some(0)
                } else {
                    entry.remaining
                };
            }
            drop(quotas);
            if reserved {
                return Ok(Some(Chosen {
                    ip_id: Some(quota.ip.id.clone()),
                    address: quota.ip.ip_address.parse().ok(),
                    hostname: quota.ip.hostname.clone(),
                    ip_text: Some(quota.ip.ip_address.clone()),
                    provider,
                    day,
                    hour,
                }));
            }
            tried.push(quota.ip.id.clone());
        }
    }

    async fn release(&self, chosen: &Chosen) -> Result<(), StoreError> {
        if let Some(ip_id) = &chosen.ip_id {
            let mut conn = self.services.db.pool().acquire().await?;
            messages::release_send(
                &mut conn,
                ip_id,
                chosen.day,
                chosen.provider.as_str(),
                chosen.hour,
            )
            .await?;
        }
        Ok(())
    }

    async fn signer(&self, tenant_id: &str, domain: &str) -> Result<Option<Arc<Signer>>, String> {
        let key = (tenant_id.to_owned(), domain.to_owned());
        let now = self.services.clock.now_ms();
        let cached = self.signers.lock().await.get(&key).cloned();
        if let Some((_, signer, checked)) = &cached
            && now - checked < SIGNER_RECHECK_MS
        {
            return Ok(signer.clone());
        }
        let mut conn = self
            .services
            .db
            .pool()
            .acquire()
            .await
            .map_err(|e| e.to_string())?;
        let stored = domains::active_key_for(&mut conn, tenant_id, domain)
            .await
            .map_err(|e| e.to_string())?;
        drop(conn);
        let stored_id = stored.as_ref().map(|k| k.id.clone());
        // The same key as before: keep its signer (parsing a key is not free).
        if let Some((id, signer, _)) = cached
            && id == stored_id
        {
            self.signers
                .lock()
                .await
                .insert(key, (id, signer.clone(), now));
            return Ok(signer);
        }
        let signer = match stored {
            None => None,
            Some(k) => {
                let sealer = self
                    .services
                    .delivery
                    .sealer
                    .as_ref()
                    .ok_or("no master key to open the DKIM key")?;
                let pem = sealer
                    .open(ee_core::dkim::SEAL_PURPOSE, &k.private_key_sealed)
                    .map_err(|e| format!("the DKIM key of {domain} cannot be opened: {e}"))?;
                let pem = String::from_utf8(pem).map_err(|e| e.to_string())?;
                let algorithm = ee_mail::dkim::Algorithm::parse(&k.algorithm)
                    .ok_or_else(|| format!("unknown DKIM algorithm {}", k.algorithm))?;
                Some(Arc::new(
                    Signer::new(algorithm, &pem, domain, &k.selector).map_err(|e| e.to_string())?,
                ))
            }
        };
        self.signers
            .lock()
            .await
            .insert(key, (stored_id, signer.clone(), now));
        Ok(signer)
    }

    /// The size of a message as it would go out now (tracking, headers, DKIM): benchmarks.
    pub async fn render_for_size(&self, message: &Message) -> Result<usize, String> {
        let mut conn = self
            .services
            .db
            .pool()
            .acquire()
            .await
            .map_err(|e| e.to_string())?;
        let tenant = TenantContext::load(&self.services, &mut conn, &message.tenant_id)
            .await
            .map_err(|e| e.to_string())?;
        drop(conn);
        let now = self.services.clock.now_ms();
        let chosen = Chosen {
            ip_id: None,
            address: None,
            hostname: None,
            ip_text: None,
            provider: Provider::Other,
            day: ee_core::timefmt::epoch_day(now),
            hour: now / 3_600_000,
        };
        let (data, _) = self.build(message, &tenant, false, &chosen).await?;
        Ok(data.len())
    }

    /// The HTML body as it goes out: links rewritten and the open pixel added when the
    /// message tracks them; the original links by index.
    fn tracked_html(&self, message: &Message, unsubscribe: &str) -> (Option<String>, Vec<String>) {
        let settings = &self.services.delivery;
        let base = settings.public_url.trim_end_matches('/');
        let mut links = Vec::new();
        let html = message.html.as_deref().map(|html| {
            let mut body = html.to_owned();
            if message.track_clicks != 0 {
                let (rewritten, found) =
                    tracking::rewrite_links(&body, Some(unsubscribe), |i, _| {
                        format!(
                            "{base}/t/c/{}",
                            tracking::sign(&settings.tracking_key, Kind::Click, &message.id, i)
                        )
                    });
                body = rewritten;
                links = found;
            }
            if message.track_opens != 0 {
                body = tracking::add_open_pixel(
                    &body,
                    &format!(
                        "{base}/t/o/{}",
                        tracking::sign(&settings.tracking_key, Kind::Open, &message.id, 0)
                    ),
                );
            }
            body
        });
        (html, links)
    }

    /// MailWizz mode: the message handed to the instance's transactional-emails endpoint
    /// (MailWizz's delivery servers send it). 5xx and time-outs are retried on our schedule,
    /// a refusal fails the message with MailWizz's reason.
    async fn send_by_mailwizz(
        &self,
        message: &Message,
        tenant: &TenantContext,
        instance: &ee_store::mailwizz::Instance,
        client: &ee_connectors::mailwizz::Client,
    ) -> Result1 {
        use ee_connectors::mailwizz::MailWizzError;
        let unsubscribe = unsubscribe_url(&self.services.delivery, &message.id);
        let (html, links) = self.tracked_html(message, &unsubscribe);
        let html = html.unwrap_or_else(|| {
            let mut body = String::from("<pre>");
            template::escape_html_into(message.text_body.as_deref().unwrap_or(""), &mut body);
            body.push_str("</pre>");
            body
        });
        let mut email = json!({
            "to_name": message.to_name.clone().unwrap_or_else(|| message.to_email.clone()),
            "to_email": message.to_email,
            "from_name": message.from_name.clone().unwrap_or_else(|| tenant.tenant.name.clone()),
            "from_email": message.from_email,
            "subject": message.subject,
            "body": html,
            "send_at": ee_core::timefmt::datetime_utc(self.services.clock.now_ms()),
        });
        if let Some(text) = &message.text_body {
            email["plain_text"] = json!(text);
        }
        if let Some(reply_to) = &message.reply_to {
            email["reply_to_name"] = json!(reply_to);
            email["reply_to_email"] = json!(reply_to);
        }
        let route = format!("mailwizz:{}", instance.name);
        let mut result = match client.create_transactional_email(&email).await {
            Ok(uid) => {
                let mut r = Result1::new("sent");
                r.reply = Some(format!("MailWizz email_uid {uid}"));
                r
            }
            Err(MailWizzError::Unavailable(reason)) => {
                let mut r = self.retry(message, Result1::new("deferred"));
                r.reason = Some(format!("MailWizz unavailable: {reason}"));
                r
            }
            Err(MailWizzError::Unauthorized) => {
                // A key to fix, not a message to lose: retried on the schedule.
                let mut r = self.retry(message, Result1::new("deferred"));
                r.reason = Some(format!(
                    "MailWizz instance `{}` refused the API key",
                    instance.name
                ));
                r
            }
            Err(e) => {
                let mut r = Result1::new("failed");
                r.reason = Some(e.to_string());
                r
            }
        };
        result.route = Some(route);
        result.links = Some(serde_json::to_string(&links).unwrap_or_else(|_| "[]".into()));
        result
    }

    async fn build(
        &self,
        message: &Message,
        tenant: &TenantContext,
        relay: bool,
        chosen: &Chosen,
    ) -> Result<(Vec<u8>, Vec<String>), String> {
        let settings = &self.services.delivery;
        let unsubscribe = unsubscribe_url(settings, &message.id);
        let (html, links) = self.tracked_html(message, &unsubscribe);
        // No internal identifier (the tenant's name) goes out; X-Virtual-MTA is for
        // PowerMTA, which strips it.
        let mut headers: Vec<(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> = Vec::new();
        if let Some(campaign) = &message.campaign_id {
            headers.push(("X-Campaign-ID".into(), campaign.as_str().into()));
        }
        if relay && let Some(ip) = &chosen.ip_text {
            headers.push(("X-Virtual-MTA".into(), rules::virtual_mta_name(ip).into()));
        }
        let extra: BTreeMap<String, String> =
            serde_json::from_str(&message.headers).unwrap_or_default();
        for (k, v) in extra {
            headers.push((k.into(), v.into()));
        }
        let mailto = tenant.settings.unsubscribe_mailto.clone();
        let outgoing = Outgoing {
            from_email: &message.from_email,
            from_name: message.from_name.as_deref(),
            to_email: &message.to_email,
            to_name: message.to_name.as_deref(),
            reply_to: message.reply_to.as_deref(),
            subject: &message.subject,
            html: html.as_deref(),
            text: message.text_body.as_deref(),
            message_id: &message.message_id_header,
            date_secs: self.services.clock.now_ms() / 1000,
            unsubscribe_url: Some(&unsubscribe),
            unsubscribe_mailto: mailto.as_deref(),
            headers,
        };
        let raw = ee_mail::message::build(&outgoing).map_err(|e| e.to_string())?;
        let signed = match self
            .signer(&message.tenant_id, domain_of(&message.from_email))
            .await?
        {
            Some(signer) => signer.sign(&raw).map_err(|e| e.to_string())?,
            None => raw,
        };
        Ok((signed, links))
    }
}

/// The address a relay's host stands for, if the outbound policy lets us connect to it:
/// checked at each connection, not only when the relay was saved, since a name can come
/// to resolve elsewhere.
async fn relay_address(
    policy: &ee_core::outbound::OutboundPolicy,
    host: &str,
    port: i64,
) -> Result<String, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        policy.check_ip(ip).map_err(|e| format!("relay {e}"))?;
        return Ok(ip.to_string());
    }
    let port = u16::try_from(port).unwrap_or(25);
    let found = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("the relay's host `{host}` does not resolve: {e}"))?;
    let mut refused = None;
    for address in found {
        match policy.check_ip(address.ip()) {
            Ok(()) => return Ok(address.ip().to_string()),
            Err(e) => refused = Some(e),
        }
    }
    Err(match refused {
        Some(e) => format!("relay `{host}` resolves to {}", e),
        None => format!("the relay's host `{host}` has no address"),
    })
}

fn helo_default(public_url: &str) -> String {
    public_url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', ':']).next())
        .filter(|h| !h.is_empty())
        .unwrap_or("localhost")
        .to_owned()
}

fn reply_result(code: u16, text: String) -> Result1 {
    let state = match rules::classify(code) {
        Outcome::Sent => "sent",
        Outcome::Deferred => "deferred",
        Outcome::Bounced => "bounced",
    };
    let mut r = Result1::new(state);
    r.code = Some(i64::from(code));
    r.reply = Some(text);
    r
}
