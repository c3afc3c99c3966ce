//! Autoresponder sequences of a tenant that delivers through MailWizz run there as
//! MailWizz autoresponders (seed 000 §7.3's sequences, seed 004's "Email-Engine injects
//! into MailWizz"), following MailWizz's published API: per language its contacts need,
//! a list made for the sequence, and on it one campaign of type `autoresponder` per step,
//! sent after subscription (`AFTER-SUBSCRIBE`) at the step's time, the delays added up,
//! with the step's template in that language through the fallback chain. Triggers and
//! leaving stay ours: a contact enrolled here is subscribed to the list of its language
//! (its enrollment becomes `mirrored`); one who leaves here (goal reached, unsubscribed,
//! bounced, complained, suppressed) is unsubscribed there, so MailWizz sends it no more.
//! The figures are read back per mirror as for a regular campaign, and pause and resume
//! are followed there (`campaign_mailwizz::reconcile`).
//!
//! Not carried: a step's daily window (MailWizz's API takes no hours of day for an
//! autoresponder), and a step added after contacts were handed over reaches only those
//! handed over later (MailWizz's autoresponder takes the list's subscribers from its own
//! creation on).

use std::collections::BTreeMap;

use ee_connectors::mailwizz::Client;
use ee_core::template;
use ee_store::campaign_mirrors::{self as mirrors, Change, Mirror};
use ee_store::campaigns::{self as store, Campaign};
use ee_store::enrollments;
use ee_store::mailwizz::Instance;
use ee_store::{Scope, contact_batches, templates};
use serde_json::json;

use crate::campaigns::settings::CampaignSettings;
use crate::delivery::mailwizz::MwError;
use crate::{AppError, Services};

/// One pass over a mirrored sequence: contacts enrolled and leaving (those mirrored are
/// unsubscribed there), new ones handed over (at most `limit`), the autoresponders made
/// that are missing, and the figures read back. Returns how many contacts were handed.
pub async fn serve(
    services: &Services,
    campaign: &Campaign,
    instance: &Instance,
    client: &Client,
    limit: i64,
) -> Result<usize, MwError> {
    let now = services.clock.now_ms();
    let settings = CampaignSettings::of(campaign);
    let mut conn = services.db.pool().acquire().await?;
    let left =
        crate::campaigns::autoresponders::enroll_and_leave(&mut conn, campaign, &settings, now)
            .await
            .map_err(app_error)?;
    let fresh = enrollments::fresh(&mut conn, &campaign.id, limit).await?;
    drop(conn);
    unsubscribe_leavers(services, campaign, client, &left).await?;
    let handed = if fresh.is_empty() {
        0
    } else {
        hand_over(services, campaign, &settings, instance, client, &fresh).await?
    };
    let mut conn = services.db.pool().acquire().await?;
    let all = mirrors::of_campaign(&mut conn, &campaign.id).await?;
    drop(conn);
    for mirror in all.iter().filter(|m| m.campaign_uid.is_none()) {
        create_autoresponder(services, campaign, &settings, client, mirror).await?;
    }
    crate::campaigns::mailwizz::read_back_due(services, campaign, client).await?;
    Ok(handed)
}

fn app_error(e: AppError) -> MwError {
    match e {
        AppError::Store(e) => MwError::Store(e),
        other => MwError::Config(other.to_string()),
    }
}

