//! Campaigns of a tenant that delivers through MailWizz (seed 004: "Email-Engine injects
//! into MailWizz"): a regular campaign is mirrored there instead of going message by
//! message. Its audience, fixed here as for any campaign, is grouped by the template each
//! recipient gets (their language through the fallback chain); each group becomes a list
//! made for the campaign in the tenant's MailWizz and a MailWizz campaign to that list,
//! with the template's content (our tags are MailWizz's: [FNAME], [UNSUBSCRIBE_URL]…).
//! MailWizz's figures are read back into the campaign's counters, so its statistics, its
//! auto-pause rule and its hourly buckets work as for any other; pause, resume and cancel
//! here pause or resume the mirrors there; the campaign is sent when every mirror is.
//!
//! Autoresponder sequences become MailWizz autoresponders (`sequence_mailwizz`); A/B
//! tests go message by message through MailWizz's transactional API (our variants
//! decide, MailWizz sends).

use std::collections::{BTreeMap, HashMap};

use ee_connectors::mailwizz::Client;
use ee_core::campaign::{CampaignKind, CampaignStatus, RecipientState};
use ee_core::delivery::Mode;
use ee_core::template;
use ee_store::campaign_mirrors::{self as mirrors, Change, Mirror};
use ee_store::campaigns::{self as store, Campaign};
use ee_store::contacts::Contact;
use ee_store::mailwizz::{Instance, SubscriberOutcome};
use ee_store::{Scope, contact_batches, templates};
use serde_json::{Map, Value, json};

use crate::Services;
use crate::delivery::mailwizz::{MwError, SubscriberTags, client, subscriber_fields};

/// How often a mirrored campaign's figures are read back from MailWizz.
pub const STATS_EVERY_MS: i64 = 60_000;

/// MailWizz's figures and the counters they feed.
const FIGURES: [(&str, &str); 9] = [
    ("delivery_success_count", "sent"),
    ("bounces_count", "bounced"),
    ("hard_bounces_count", "bounced_hard"),
    ("soft_bounces_count", "bounced_soft"),
    ("opens_count", "opened"),
    ("unique_opens_count", "opened_unique"),
    ("clicks_count", "clicked"),
    ("unique_clicks_count", "clicked_unique"),
    ("unsubscribes_count", "unsubscribed"),
];
const COMPLAINTS: (&str, &str) = ("complaints_count", "complained");

/// The tenant's MailWizz instance, with a client, when the campaign is mirrored there.
pub async fn target(
    services: &Services,
    campaign: &Campaign,
) -> Result<Option<(Instance, Client)>, MwError> {
    // A/B tests go message by message (our variants decide, MailWizz's transactional API
    // sends); regular campaigns and sequences are mirrored.
    if campaign.kind == CampaignKind::AbTest {
        return Ok(None);
    }
    let mut conn = services.db.pool().acquire().await?;
    let tenant = ee_store::tenants::get(&mut conn, &campaign.tenant_id).await?;
    let settings = crate::delivery::tenant_delivery(&tenant);
    if settings.mode != Mode::Mailwizz {
        return Ok(None);
    }
    let instance = ee_store::mailwizz::find(&mut conn, &tenant.id, settings.mailwizz.as_deref())
        .await
        .map_err(|_| MwError::Config("the tenant has no MailWizz instance".into()))?;
    let client = client(services, &instance)?;
    Ok(Some((instance, client)))
}

/// What one pass over a mirrored campaign did.
#[derive(Debug, Default)]
pub struct Mirrored {
    pub handed: usize,
    pub finished: bool,
}

/// One pass: a batch of recipients added to the lists there; once none is left, the
/// MailWizz campaigns made; then the figures read back and the campaign finished once
/// MailWizz reports every mirror sent.
pub async fn serve(
    services: &Services,
    campaign: &Campaign,
    instance: &Instance,
    client: &Client,
    limit: i64,
) -> Result<Mirrored, MwError> {
    let mut conn = services.db.pool().acquire().await?;
    let batch = store::pending(&mut conn, &campaign.id, limit, false).await?;
    drop(conn);
    if !batch.is_empty() {
        let handed = hand_over(services, campaign, instance, client, &batch).await?;
        return Ok(Mirrored {
            handed,
            finished: false,
        });
    }
    let mut conn = services.db.pool().acquire().await?;
    let all = mirrors::of_campaign(&mut conn, &campaign.id).await?;
    drop(conn);
    for mirror in all.iter().filter(|m| m.campaign_uid.is_none()) {
        let name = format!("{} [{}]", campaign.name, mirror.language);
        create_campaign(services, client, mirror, &name, None).await?;
    }
    let all = read_back_due(services, campaign, client).await?;
    let finished = all.iter().all(|m| m.status.as_deref() == Some("sent"));
    Ok(Mirrored {
        handed: 0,
        finished,
    })
}

