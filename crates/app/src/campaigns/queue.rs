//! A batch of a campaign's recipients handed to the queue at once: what every recipient
//! of the batch needs is read in a few queries (the tenant, its templates, the contacts,
//! the suppressions, the frequency cap, the messages a retried batch made already), and
//! the messages, their first events, the ledger and the counters are written in one
//! transaction. The same rules as one message's queueing (`messages::queue`): the template
//! in the recipient's language through the fallback chain (then the category in English,
//! then the campaign's own template), suppressed and capped addresses recorded as such,
//! the sender one of the tenant's signing domains; the body is rendered when sent.

use std::collections::{BTreeMap, HashMap};

use ee_core::campaign::RecipientState;
use ee_core::delivery::MessageState;
use ee_core::template::{self, Candidate};
use ee_store::campaigns::{self as store, Campaign, Pending};
use ee_store::messages::NewMessage;
use ee_store::templates::{self, Template};
use ee_store::{
    Scope, StoreError, campaign_batches, contact_batches, message_queries, suppressions,
};

use crate::campaigns::rendering::{declared_variables, describe, recipient_values};
use crate::campaigns::settings::Variant;
use crate::delivery::{domain_of, tenant_delivery, unsubscribe_url};
use crate::{AppError, Services};

/// What a batch came to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Queued {
    pub queued: usize,
    pub skipped: usize,
    pub failed: usize,
}

/// A recipient's message key: one message per recipient and attempt.
pub fn idempotency_key(campaign_id: &str, recipient: &Pending) -> String {
    format!(
        "campaign:{campaign_id}:{}:{}",
        recipient.contact_id, recipient.attempt
    )
}

/// The tenant's active templates, and the choice per (base template, language): the one
/// rule by which a campaign's recipient gets a template (queued here, or mirrored into
/// MailWizz by `campaign_mailwizz`).
pub(crate) struct Templates {
    all: Vec<Template>,
    chosen: HashMap<(String, String), Option<Template>>,
}

impl Templates {
    /// The tenant's active templates, read once.
    pub(crate) async fn load(
        conn: &mut ee_store::AnyConnection,
        tenant_id: &str,
    ) -> Result<Self, StoreError> {
        let all = templates::list(
            conn,
            &templates::Filter {
                tenant_id: Some(tenant_id),
                active: true,
                ..Default::default()
            },
        )
        .await?;
        Ok(Self {
            all,
            chosen: HashMap::new(),
        })
    }

    /// The template a recipient in `language` gets for `base`: the base's category in the
    /// language (fallback chain), else the category in English, else the base itself.
    pub(crate) fn choose(&mut self, base: &Template, language: &str) -> Template {
        let key = (base.id.clone(), language.to_owned());
        if let Some(found) = self.chosen.get(&key) {
            return found.clone().unwrap_or_else(|| base.clone());
        }
        let found = base.category.as_deref().and_then(|category| {
            let candidates: Vec<Candidate<'_>> = self
                .all
                .iter()
                .map(|t| Candidate {
                    id: &t.id,
                    category: t.category.as_deref(),
                    language: &t.language,
                })
                .collect();
            let id = template::select(&candidates, language, Some(category))?
                .0
                .to_owned();
            self.all.iter().find(|t| t.id == id).cloned()
        });
        self.chosen.insert(key, found.clone());
        found.unwrap_or_else(|| base.clone())
    }
}