/// Subscribes fresh enrollments to the list of their language (made, with the step
/// mirrors, when it is the first contact of that language) and marks them mirrored; a
/// subscriber MailWizz refuses leaves with its reason.
async fn hand_over(
    services: &Services,
    campaign: &Campaign,
    settings: &CampaignSettings,
    instance: &Instance,
    client: &Client,
    fresh: &[enrollments::Due],
) -> Result<usize, MwError> {
    let mut conn = services.db.pool().acquire().await?;
    let ids: Vec<String> = fresh.iter().map(|e| e.contact_id.clone()).collect();
    let contacts = contact_batches::get_many(&mut conn, &ids).await?;
    let mut choice =
        crate::campaigns::queue::Templates::load(&mut conn, &campaign.tenant_id).await?;
    let mut bases = Vec::with_capacity(settings.steps.len());
    for step in &settings.steps {
        bases.push(
            templates::get(
                &mut conn,
                &step.template_id,
                Scope::Tenant(&campaign.tenant_id),
            )
            .await?,
        );
    }
    drop(conn);
    let mut by_language: BTreeMap<String, Vec<&enrollments::Due>> = BTreeMap::new();
    for enrollment in fresh {
        let language = contacts
            .get(&enrollment.contact_id)
            .and_then(|c| c.language.as_deref())
            .and_then(template::language)
            .unwrap_or(template::DEFAULT_LANGUAGE);
        by_language
            .entry(language.to_owned())
            .or_default()
            .push(enrollment);
    }
    let mut handed = 0;
    for (language, members) in by_language {
        let now = services.clock.now_ms();
        // The step mirrors of this language, all on one list.
        let mut conn = services.db.pool().acquire().await?;
        let mut steps = Vec::with_capacity(bases.len());
        for (index, base) in bases.iter().enumerate() {
            let chosen = choice.choose(base, &language);
            steps.push(
                mirrors::ensure(
                    &mut conn,
                    &campaign.id,
                    index as i64,
                    &chosen.id,
                    &language,
                    &instance.id,
                    now,
                )
                .await?,
            );
        }
        drop(conn);
        // One list per language, on every step mirror of it (kept as soon as it is made,
        // so a failure after it makes no second list).
        let list_uid = match steps.iter().find_map(|m| m.list_uid.clone()) {
            Some(uid) => uid,
            None => {
                let mut conn = services.db.pool().acquire().await?;
                let template = templates::get(&mut conn, &steps[0].template_id, Scope::All).await?;
                drop(conn);
                let uid = client
                    .create_list(&crate::campaigns::mailwizz::list_of(campaign, &template))
                    .await?;
                let mut conn = services.db.pool().acquire().await?;
                for mirror in &steps {
                    let change = Change {
                        list_uid: Some(&uid),
                        ..Change::default()
                    };
                    mirrors::update(&mut conn, mirror, &change, now).await?;
                }
                uid
            }
        };
        let pairs: Vec<(&str, &str)> = members
            .iter()
            .map(|e| (e.contact_id.as_str(), e.email.as_str()))
            .collect();
        let refusals = crate::campaigns::mailwizz::subscribe(
            services,
            client,
            &instance.id,
            &list_uid,
            &pairs,
            &contacts,
        )
        .await?;
        let now = services.clock.now_ms();
        let mut tx = services.db.begin().await?;
        let mut added = 0;
        for (enrollment, refused) in members.iter().zip(refusals) {
            if let Some(why) = refused {
                let left = enrollments::Advance {
                    step: 0,
                    state: ee_core::campaign::EnrollmentState::Left,
                    next_at: None,
                    detail: Some(&why),
                };
                enrollments::advance(&mut tx, &campaign.id, &enrollment.contact_id, 0, &left, now)
                    .await?;
                continue;
            }
            added += 1;
            let detail = format!("in MailWizz list {list_uid}");
            enrollments::mark_mirrored(&mut tx, &campaign.id, &enrollment.contact_id, &detail, now)
                .await?;
        }
        for mirror in &steps {
            let change = Change {
                added_subscribers: added,
                ..Change::default()
            };
            mirrors::update(&mut tx, mirror, &change, now).await?;
        }
        let counter = format!("{}{language}", ee_core::campaign::counter::LANGUAGE);
        store::count(&mut tx, &campaign.id, &counter, added, now).await?;
        store::count(&mut tx, &campaign.id, "mirrored", added, now).await?;
        tx.commit().await.map_err(ee_store::StoreError::from)?;
        handed += added as usize;
    }
    Ok(handed)
}

/// Makes a step mirror's autoresponder: on its language's list, sent the step's time
/// after subscription (the delays up to it added up), with its template's content.
async fn create_autoresponder(
    services: &Services,
    campaign: &Campaign,
    settings: &CampaignSettings,
    client: &Client,
    mirror: &Mirror,
) -> Result<(), MwError> {
    let index = usize::try_from(mirror.step).unwrap_or(usize::MAX);
    let hours: u32 = settings
        .steps
        .iter()
        .take(index.saturating_add(1))
        .map(|s| s.delay_hours)
        .sum();
    let name = format!(
        "{} [{}] step {}",
        campaign.name,
        mirror.language,
        mirror.step + 1
    );
    let options = json!({
        "autoresponder_event": "AFTER-SUBSCRIBE",
        "autoresponder_time_unit": "hour",
        "autoresponder_time_value": hours,
    });
    crate::campaigns::mailwizz::create_campaign(services, client, mirror, &name, Some(options))
        .await
}

/// Contacts mirrored into MailWizz who left here are unsubscribed from the sequence's
/// lists there (whichever holds them).
async fn unsubscribe_leavers(
    services: &Services,
    campaign: &Campaign,
    client: &Client,
    left: &[String],
) -> Result<(), MwError> {
    if left.is_empty() {
        return Ok(());
    }
    let mut conn = services.db.pool().acquire().await?;
    let contacts = contact_batches::get_many(&mut conn, left).await?;
    let mut lists: Vec<String> = mirrors::of_campaign(&mut conn, &campaign.id)
        .await?
        .into_iter()
        .filter_map(|m| m.list_uid)
        .collect();
    drop(conn);
    lists.sort();
    lists.dedup();
    for contact in contacts.values() {
        for list_uid in &lists {
            if let Some(found) = client.search_by_email(list_uid, &contact.email).await?
                && let Some(uid) = found["subscriber_uid"].as_str()
            {
                client.unsubscribe(list_uid, uid).await?;
            }
        }
    }
    Ok(())
}