/// Adds a batch of recipients to the list of the template each gets (made first when
/// needed) and marks them mirrored; a subscriber MailWizz refuses is marked failed with
/// its reason.
async fn hand_over(
    services: &Services,
    campaign: &Campaign,
    instance: &Instance,
    client: &Client,
    batch: &[store::Pending],
) -> Result<usize, MwError> {
    let mut conn = services.db.pool().acquire().await?;
    let own = templates::get(
        &mut conn,
        campaign.template_id.as_deref().unwrap_or_default(),
        Scope::Tenant(&campaign.tenant_id),
    )
    .await?;
    let ids: Vec<String> = batch.iter().map(|p| p.contact_id.clone()).collect();
    let contacts = contact_batches::get_many(&mut conn, &ids).await?;
    // The template per language, by the campaign's rule (`campaign_queue::Templates`).
    let mut choice =
        crate::campaigns::queue::Templates::load(&mut conn, &campaign.tenant_id).await?;
    let mut by_template: BTreeMap<String, (templates::Template, Vec<&store::Pending>)> =
        BTreeMap::new();
    for recipient in batch {
        let language = contacts
            .get(&recipient.contact_id)
            .and_then(|c| c.language.as_deref())
            .and_then(template::language)
            .unwrap_or(template::DEFAULT_LANGUAGE);
        let t = choice.choose(&own, language);
        by_template
            .entry(t.id.clone())
            .or_insert_with(|| (t, Vec::new()))
            .1
            .push(recipient);
    }
    drop(conn);
    let mut handed = 0;
    for (template_id, (template, recipients)) in by_template {
        let now = services.clock.now_ms();
        let mut conn = services.db.pool().acquire().await?;
        let mirror = mirrors::ensure(
            &mut conn,
            &campaign.id,
            0,
            &template_id,
            &template.language,
            &instance.id,
            now,
        )
        .await?;
        drop(conn);
        let list_uid = match &mirror.list_uid {
            Some(uid) => uid.clone(),
            None => {
                let uid = client.create_list(&list_of(campaign, &template)).await?;
                let mut conn = services.db.pool().acquire().await?;
                let change = Change {
                    list_uid: Some(&uid),
                    ..Change::default()
                };
                mirrors::update(&mut conn, &mirror, &change, now).await?;
                uid
            }
        };
        let members: Vec<(&str, &str)> = recipients
            .iter()
            .map(|r| (r.contact_id.as_str(), r.email.as_str()))
            .collect();
        let refusals = subscribe(
            services,
            client,
            &instance.id,
            &list_uid,
            &members,
            &contacts,
        )
        .await?;
        let now = services.clock.now_ms();
        let mut conn = services.db.pool().acquire().await?;
        let mut added = 0;
        for (recipient, refused) in recipients.iter().zip(refusals) {
            let (state, detail) = if let Some(why) = refused {
                (RecipientState::Failed, why)
            } else {
                added += 1;
                (
                    RecipientState::Mirrored,
                    format!("in MailWizz list {list_uid}"),
                )
            };
            store::settle(
                &mut conn,
                &campaign.id,
                &recipient.contact_id,
                state,
                None,
                Some(&detail),
                now,
            )
            .await?;
        }
        let change = Change {
            added_subscribers: added,
            ..Change::default()
        };
        mirrors::update(&mut conn, &mirror, &change, now).await?;
        let language = format!(
            "{}{}",
            ee_core::campaign::counter::LANGUAGE,
            template.language
        );
        store::count(&mut conn, &campaign.id, &language, added, now).await?;
        store::count(&mut conn, &campaign.id, "queued", added, now).await?;
        handed += added as usize;
    }
    Ok(handed)
}