/// Queues one message per recipient of the batch (its A/B variant applied); returns what
/// became of them. A recipient whose message cannot be made is marked failed with why.
pub async fn queue_batch(
    services: &Services,
    campaign: &Campaign,
    batch: &[Pending],
    variants: &[Variant],
) -> Result<Queued, AppError> {
    let now = services.clock.now_ms();
    let mut conn = services.db.pool().acquire().await?;
    let tenant = ee_store::tenants::get(&mut conn, &campaign.tenant_id).await?;
    let settings = tenant_delivery(&tenant);
    let mut choice = Templates::load(&mut conn, &tenant.id).await?;
    // The base template of each variant (and of recipients without one).
    let mut bases: HashMap<Option<String>, Result<Template, String>> = HashMap::new();
    let own = campaign.template_id.clone().unwrap_or_default();
    for (name, id) in variants
        .iter()
        .map(|v| {
            (
                Some(v.name.clone()),
                v.template_id.clone().unwrap_or(own.clone()),
            )
        })
        .chain([(None, own.clone())])
    {
        let base = match templates::get(&mut conn, &id, Scope::Tenant(&tenant.id)).await {
            Ok(t) => Ok(t),
            Err(StoreError::NotFound) => Err(format!("template `{id}` not found")),
            Err(e) => return Err(e.into()),
        };
        bases.insert(name, base);
    }
    let ids: Vec<String> = batch.iter().map(|p| p.contact_id.clone()).collect();
    let contacts = contact_batches::get_many(&mut conn, &ids).await?;
    let hashes: Vec<String> = batch
        .iter()
        .map(|p| ee_core::contacts::address_hash(&p.email))
        .collect();
    let suppressed = suppressions::reasons_for(&mut conn, &tenant.id, &hashes).await?;
    let emails: Vec<String> = batch.iter().map(|p| p.email.clone()).collect();
    let recent = match settings.frequency_cap {
        Some(cap) => {
            let since = now - i64::from(cap.hours) * 3_600_000;
            message_queries::recent_counts_to(&mut conn, &tenant.id, &emails, since).await?
        }
        None => HashMap::new(),
    };
    let keys: Vec<String> = batch
        .iter()
        .map(|p| idempotency_key(&campaign.id, p))
        .collect();
    let existing = message_queries::ids_by_key(&mut conn, &tenant.id, &keys).await?;
    let mut senders: HashMap<String, Result<(), String>> = HashMap::new();

    // Each recipient: its message to write, or why there is none.
    let mut outcomes: Vec<(&Pending, Result<NewMessage, String>)> = Vec::new();
    for (recipient, (hash, key)) in batch.iter().zip(hashes.iter().zip(&keys)) {
        if existing.contains_key(key) {
            continue;
        }
        let variant = variants
            .iter()
            .find(|v| recipient.variant.as_deref() == Some(v.name.as_str()));
        let base = match &bases[&variant.map(|v| v.name.clone())] {
            Ok(t) => t,
            Err(why) => {
                outcomes.push((recipient, Err(why.clone())));
                continue;
            }
        };
        let contact = contacts.get(&recipient.contact_id);
        let language = contact
            .and_then(|c| c.language.as_deref())
            .and_then(template::language)
            .unwrap_or(template::DEFAULT_LANGUAGE);
        let chosen = choice.choose(base, language);
        let id = ee_core::ids::new_id();
        let mut values = recipient_values(
            contact,
            &BTreeMap::new(),
            unsubscribe_url(&services.delivery, &id),
            now,
        );
        values.insert("EMAIL".into(), recipient.email.clone());
        let subject = variant
            .and_then(|v| v.subject.as_deref())
            .filter(|s| !s.trim().is_empty())
            .unwrap_or(&chosen.subject);
        let rendered = match ee_core::rendering::render(
            subject,
            None,
            None,
            &chosen.language,
            &declared_variables(&chosen.variables),
            &values,
        ) {
            Ok(r) => r,
            Err(problems) => {
                outcomes.push((recipient, Err(format!("template: {}", describe(&problems)))));
                continue;
            }
        };
        let Some(from_email) = chosen
            .from_email
            .clone()
            .or_else(|| settings.default_from_email.clone())
        else {
            outcomes.push((
                recipient,
                Err("from_email: no sender: set it on the template, or set the tenant's default_from_email".into()),
            ));
            continue;
        };
        if !senders.contains_key(&from_email) {
            let checked = crate::queue::messages::check_signing_domain(
                &mut conn,
                &tenant.id,
                &settings,
                &from_email,
            )
            .await;
            let checked = match checked {
                Err(crate::delivery::QueueError::Store(e)) => return Err(e.into()),
                other => other.map_err(|e| e.to_string()),
            };
            senders.insert(from_email.clone(), checked);
        }
        if let Err(why) = &senders[&from_email] {
            outcomes.push((recipient, Err(why.clone())));
            continue;
        }
        let mut reason = suppressed.get(hash).map(|r| format!("suppressed ({r})"));
        if reason.is_none()
            && let Some(cap) = settings.frequency_cap
        {
            let n = recent.get(&recipient.email).copied().unwrap_or(0);
            if n >= i64::from(cap.max) {
                reason = Some(format!(
                    "frequency cap: {n} messages in the last {} h",
                    cap.hours
                ));
            }
        }
        let state = if reason.is_some() {
            MessageState::Suppressed
        } else {
            MessageState::Queued
        };
        outcomes.push((
            recipient,
            Ok(NewMessage {
                message_id_header: format!("{id}@{}", domain_of(&from_email)),
                id,
                tenant_id: tenant.id.clone(),
                contact_id: contact.map(|c| c.id.clone()),
                campaign_id: Some(campaign.id.clone()),
                template_id: Some(chosen.id.clone()),
                kind: ee_core::delivery::MessageKind::Campaign,
                idempotency_key: Some(key.clone()),
                to_email: recipient.email.clone(),
                to_name: contact.and_then(|c| c.first_name.clone()),
                from_email,
                from_name: variant
                    .and_then(|v| v.from_name.clone())
                    .or_else(|| chosen.from_name.clone())
                    .or_else(|| settings.default_from_name.clone()),
                reply_to: chosen
                    .reply_to
                    .clone()
                    .or_else(|| settings.default_reply_to.clone()),
                subject: rendered.subject,
                html: None,
                text_body: None,
                language: Some(chosen.language.clone()),
                headers: "{}".into(),
                track_opens: settings.track_opens,
                track_clicks: settings.track_clicks,
                state: state.as_str().to_owned(),
                state_reason: reason,
                not_before: now,
                template_version: Some(chosen.version),
            }),
        ));
    }
    drop(conn);
    write(services, campaign, batch, &keys, &existing, outcomes, now).await
}