/// Adds contacts (id, address) to a MailWizz list in one request, with their fields when
/// the contact is known; per member, MailWizz's refusal (`MailWizz: …`) or `None`. Each
/// subscriber MailWizz made is recorded with its list, so that an erasure deletes it there
/// and a contact no longer mailable is unsubscribed there (`mailwizz::sync_subscribers`).
pub(crate) async fn subscribe(
    services: &Services,
    client: &Client,
    instance_id: &str,
    list_uid: &str,
    members: &[(&str, &str)],
    contacts: &HashMap<String, Contact>,
) -> Result<Vec<Option<String>>, MwError> {
    let tags = match contacts.values().next() {
        Some(c) => {
            let mut conn = services.db.pool().acquire().await?;
            Some(SubscriberTags::of_tenant(&mut conn, &c.tenant_id).await?)
        }
        None => None,
    };
    let fields: Vec<Map<String, Value>> = members
        .iter()
        .map(|(id, email)| match (contacts.get(*id), &tags) {
            (Some(c), Some(tags)) => subscriber_fields(c, tags),
            _ => Map::from_iter([("EMAIL".to_owned(), json!(email))]),
        })
        .collect();
    let answer = client.create_subscribers_bulk(list_uid, &fields).await?;
    let records = answer["records"].as_array().cloned().unwrap_or_default();
    let mut refusals = Vec::with_capacity(members.len());
    let mut made = Vec::new();
    for (i, (contact_id, _)) in members.iter().enumerate() {
        let record = records.get(i).unwrap_or(&Value::Null);
        if record["status"] == "error" {
            let why = record["error"].as_str().unwrap_or("refused by MailWizz");
            refusals.push(Some(format!("MailWizz: {why}")));
            continue;
        }
        refusals.push(None);
        if let Some(uid) = crate::delivery::mailwizz::bulk_subscriber_uid(record) {
            made.push(SubscriberOutcome {
                contact_id,
                subscriber_uid: Some(uid),
                error: None,
            });
        }
    }
    let mut conn = services.db.pool().acquire().await?;
    let now = services.clock.now_ms();
    ee_store::mailwizz::record_subscribers(&mut conn, instance_id, list_uid, &made, now).await?;
    Ok(refusals)
}

/// Reads back the figures of the campaign's mirrors not read for a minute; its mirrors
/// as they are after it.
pub(crate) async fn read_back_due(
    services: &Services,
    campaign: &Campaign,
    client: &Client,
) -> Result<Vec<Mirror>, MwError> {
    let now = services.clock.now_ms();
    let mut conn = services.db.pool().acquire().await?;
    let all = mirrors::of_campaign(&mut conn, &campaign.id).await?;
    drop(conn);
    for mirror in &all {
        if mirror.synced_at.is_none_or(|at| now - at >= STATS_EVERY_MS) {
            read_back(services, campaign, client, mirror).await?;
        }
    }
    let mut conn = services.db.pool().acquire().await?;
    Ok(mirrors::of_campaign(&mut conn, &campaign.id).await?)
}

/// The list made for one template's recipients of the campaign.
pub(crate) fn list_of(campaign: &Campaign, template: &templates::Template) -> Value {
    let from_email = template.from_email.clone().unwrap_or_default();
    json!({
        "general": {
            "name": format!("{} [{}]", campaign.name, template.language),
            "description": format!("Email-Engine campaign {} ({})", campaign.id, template.language),
        },
        "defaults": {
            "from_name": template.from_name.clone().unwrap_or_else(|| from_email.clone()),
            "from_email": from_email,
            "reply_to": template.reply_to.clone().unwrap_or_else(|| from_email.clone()),
            "subject": template.subject,
        },
    })
}

/// Makes the MailWizz campaign of a mirror: to its list, with its template's content, to
/// send now (MailWizz's `send_at` is UTC); a regular one, or an autoresponder with its
/// `options` (`sequence_mailwizz`). Its figures are first read a minute later.
pub(crate) async fn create_campaign(
    services: &Services,
    client: &Client,
    mirror: &Mirror,
    name: &str,
    autoresponder: Option<Value>,
) -> Result<(), MwError> {
    let Some(list_uid) = &mirror.list_uid else {
        return Ok(());
    };
    let mut conn = services.db.pool().acquire().await?;
    let template = templates::get(&mut conn, &mirror.template_id, Scope::All).await?;
    drop(conn);
    let from_email = template.from_email.clone().unwrap_or_default();
    let now = services.clock.now_ms();
    let mut body = json!({
        "name": name,
        "type": if autoresponder.is_some() { "autoresponder" } else { "regular" },
        "from_name": template.from_name.clone().unwrap_or_else(|| from_email.clone()),
        "from_email": from_email,
        "subject": template.subject,
        "reply_to": template.reply_to.clone().unwrap_or_else(|| from_email.clone()),
        "send_at": ee_core::timefmt::datetime_utc(now),
        "list_uid": list_uid,
        "template": {
            "content": template.html_content,
            "inline_css": "no",
            "auto_plain_text": "yes",
        },
    });
    if let Some(options) = autoresponder {
        body["options"] = options;
    }
    let uid = client.create_campaign(&body).await?;
    let mut conn = services.db.pool().acquire().await?;
    let change = Change {
        campaign_uid: Some(&uid),
        status: Some("sending"),
        synced: true,
        ..Change::default()
    };
    mirrors::update(&mut conn, mirror, &change, now).await?;
    Ok(())
}

/// Reads a mirror's figures back: what grew since the last read is added to the
/// campaign's counters.
async fn read_back(
    services: &Services,
    campaign: &Campaign,
    client: &Client,
    mirror: &Mirror,
) -> Result<(), MwError> {
    let Some(uid) = &mirror.campaign_uid else {
        return Ok(());
    };
    let figures = client.campaign_stats(uid).await?;
    let before: Value = serde_json::from_str(&mirror.stats).unwrap_or_default();
    let now = services.clock.now_ms();
    let mut tx = services.db.begin().await?;
    for (theirs, ours) in FIGURES.iter().chain([&COMPLAINTS]) {
        let grew = figures[theirs].as_i64().unwrap_or(0) - before[theirs].as_i64().unwrap_or(0);
        if grew > 0 {
            store::count(&mut tx, &campaign.id, ours, grew, now).await?;
        }
    }
    let change = Change {
        status: figures["campaign_status"].as_str(),
        stats: Some(&figures.to_string()),
        synced: true,
        ..Change::default()
    };
    mirrors::update(&mut tx, mirror, &change, now).await?;
    tx.commit().await.map_err(ee_store::StoreError::from)?;
    Ok(())
}

/// Brings MailWizz in line with campaigns paused, auto-paused, cancelled or resumed here:
/// each mirror that still sends (or is still paused) there is toggled. Returns how many
/// mirrors were.
pub async fn reconcile(services: &Services) -> Result<usize, MwError> {
    let mut conn = services.db.pool().acquire().await?;
    let ids = mirrors::out_of_step(&mut conn, 50).await?;
    drop(conn);
    let mut toggled = 0;
    for id in ids {
        let mut conn = services.db.pool().acquire().await?;
        let campaign = store::get(&mut conn, &id, Scope::All).await?;
        let all = mirrors::of_campaign(&mut conn, &id).await?;
        drop(conn);
        let Some((_, client)) = target(services, &campaign).await? else {
            continue;
        };
        let want = if campaign.status == CampaignStatus::Sending {
            "sending"
        } else {
            "paused"
        };
        for mirror in all {
            let (Some(uid), Some(status)) = (&mirror.campaign_uid, &mirror.status) else {
                continue;
            };
            if status == want || !matches!(status.as_str(), "sending" | "paused") {
                continue;
            }
            let answer = client.pause_unpause(uid).await?;
            let now_status = answer["campaign"]["status"]
                .as_str()
                .unwrap_or(want)
                .to_owned();
            let mut conn = services.db.pool().acquire().await?;
            let change = Change {
                status: Some(&now_status),
                ..Change::default()
            };
            mirrors::update(&mut conn, &mirror, &change, services.clock.now_ms()).await?;
            toggled += 1;
        }
    }
    Ok(toggled)
}

/// Our campaign that a MailWizz campaign of a tenant mirrors, by its uid there.
pub async fn campaign_of_uid(
    read: &mut crate::read::Read,
    tenant_id: &str,
    campaign_uid: &str,
) -> Result<Option<String>, crate::AppError> {
    Ok(mirrors::campaign_of_uid(read.conn(), tenant_id, campaign_uid).await?)
}