/// Writes a batch's messages, their first events, the ledger and the counters in one
/// transaction, each in bulk (`store::campaign_batches`).
async fn write(
    services: &Services,
    campaign: &Campaign,
    batch: &[Pending],
    keys: &[String],
    existing: &HashMap<String, String>,
    outcomes: Vec<(&Pending, Result<NewMessage, String>)>,
    now: i64,
) -> Result<Queued, AppError> {
    let mut tx = services.db.begin_bulk().await?;
    let mut done = Queued::default();
    let mut languages: BTreeMap<String, i64> = BTreeMap::new();
    let new: Vec<&NewMessage> = outcomes
        .iter()
        .filter_map(|(_, o)| o.as_ref().ok())
        .collect();
    let inserted = campaign_batches::insert_messages(&mut tx, &new, now).await?;
    // Another node queued some first: the ledger takes their messages.
    let raced: Vec<String> = new
        .iter()
        .filter(|m| !inserted.contains(&m.id))
        .filter_map(|m| m.idempotency_key.clone())
        .collect();
    let theirs = if raced.is_empty() {
        HashMap::new()
    } else {
        message_queries::ids_by_key(&mut tx, &campaign.tenant_id, &raced).await?
    };
    let events: Vec<campaign_batches::FirstEvent<'_>> = new
        .iter()
        .filter(|m| inserted.contains(&m.id))
        .map(|m| campaign_batches::FirstEvent {
            message_id: &m.id,
            tenant_id: &m.tenant_id,
            state: &m.state,
            reason: m.state_reason.as_deref(),
        })
        .collect();
    campaign_batches::add_first_events(&mut tx, &events, now).await?;

    let mut settled: Vec<campaign_batches::Settled<'_>> = Vec::with_capacity(batch.len());
    // Messages a previous run of this batch made: the ledger takes them up.
    for (recipient, key) in batch.iter().zip(keys) {
        if let Some(id) = existing.get(key) {
            settled.push(campaign_batches::Settled {
                contact_id: &recipient.contact_id,
                state: RecipientState::Queued,
                message_id: Some(id),
                detail: None,
            });
        }
    }
    for (recipient, outcome) in &outcomes {
        let (state, message_id, detail) = match outcome {
            Ok(m) => {
                let suppressed = m.state == MessageState::Suppressed.as_str();
                let id = if inserted.contains(&m.id) {
                    if !suppressed && let Some(language) = &m.language {
                        *languages.entry(language.clone()).or_default() += 1;
                    }
                    m.id.as_str()
                } else {
                    let key = m.idempotency_key.as_deref().unwrap_or_default();
                    theirs.get(key).map_or(m.id.as_str(), String::as_str)
                };
                let state = if suppressed {
                    RecipientState::Skipped
                } else {
                    RecipientState::Queued
                };
                (state, Some(id), m.state_reason.as_deref())
            }
            Err(why) => (RecipientState::Failed, None, Some(why.as_str())),
        };
        settled.push(campaign_batches::Settled {
            contact_id: &recipient.contact_id,
            state,
            message_id,
            detail,
        });
    }
    // Counted once: a recipient another run settled first is that run's to count.
    let mine = campaign_batches::settle(&mut tx, &campaign.id, &settled, now).await?;
    for s in settled.iter().filter(|s| mine.contains(s.contact_id)) {
        match s.state {
            RecipientState::Queued => done.queued += 1,
            RecipientState::Skipped => done.skipped += 1,
            _ => done.failed += 1,
        }
    }
    for (name, n) in [
        ("queued", done.queued),
        ("skipped", done.skipped),
        ("failed", done.failed),
    ] {
        store::count(&mut tx, &campaign.id, name, n as i64, now).await?;
    }
    for (language, n) in languages {
        let name = format!("{}{language}", ee_core::campaign::counter::LANGUAGE);
        store::count(&mut tx, &campaign.id, &name, n, now).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(done)
}
